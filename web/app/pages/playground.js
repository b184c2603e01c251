// The playground: chat with a model through POST /playground/completions, or send one prompt to the base
// and the tuned model side by side. Hosted deployments answer 501: then the page shows that message and the
// `tt models serve` command that runs the model locally instead.
import { html, useEffect, useState } from "../html.js";
import { api } from "../api.js";
import { CodeLine, ErrorMessage, Loading, useResource, Async } from "../components.js";

function complete(model, messages, settings) {
  return api("/playground/completions", {
    method: "POST",
    body: { model, messages, temperature: Number(settings.temperature), max_tokens: Number.parseInt(settings.max_tokens, 10) },
  }).then((r) => r.data);
}

function Unavailable({ error, model }) {
  return html`<div class="state error" role="alert">
    <p>${error.message}</p>
    ${model?.model_id && html`<p>Run it on your machine instead:</p><${CodeLine} text=${`tt models serve ${model.model_id}`} label="Copy the serve command" />`}
  </div>`;
}

export function Playground({ model: wanted }) {
  const inventory = useResource(() => api("/playground/models").then((r) => r.data), []);
  return html`<section>
    <h1 tabindex="-1">Playground</h1>
    <${Async} resource=${inventory}>${(models) =>
      models.fine_tuned_models.length === 0 && !models.base_models.length
        ? html`<p>No models.</p>`
        : html`<${PlaygroundForm} models=${models} wanted=${wanted} />`}<//>
  </section>`;
}

function PlaygroundForm({ models, wanted }) {
  const tuned = models.fine_tuned_models;
  const all = [...tuned, ...models.base_models];
  const [modelId, setModelId] = useState(wanted ?? tuned[0]?.id ?? models.base_models.at(-1)?.id);
  const [mode, setMode] = useState("chat");
  const [settings, setSettings] = useState({ temperature: "0.7", max_tokens: "256" });
  const model = all.find((m) => m.id === modelId);
  const baseId = model?.type === "fine-tuned" ? model.base_model : null;
  return html`<div class="playground">
    <fieldset class="grid4">
      <legend>Model and settings</legend>
      <div><label for="pg-model">Model</label>
        <select id="pg-model" value=${modelId} onChange=${(e) => setModelId(e.currentTarget.value)}>
          ${tuned.length > 0 && html`<optgroup label="Fine-tuned">${tuned.map((m) => html`<option value=${m.id}>${m.name}</option>`)}</optgroup>`}
          <optgroup label="Base">${models.base_models.map((m) => html`<option value=${m.id}>${m.name}</option>`)}</optgroup>
        </select></div>
      <div><label for="pg-temperature">Temperature</label>
        <input id="pg-temperature" inputmode="decimal" value=${settings.temperature} onInput=${(e) => setSettings({ ...settings, temperature: e.currentTarget.value })} /></div>
      <div><label for="pg-max-tokens">Max tokens</label>
        <input id="pg-max-tokens" inputmode="numeric" value=${settings.max_tokens} onInput=${(e) => setSettings({ ...settings, max_tokens: e.currentTarget.value })} /></div>
    </fieldset>
    <div class="tabs" role="radiogroup" aria-label="Mode">
      <label><input type="radio" name="pg-mode" value="chat" checked=${mode === "chat"} onChange=${() => setMode("chat")} /> Chat</label>
      <label><input type="radio" name="pg-mode" value="compare" checked=${mode === "compare"} disabled=${!baseId} onChange=${() => setMode("compare")} /> Side by side with the base model</label>
    </div>
    ${mode === "chat" || !baseId
      ? html`<${Chat} key=${modelId} model=${model} settings=${settings} />`
      : html`<${Compare} key=${modelId} model=${model} baseId=${baseId} settings=${settings} />`}
  </div>`;
}

function Chat({ model, settings }) {
  const [messages, setMessages] = useState([]);
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const send = async (event) => {
    event.preventDefault();
    const history = [...messages, { role: "user", content: draft }];
    setMessages(history);
    setDraft("");
    setBusy(true);
    setError(null);
    try {
      const answer = await complete(model.id, history, settings);
      setMessages([...history, { role: "assistant", content: answer.content, latency: answer.latency_ms }]);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-label="Chat">
    <ol class="chat" aria-live="polite">
      ${messages.map((m) => html`<li class=${`message ${m.role}`}><span class="role">${m.role === "user" ? "You" : model.name}</span>
        <div class="text">${m.content}</div>${m.latency != null && html`<span class="muted">${Math.round(m.latency)} ms</span>`}</li>`)}
    </ol>
    ${busy && html`<${Loading} label=${`${model.name} is answering…`} />`}
    ${error && (error.status === 501 ? html`<${Unavailable} error=${error} model=${model} />` : html`<${ErrorMessage} error=${error} />`)}
    <form class="composer" onSubmit=${send}>
      <label for="pg-message">Message</label>
      <textarea id="pg-message" rows="3" value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)} required></textarea>
      <div class="actions">
        <button type="submit" disabled=${busy || !draft.trim()}>Send</button>
        <button type="button" class="secondary" onClick=${() => (setMessages([]), setError(null))} disabled=${busy || !messages.length}>New chat</button>
      </div>
    </form>
  </section>`;
}

function Compare({ model, baseId, settings }) {
  const [prompt, setPrompt] = useState("");
  const [answers, setAnswers] = useState(null);
  const [busy, setBusy] = useState(false);
  const send = async (event) => {
    event.preventDefault();
    setBusy(true);
    const messages = [{ role: "user", content: prompt }];
    // The same prompt to both, at once; each side shows its own answer or error.
    const settle = (p) => p.then((value) => ({ value }), (error) => ({ error }));
    const [base, tuned] = await Promise.all([settle(complete(baseId, messages, settings)), settle(complete(model.id, messages, settings))]);
    setAnswers({ prompt, base, tuned });
    setBusy(false);
  };
  const side = (title, result) => html`<section class="side" aria-label=${title}>
    <h2>${title}</h2>
    ${result.error
      ? result.error.status === 501 ? html`<${Unavailable} error=${result.error} model=${model} />` : html`<${ErrorMessage} error=${result.error} />`
      : html`<div class="text answer">${result.value.content}</div><p class="muted">${Math.round(result.value.latency_ms)} ms · ${result.value.usage.completion_tokens} tokens · ${result.value.finish_reason}</p>`}
  </section>`;
  return html`<section aria-label="Side by side">
    <form class="composer" onSubmit=${send}>
      <label for="pg-prompt">Prompt for both models</label>
      <textarea id="pg-prompt" rows="3" value=${prompt} onInput=${(e) => setPrompt(e.currentTarget.value)} required></textarea>
      <button type="submit" disabled=${busy || !prompt.trim()}>Compare</button>
    </form>
    ${busy && html`<${Loading} label="Both models are answering…" />`}
    ${answers && html`<div class="compare">
      ${side(`Base: ${baseId}`, answers.base)}
      ${side(`Tuned: ${model.name}`, answers.tuned)}
    </div>`}
  </section>`;
}
