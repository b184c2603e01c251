// Runs: the list with status and progress, and the start form (from a spec, or a spec with an uploaded
// dataset) that shows the estimate and the spec lint before anything starts.
import { html, useEffect, useState } from "../html.js";
import { api, apiList } from "../api.js";
import { navigate } from "../router.js";
import {
  ACTIVE, Async, Empty, ErrorMessage, Loading, Progress, StatusBadge, num, pct, useResource, when,
} from "../components.js";
import { EstimateSummary, LintReport } from "./estimate.js";

export function RunList() {
  const [active, setActive] = useState(false);
  const runs = useResource(() => apiList("/runs?view=summary"), [], { poll: active ? 3000 : 0 });
  useEffect(() => setActive((runs.data ?? []).some((r) => ACTIVE.includes(r.status))), [runs.data]);
  return html`<section>
    <div class="title-row"><h1 tabindex="-1">Runs</h1><a class="button" href="#/runs/new">Start a run</a></div>
    <${Async} resource=${runs}>${(rows) =>
      rows.length === 0
        ? html`<${Empty}><p>No runs yet. <a href="#/runs/new">Start a run</a> from a spec to fine-tune a model.</p><//>`
        : html`<div class="scroll"><table>
            <caption class="visually-hidden">Runs</caption>
            <thead><tr><th scope="col">Spec</th><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Progress</th>
              <th scope="col">Avg score</th><th scope="col">Pass rate</th><th scope="col">Started</th></tr></thead>
            <tbody>${rows.map((r) => html`<tr>
              <td>${r._spec_name}</td><td><a href=${`#/runs/${r.id}`}>#${r.run_number}</a></td>
              <td><${StatusBadge} status=${r.status} /></td>
              <td><${Progress} value=${r.progress_pct} label=${`Run ${r.run_number} progress`} /> ${r.progress_pct}%</td>
              <td>${num(r.eval_summary?.avg_score)}</td><td>${pct(r.eval_summary?.pass_rate)}</td><td>${when(r.started_at)}</td>
            </tr>`)}</tbody>
          </table></div>`}<//>
  </section>`;
}

// Form field → hyperparameter; an empty field is left out, so the API's (base model's) default applies.
const HYPERPARAMETERS = [
  ["n_epochs", "Epochs", "int", "1–20"],
  ["learning_rate", "Learning rate", "float", "> 0"],
  ["batch_size", "Batch size", "int", "1–4096"],
  ["lora_rank", "LoRA rank", "int", "1–1024"],
  ["lora_alpha", "LoRA alpha", "int", "1–8192"],
  ["lora_dropout", "LoRA dropout", "float", "0 ≤ x < 1"],
  ["max_seq_length", "Max sequence length", "int", "tokens"],
  ["max_output_tokens", "Max output tokens (eval)", "int", "tokens"],
];

function requestBody(form) {
  const hyperparameters = {};
  for (const [name, , kind] of HYPERPARAMETERS) {
    const text = form[name].trim();
    if (text) hyperparameters[name] = kind === "int" && /^-?\d+$/.test(text) ? Number.parseInt(text, 10) : Number(text);
  }
  const body = { augment: form.augment, use_llm_judge: form.use_llm_judge };
  if (Object.keys(hyperparameters).length) body.hyperparameters = hyperparameters;
  if (form.dataset_id) {
    body.dataset_id = form.dataset_id;
    body.split_ratios = { train: Number(form.train), validation: Number(form.validation), test: Number(form.test) };
  }
  return body;
}

export function NewRun({ specId, datasetId }) {
  const specs = useResource(() => apiList("/behavior-specs"), []);
  const datasets = useResource(
    () => apiList("/datasets").then((rows) => rows.filter((d) => d.source === "upload" && d.status === "validated")),
    [],
  );
  const [form, setForm] = useState({
    spec_id: specId ?? "", dataset_id: datasetId ?? "", augment: true, use_llm_judge: true,
    train: "0.8", validation: "0.1", test: "0.1", ...Object.fromEntries(HYPERPARAMETERS.map(([n]) => [n, ""])),
  });
  const [estimate, setEstimate] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!form.spec_id && specs.data?.length) setForm((f) => ({ ...f, spec_id: specs.data[0].id }));
  }, [specs.data]);
  // Any change invalidates the estimate: what starts is always what was estimated.
  const set = (field, value) => {
    setForm({ ...form, [field]: value });
    setEstimate(null);
  };
  const call = async (action) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const runEstimate = (event) => {
    event.preventDefault();
    const body = requestBody(form);
    call(async () => {
      const { data } = await api(`/behavior-specs/${form.spec_id}/runs/estimate`, { method: "POST", body });
      setEstimate({ data, body });
    });
  };
  const start = () =>
    call(async () => {
      const { data } = await api(`/behavior-specs/${form.spec_id}/runs`, {
        method: "POST", body: estimate.body, headers: { "Idempotency-Key": crypto.randomUUID() },
      });
      navigate(`/runs/${data.id}`);
    });
  if (specs.status !== "ready") return html`<${Async} resource=${specs}>${() => null}<//>`;
  if (!specs.data.length) return html`<section><h1 tabindex="-1">Start a run</h1><${Empty}><p>A run trains on a spec: <a href="#/specs/new">create one</a> first.</p><//></section>`;
  return html`<section>
    <h1 tabindex="-1">Start a run</h1>
    <form class="run-form" onSubmit=${runEstimate}>
      <label for="run-spec">Behaviour spec</label>
      <select id="run-spec" value=${form.spec_id} onChange=${(e) => set("spec_id", e.currentTarget.value)}>
        ${specs.data.map((s) => html`<option value=${s.id}>${s.name} (${s._example_count} examples)</option>`)}
      </select>
      <label for="run-dataset">Training data</label>
      <select id="run-dataset" value=${form.dataset_id} onChange=${(e) => set("dataset_id", e.currentTarget.value)}>
        <option value="">The spec's examples</option>
        ${(datasets.data ?? []).map((d) => html`<option value=${d.id}>Dataset ${d.name} (${d.row_count} rows)</option>`)}
      </select>
      ${datasets.status === "error" && html`<${ErrorMessage} error=${datasets.error} />`}
      ${form.dataset_id &&
      html`<fieldset class="grid3"><legend>Split ratios (sum 1)</legend>
        ${["train", "validation", "test"].map((part) => html`<div>
          <label for=${`split-${part}`}>${part[0].toUpperCase() + part.slice(1)}</label>
          <input id=${`split-${part}`} inputmode="decimal" value=${form[part]} onInput=${(e) => set(part, e.currentTarget.value)} />
        </div>`)}
      </fieldset>`}
      <fieldset class="grid4"><legend>Hyperparameters <span class="muted">(empty: the base model's default)</span></legend>
        ${HYPERPARAMETERS.map(([name, label, kind, hint]) => html`<div>
          <label for=${`hp-${name}`}>${label}</label>
          <input id=${`hp-${name}`} inputmode=${kind === "int" ? "numeric" : "decimal"} placeholder=${hint}
            value=${form[name]} onInput=${(e) => set(name, e.currentTarget.value)} />
        </div>`)}
      </fieldset>
      <div class="checks-row">
        <label><input type="checkbox" checked=${form.augment} onChange=${(e) => set("augment", e.currentTarget.checked)} /> Augment with generated rows (needs a Claude provider)</label>
        <label><input type="checkbox" checked=${form.use_llm_judge} onChange=${(e) => set("use_llm_judge", e.currentTarget.checked)} /> Score with the LLM judge (else similarity)</label>
      </div>
      <button type="submit" disabled=${busy || !form.spec_id}>${busy && !estimate ? "Estimating…" : "Estimate"}</button>
    </form>
    <${ErrorMessage} error=${error} />
    ${busy && !estimate && html`<${Loading} label="Estimating…" />`}
    ${estimate &&
    html`<section class="estimate" aria-labelledby="estimate-title">
      <h2 id="estimate-title">Estimate</h2>
      <${EstimateSummary} estimate=${estimate.data} />
      <p>Hyperparameters: ${estimate.body.hyperparameters
        ? Object.entries(estimate.body.hyperparameters).map(([k, v]) => `${k} = ${v}`).join(", ")
        : "the base model's defaults"}; augment ${estimate.body.augment ? "on" : "off"}, LLM judge ${estimate.body.use_llm_judge ? "on" : "off"}.</p>
      <${LintReport} lint=${estimate.data.spec_lint} />
      <button type="button" onClick=${start} disabled=${busy}>${busy ? "Starting…" : "Start run"}</button>
    </section>`}
  </section>`;
}
