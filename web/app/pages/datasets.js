// Datasets: drag-and-drop upload straight to storage through the presigned URL (with byte progress), the
// validation result with line-numbered errors, the list and delete.
import { html, useState } from "../html.js";
import { api, apiList, uploadFile } from "../api.js";
import { Async, ConfirmButton, Empty, ErrorMessage, Progress, StatusBadge, int, useResource, when } from "../components.js";

const SETTLED = ["validated", "invalid"];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function DatasetsPage() {
  const datasets = useResource(() => apiList("/datasets"), []);
  const [error, setError] = useState(null);
  const remove = async (id) => {
    setError(null);
    try {
      await api(`/datasets/${id}`, { method: "DELETE" });
      datasets.reload(true);
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<section>
    <h1 tabindex="-1">Datasets</h1>
    <${Upload} onDone=${() => datasets.reload(true)} />
    <h2>All datasets</h2>
    <${ErrorMessage} error=${error} />
    <${Async} resource=${datasets}>${(rows) =>
      rows.length === 0
        ? html`<${Empty}><p>No datasets yet. Upload a JSONL file of {"input", "output"} rows above; runs also record the rows they trained on here.</p><//>`
        : html`<div class="scroll"><table>
            <caption class="visually-hidden">Datasets</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Rows</th><th scope="col">Tokens</th><th scope="col">Source</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>${rows.map((d) => html`<tr>
              <td>${d.name}</td><td><${StatusBadge} status=${d.status} />${d.validation_error_count ? ` ${d.validation_error_count} error${d.validation_error_count === 1 ? "" : "s"}` : ""}</td>
              <td>${int(d.row_count)}</td><td>${int(d.estimated_tokens)}</td><td>${d.source}</td><td>${when(d.created_at)}</td>
              <td><div class="actions">
                ${d.source === "upload" && d.status === "validated" && html`<a class="button secondary" href=${`#/runs/new?dataset=${d.id}`}>Train on it</a>`}
                <${ConfirmButton} label="Delete" question=${`Delete dataset “${d.name}”?`} onConfirm=${() => remove(d.id)} />
              </div></td>
            </tr>`)}</tbody>
          </table></div>`}<//>
  </section>`;
}

function Upload({ onDone }) {
  const [file, setFile] = useState(null);
  const [name, setName] = useState("");
  const [progress, setProgress] = useState(null);
  const [phase, setPhase] = useState("");
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [dragging, setDragging] = useState(false);
  const choose = (chosen) => {
    if (!chosen) return;
    setFile(chosen);
    setName(chosen.name.replace(/\.[^.]*$/, ""));
    setResult(null);
    setError(null);
    setProgress(null);
  };
  const drop = (event) => {
    event.preventDefault();
    setDragging(false);
    choose(event.dataTransfer.files[0]);
  };
  const upload = async (event) => {
    event.preventDefault();
    setError(null);
    setResult(null);
    try {
      setPhase("Requesting an upload URL…");
      const { data: target } = await api("/datasets/upload-url", {
        method: "POST",
        body: { name, filename: file.name, size: file.size, contentType: file.type || "application/octet-stream" },
      });
      setPhase("Uploading…");
      setProgress(0);
      await uploadFile(target.upload_url, file, target.headers, (loaded, total) => setProgress(Math.round((100 * loaded) / total)));
      setProgress(100);
      setPhase("Validating…");
      let { data } = await api("/datasets/finalize", { method: "POST", body: { path: target.path, name } });
      while (!SETTLED.includes(data.status)) {
        await sleep(1000);
        ({ data } = await api(`/datasets/${data.id}`));
      }
      setResult(data);
      setPhase("");
      onDone();
    } catch (failure) {
      setError(failure);
      setPhase("");
    }
  };
  return html`<form class="upload" onSubmit=${upload}>
    <div class=${`dropzone${dragging ? " dragging" : ""}`} onDragOver=${(e) => (e.preventDefault(), setDragging(true))}
      onDragLeave=${() => setDragging(false)} onDrop=${drop}>
      <label for="dataset-file">Drop a JSONL file here, or choose one</label>
      <input id="dataset-file" type="file" accept=".jsonl,.json,.txt,application/jsonl" onChange=${(e) => choose(e.currentTarget.files[0])} />
      ${file && html`<p>${file.name} · ${int(file.size)} bytes</p>`}
    </div>
    <label for="dataset-name">Name</label>
    <input id="dataset-name" value=${name} onInput=${(e) => setName(e.currentTarget.value)} required maxlength="255" />
    <button type="submit" disabled=${!file || !!phase}>Upload</button>
    ${progress !== null && html`<div class="progress-row"><${Progress} value=${progress} label="Upload progress" /><span>${progress}%</span></div>`}
    ${phase && html`<p role="status">${phase}</p>`}
    <${ErrorMessage} error=${error} />
    ${result && html`<${ValidationResult} dataset=${result} />`}
  </form>`;
}

function ValidationResult({ dataset }) {
  if (dataset.status === "validated") {
    return html`<p class="state good" role="status">Validated: ${int(dataset.row_count)} rows, about ${int(dataset.estimated_tokens)} tokens, ${int(dataset.duplicate_rows)} duplicate rows.</p>`;
  }
  const errors = dataset.validation_errors ?? [];
  return html`<div class="state error" role="alert">
    <p>The file is invalid: ${dataset.validation_error_count} error${dataset.validation_error_count === 1 ? "" : "s"}${errors.length < dataset.validation_error_count ? ` (the first ${errors.length} shown)` : ""}.</p>
    <div class="scroll"><table class="validation-errors">
      <caption class="visually-hidden">Validation errors</caption>
      <thead><tr><th scope="col">Line</th><th scope="col">Field</th><th scope="col">Code</th><th scope="col">Message</th></tr></thead>
      <tbody>${errors.map((e) => html`<tr><td>${e.line ?? "–"}</td><td>${e.field ?? "–"}</td><td><code>${e.code}</code></td><td>${e.message}</td></tr>`)}</tbody>
    </table></div>
  </div>`;
}
