// Behaviour specs: the list, one spec with its lint and runs, and the editor (create and edit).
import { html, useEffect, useState } from "../html.js";
import { api, apiList } from "../api.js";
import { navigate } from "../router.js";
import {
  Async, ConfirmButton, Empty, ErrorMessage, Loading, StatusBadge, num, useResource, when,
} from "../components.js";
import { LintReport } from "./estimate.js";

export function SpecList() {
  const specs = useResource(() => apiList("/behavior-specs"), []);
  return html`<section>
    <div class="title-row"><h1 tabindex="-1">Behaviour specs</h1><a class="button" href="#/specs/new">New spec</a></div>
    <${Async} resource=${specs}>${(rows) =>
      rows.length === 0
        ? html`<${Empty}><p>No behaviour specs yet. A spec is a system prompt, guidelines, constraints and
            examples; <a href="#/specs/new">create the first one</a>.</p><//>`
        : html`<div class="scroll"><table>
            <caption class="visually-hidden">Behaviour specs</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Base model</th><th scope="col">Examples</th>
              <th scope="col">Runs</th><th scope="col">Latest run</th><th scope="col">Latest score</th><th scope="col">Updated</th></tr></thead>
            <tbody>${rows.map(
              (s) => html`<tr>
                <td><a href=${`#/specs/${s.id}`}>${s.name}</a></td><td>${s.base_model}</td>
                <td>${s._example_count}</td><td>${s._run_count}</td>
                <td>${s._latest_run_status ? html`<${StatusBadge} status=${s._latest_run_status} />` : "–"}</td>
                <td>${num(s._latest_run_score)}</td><td>${when(s.updated_at)}</td>
              </tr>`,
            )}</tbody>
          </table></div>`}<//>
  </section>`;
}

export function SpecPage({ id }) {
  const spec = useResource(() => api(`/behavior-specs/${id}`).then((r) => r.data), [id]);
  const lint = useResource(() => api(`/behavior-specs/${id}/runs/estimate`, { method: "POST", body: {} }).then((r) => r.data.spec_lint), [id]);
  const [error, setError] = useState(null);
  const remove = async () => {
    try {
      await api(`/behavior-specs/${id}`, { method: "DELETE" });
      navigate("/specs");
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<${Async} resource=${spec}>${(s) => html`<section>
    <div class="title-row">
      <h1 tabindex="-1">${s.name}</h1>
      <div class="actions">
        <a class="button" href=${`#/runs/new?spec=${s.id}`}>Start a run</a>
        <a class="button secondary" href=${`#/specs/${s.id}/edit`}>Edit</a>
        <${ConfirmButton} label="Delete" question=${`Delete “${s.name}” with its runs?`} onConfirm=${remove} />
      </div>
    </div>
    <${ErrorMessage} error=${error} />
    ${s.description && html`<p>${s.description}</p>`}
    <dl class="facts">
      <div><dt>Base model</dt><dd>${s.base_model}</dd></div>
      <div><dt>Examples</dt><dd>${s.examples.length}</dd></div>
      <div><dt>Runs</dt><dd>${s._run_count}</dd></div>
      <div><dt>Updated</dt><dd>${when(s.updated_at)}</dd></div>
    </dl>
    ${s.system_prompt && html`<h2>System prompt</h2><pre class="text">${s.system_prompt}</pre>`}
    <${RuleList} title="Guidelines" items=${s.guidelines} />
    <${RuleList} title="Constraints" items=${s.constraints} />
    ${lint.status === "loading" ? html`<${Loading} label="Linting the spec…" />`
      : lint.status === "error" ? html`<${ErrorMessage} error=${lint.error} />`
      : html`<${LintReport} lint=${lint.data} />`}
    <h2>Runs</h2>
    ${s._runs.length === 0
      ? html`<${Empty}><p>No runs yet. <a href=${`#/runs/new?spec=${s.id}`}>Start one</a> to fine-tune ${s.base_model}.</p><//>`
      : html`<div class="scroll"><table>
          <caption class="visually-hidden">Runs of this spec</caption>
          <thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Avg score</th><th scope="col">Pass rate</th><th scope="col">Started</th></tr></thead>
          <tbody>${s._runs.map((r) => html`<tr>
            <td><a href=${`#/runs/${r.id}`}>#${r.run_number}</a></td><td><${StatusBadge} status=${r.status} /></td>
            <td>${num(r.eval_summary?.avg_score)}</td><td>${num(r.eval_summary?.pass_rate)}</td><td>${when(r.started_at)}</td>
          </tr>`)}</tbody>
        </table></div>`}
    <h2>Examples</h2>
    <div class="scroll"><table>
      <caption class="visually-hidden">Examples</caption>
      <thead><tr><th scope="col">#</th><th scope="col">Input</th><th scope="col">Output</th></tr></thead>
      <tbody>${s.examples.map((e, i) => html`<tr><td>${i + 1}</td><td class="text">${e.input}</td><td class="text">${e.output}</td></tr>`)}</tbody>
    </table></div>
  </section>`}<//>`;
}

