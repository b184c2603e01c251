// Models: the list, one model's details, its signed download, the `tt models serve` command, delete.
import { html, useState } from "../html.js";
import { api, apiList } from "../api.js";
import { navigate } from "../router.js";
import { Async, CodeLine, ConfirmButton, Empty, ErrorMessage, useResource, when } from "../components.js";

export function ModelList() {
  const models = useResource(() => apiList("/models"), []);
  return html`<section>
    <h1 tabindex="-1">Models</h1>
    <${Async} resource=${models}>${(rows) =>
      rows.length === 0
        ? html`<${Empty}><p>No models yet: a model is registered when a run completes. <a href="#/runs/new">Start a run</a>.</p><//>`
        : html`<div class="scroll"><table>
            <caption class="visually-hidden">Models</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Base model</th><th scope="col">From</th><th scope="col">Created</th></tr></thead>
            <tbody>${rows.map((m) => html`<tr>
              <td><a href=${`#/models/${m.id}`}>${m.name}</a></td><td>${m.base_model}</td>
              <td>${m.run_id ? html`<a href=${`#/runs/${m.run_id}`}>${m.description}</a>` : m.description}</td><td>${when(m.created_at)}</td>
            </tr>`)}</tbody>
          </table></div>`}<//>
  </section>`;
}

export function ModelPage({ id }) {
  const model = useResource(() => api(`/models/${id}`).then((r) => r.data), [id]);
  const [error, setError] = useState(null);
  const download = async () => {
    setError(null);
    try {
      const { data } = await api(`/models/${id}/download`);
      location.assign(data.url); // a signed URL, valid 15 minutes: the browser saves model.tar.gz
    } catch (failure) {
      setError(failure);
    }
  };
  const remove = async () => {
    try {
      await api(`/models/${id}`, { method: "DELETE" });
      navigate("/models");
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<${Async} resource=${model}>${(m) => html`<section>
    <div class="title-row">
      <h1 tabindex="-1">${m.name}</h1>
      <div class="actions">
        <a class="button" href=${`#/playground?model=${encodeURIComponent(m.provider_model_id)}`}>Try in the playground</a>
        <button type="button" class="secondary" onClick=${download}>Download</button>
        <${ConfirmButton} label="Delete" question=${`Delete model ${m.name} and its artifact?`} onConfirm=${remove} />
      </div>
    </div>
    <${ErrorMessage} error=${error} />
    <dl class="facts">
      <div><dt>Base model</dt><dd>${m.base_model}</dd></div>
      <div><dt>Description</dt><dd>${m.description}</dd></div>
      <div><dt>Run</dt><dd>${m.run_id ? html`<a href=${`#/runs/${m.run_id}`}>${m.run_id}</a>` : "deleted"}</dd></div>
      <div><dt>Training job</dt><dd>${m.fine_tune_job_id}</dd></div>
      <div><dt>Created</dt><dd>${when(m.created_at)}</dd></div>
      <div><dt>Id</dt><dd><code>${m.id}</code></dd></div>
    </dl>
    <h2>Serve it on your machine</h2>
    <p>An OpenAI-compatible server on <code>http://127.0.0.1:8000/v1</code>, after a one-time <code>tt models setup-runtime</code>:</p>
    <${CodeLine} text=${`tt models serve ${m.id}`} label="Copy the serve command" />
  </section>`}<//>`;
}