function RuleList({ title, items }) {
  if (!items.length) return null;
  return html`<h2>${title}</h2><ul>${items.map((item) => html`<li>${item}</li>`)}</ul>`;
}

const EMPTY_SPEC = { name: "", description: "", system_prompt: "", guidelines: [], constraints: [], examples: [{ input: "", output: "" }], base_model: "" };
const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);

// `{"input", "output"}` per line → examples, or the first bad line's number and why.
export function parseJsonl(text) {
  const rows = [];
  const all = text.split("\n");
  for (let i = 0; i < all.length; i += 1) {
    if (!all[i].trim()) continue;
    let row;
    try {
      row = JSON.parse(all[i]);
    } catch {
      return { error: `Line ${i + 1} is not JSON.` };
    }
    if (typeof row?.input !== "string" || typeof row?.output !== "string") {
      return { error: `Line ${i + 1} needs string "input" and "output" fields.` };
    }
    rows.push({ input: row.input, output: row.output });
  }
  return { rows };
}

export function SpecEditor({ id }) {
  const existing = useResource(() => (id ? api(`/behavior-specs/${id}`) : Promise.resolve(null)), [id]);
  const catalogue = useResource(() => api("/playground/models").then((r) => r.data.base_models), []);
  const [form, setForm] = useState(null);
  const [etag, setEtag] = useState(null);
  const [paste, setPaste] = useState("");
  const [pasteError, setPasteError] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (existing.status !== "ready") return;
    const spec = existing.data?.data ?? EMPTY_SPEC;
    setEtag(existing.data?.etag ?? null);
    setForm({
      name: spec.name, description: spec.description, system_prompt: spec.system_prompt,
      guidelines: spec.guidelines.join("\n"), constraints: spec.constraints.join("\n"),
      examples: spec.examples.map((e) => ({ ...e })), base_model: spec.base_model ?? "",
    });
  }, [existing.status, existing.data]);
  if (existing.status !== "ready" || !form) return html`<${Async} resource=${existing}>${() => html`<${Loading} />`}<//>`;

  const set = (field) => (event) => setForm({ ...form, [field]: event.currentTarget.value });
  const setExample = (index, field, value) =>
    setForm({ ...form, examples: form.examples.map((e, i) => (i === index ? { ...e, [field]: value } : e)) });
  const addPasted = () => {
    const { rows, error: bad } = parseJsonl(paste);
    setPasteError(bad ?? null);
    if (bad) return;
    const kept = form.examples.filter((e) => e.input || e.output);
    setForm({ ...form, examples: [...kept, ...rows] });
    setPaste("");
  };
  const save = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const body = {
      name: form.name, description: form.description, system_prompt: form.system_prompt,
      guidelines: lines(form.guidelines), constraints: lines(form.constraints), examples: form.examples,
      ...(form.base_model ? { base_model: form.base_model } : {}),
    };
    try {
      const saved = id
        ? await api(`/behavior-specs/${id}`, { method: "PUT", body, headers: etag ? { "If-Match": etag } : {} })
        : await api("/behavior-specs", { method: "POST", body, headers: { "Idempotency-Key": crypto.randomUUID() } });
      navigate(`/specs/${saved.data.id}`);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<section>
    <h1 tabindex="-1">${id ? `Edit ${form.name}` : "New behaviour spec"}</h1>
    <form class="spec-form" onSubmit=${save}>
      <label for="spec-name">Name</label>
      <input id="spec-name" value=${form.name} onInput=${set("name")} required maxlength="255" />
      <label for="spec-description">Description</label>
      <input id="spec-description" value=${form.description} onInput=${set("description")} maxlength="5000" />
      <label for="spec-base-model">Base model</label>
      <select id="spec-base-model" value=${form.base_model} onChange=${set("base_model")}>
        <option value="">The deployment's default</option>
        ${(catalogue.data ?? []).map((m) => html`<option value=${m.id}>${m.id} (${m.context_length.toLocaleString("en-US")} tokens)</option>`)}
      </select>
      ${catalogue.status === "error" && html`<${ErrorMessage} error=${catalogue.error} />`}
      <label for="spec-system-prompt">System prompt</label>
      <textarea id="spec-system-prompt" rows="4" value=${form.system_prompt} onInput=${set("system_prompt")} maxlength="10000"></textarea>
      <label for="spec-guidelines">Guidelines <span class="muted">(one per line)</span></label>
      <textarea id="spec-guidelines" rows="3" value=${form.guidelines} onInput=${set("guidelines")}></textarea>
      <label for="spec-constraints">Constraints <span class="muted">(one per line; “Never …” and “Always …” are checked against the examples)</span></label>
      <textarea id="spec-constraints" rows="3" value=${form.constraints} onInput=${set("constraints")}></textarea>
      <fieldset>
        <legend>Examples (${form.examples.length})</legend>
        <div class="scroll"><table class="examples">
          <thead><tr><th scope="col">#</th><th scope="col">Input</th><th scope="col">Output</th><th scope="col"><span class="visually-hidden">Remove</span></th></tr></thead>
          <tbody>${form.examples.map((e, i) => html`<tr>
            <td>${i + 1}</td>
            <td><textarea rows="2" aria-label=${`Example ${i + 1} input`} value=${e.input} onInput=${(ev) => setExample(i, "input", ev.currentTarget.value)}></textarea></td>
            <td><textarea rows="2" aria-label=${`Example ${i + 1} output`} value=${e.output} onInput=${(ev) => setExample(i, "output", ev.currentTarget.value)}></textarea></td>
            <td><button type="button" class="secondary" aria-label=${`Remove example ${i + 1}`}
              onClick=${() => setForm({ ...form, examples: form.examples.filter((_, j) => j !== i) })}>Remove</button></td>
          </tr>`)}</tbody>
        </table></div>
        <button type="button" class="secondary" onClick=${() => setForm({ ...form, examples: [...form.examples, { input: "", output: "" }] })}>Add example</button>
        <label for="spec-paste">Paste JSONL <span class="muted">(one {"input": …, "output": …} per line)</span></label>
        <textarea id="spec-paste" rows="3" value=${paste} onInput=${(e) => setPaste(e.currentTarget.value)}></textarea>
        <button type="button" class="secondary" onClick=${addPasted} disabled=${!paste.trim()}>Add pasted rows</button>
        ${pasteError && html`<p class="state error" role="alert">${pasteError}</p>`}
      </fieldset>
      <${ErrorMessage} error=${error} />
      <div class="actions">
        <button type="submit" disabled=${busy}>${busy ? "Saving…" : id ? "Save changes" : "Create spec"}</button>
        <a class="button secondary" href=${id ? `#/specs/${id}` : "#/specs"}>Cancel</a>
      </div>
    </form>
  </section>`;
}
