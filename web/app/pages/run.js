// One run: stage timeline, live progress and loss curves while it trains (polled), cancel, events; once it
// completes, the verdict with its intervals, the base-vs-tuned eval table, regressions, checkpoints.
import { html, useEffect, useState } from "../html.js";
import { api } from "../api.js";
import {
  ACTIVE, Async, ConfirmButton, Empty, ErrorMessage, Progress, StatusBadge, interval, num, pct, useResource, when,
} from "../components.js";
import { LossChart } from "../chart.js";

const POLL_MS = 1500;
// PRODUCT.md §9.2, in order.
const STAGES = [
  ["compiling_spec", "Compiling spec"],
  ["augmenting", "Augmenting examples"],
  ["uploading_dataset", "Uploading dataset"],
  ["training_queued", "Waiting for training capacity"],
  ["training_running", "Training model"],
  ["generating_predictions", "Generating predictions"],
  ["scoring", "Scoring outputs"],
  ["completed", "Completed"],
];
const CHANGE = 0.1; // a regression / improvement moved the score this much (§10.5)

function stageStates(run) {
  const seen = {};
  for (const event of run._events ?? []) {
    if (event.status === "info") continue;
    seen[event.stage] = event.status;
  }
  return STAGES.map(([stage, label]) => {
    let state = { started: "current", completed: "done", failed: "failed", cancelled: "cancelled" }[seen[stage]] ?? "pending";
    if (stage === "completed" && run.status === "completed") state = "done";
    if (state === "current" && !ACTIVE.includes(run.status)) state = run.status === "completed" ? "done" : run.status;
    return { stage, label, state };
  });
}

function Timeline({ run }) {
  return html`<ol class="timeline" aria-label="Stages">
    ${stageStates(run).map(
      (s) => html`<li class=${`stage ${s.state}`} aria-current=${s.state === "current" ? "step" : undefined}>
        <span class="dot" aria-hidden="true"></span>${s.label}<span class="visually-hidden"> (${s.state})</span>
      </li>`,
    )}
  </ol>`;
}

export function RunPage({ id }) {
  const [active, setActive] = useState(true);
  const run = useResource(() => api(`/runs/${id}`).then((r) => r.data), [id], { poll: active ? POLL_MS : 0 });
  const diagnostics = useResource(() => api(`/runs/${id}/diagnostics`).then((r) => r.data), [id], { poll: active ? POLL_MS : 0 });
  const status = run.data?.status;
  useEffect(() => {
    if (!status) return;
    const isActive = ACTIVE.includes(status);
    if (!isActive && active) diagnostics.reload(true); // the last samples, once
    setActive(isActive);
  }, [status]);
  const [error, setError] = useState(null);
  const cancel = async () => {
    try {
      await api(`/runs/${id}/cancel`, { method: "POST" });
      run.reload(true);
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<${Async} resource=${run}>${(r) => html`<section class="run">
    <div class="title-row">
      <h1 tabindex="-1">${r._spec_name} · run #${r.run_number} <${StatusBadge} status=${r.status} /></h1>
      <div class="actions">
        <a class="button secondary" href=${`#/specs/${r.behavior_spec_id}`}>Spec</a>
        ${r.status === "completed" && html`<a class="button secondary" href=${`#/runs/${r.id}/report`}>Report</a>`}
        ${ACTIVE.includes(r.status) && html`<${ConfirmButton} label="Cancel run" question="Stop this run now?" onConfirm=${cancel} />`}
      </div>
    </div>
    <${ErrorMessage} error=${error} />
    <div class="progress-row" aria-live="polite">
      <${Progress} value=${r.progress_pct} label="Run progress" />
      <span class="pct">${r.progress_pct}%</span>
      <span>${r.stage_label}${r.status_message ? ` — ${r.status_message}` : ""}</span>
    </div>
    ${r.error && html`<p class="state error" role="alert">${r.error}</p>`}
    <${Timeline} run=${r} />
    <h2>Loss</h2>
    ${diagnostics.status === "error" ? html`<${ErrorMessage} error=${diagnostics.error} />`
      : diagnostics.data ? html`<${Training} diagnostics=${diagnostics.data} />` : null}
    ${r.status === "completed" && r.eval_summary && html`<${Results} run=${r} />`}
    <${Checkpoints} id=${r.id} status=${r.status} />
    <${Facts} run=${r} />
    <h2>Events</h2>
    <ol class="events">
      ${(r._events ?? []).map((e) => html`<li class=${`event ${e.status}`}>
        <time datetime=${e.occurred_at}>${when(e.occurred_at)}</time> <strong>${e.label}</strong> ${e.message}
      </li>`)}
    </ol>
  </section>`}<//>`;
}

function Training({ diagnostics }) {
  const { training, insights } = diagnostics;
  const samples = training.curve.samples;
  return html`<div class="training">
    <p>${training.phase}${training.curve.latest_epoch != null ? ` · epoch ${num(training.curve.latest_epoch, 2)} of ${training.curve.target_epochs}` : ""}</p>
    ${samples.length ? html`<${LossChart} samples=${samples} />` : html`<${Empty}><p>The curve appears once the trainer logs its first step.</p><//>`}
    ${insights.length > 0 && html`<ul class="insights">${insights.map((i) => html`<li>${i}</li>`)}</ul>`}
  </div>`;
}

function Results({ run }) {
  const s = run.eval_summary;
  const report = useResource(() => api(`/runs/${run.id}/report`).then((r) => r.data), [run.id]);
  return html`<section aria-labelledby="verdict-title">
    <h2 id="verdict-title">Verdict: <span class=${`verdict ${s.verdict}`}>${s.verdict}</span></h2>
    <dl class="cards">
      <div class="card"><dt>Tuned avg score</dt><dd>${num(s.avg_score)}</dd><dd class="muted">base ${num(s.baseline_avg_score)}</dd></div>
      <div class="card"><dt>Score delta</dt><dd>${s.avg_score_delta >= 0 ? "+" : ""}${num(s.avg_score_delta)}</dd><dd class="muted">95% CI ${interval(s.avg_score_delta_ci95, num)}</dd></div>
      <div class="card"><dt>Tuned pass rate</dt><dd>${pct(s.pass_rate)}</dd><dd class="muted">95% CI ${interval(s.pass_rate_ci95)}</dd></div>
      <div class="card"><dt>Base pass rate</dt><dd>${pct(s.baseline_pass_rate)}</dd><dd class="muted">95% CI ${interval(s.baseline_pass_rate_ci95)}</dd></div>
      <div class="card"><dt>Rows evaluated</dt><dd>${s.eval_examples_used}</dd><dd class="muted">${s.eval_split.replace(/_/g, " ")} · ${s.scoring_method}</dd></div>
    </dl>
    <p>
      ${s.previous_run_id
        ? html`Against the <a href=${`#/runs/${s.previous_run_id}`}>previous completed run</a>: ${s.regressions} regression${s.regressions === 1 ? "" : "s"}, ${s.improvements} improvement${s.improvements === 1 ? "" : "s"}.`
        : "No previous completed run of this spec to compare with."}
      ${run.model_id && html` Model: <a href=${`#/models/${run.model_id}`}>details, download and playground</a>.`}
    </p>
    <${Async} resource=${report}>${(data) => html`
      <${PreviousRun} previous=${data.previous_run} />
      <${EvalTable} block=${data} title="Evaluation rows" />
      ${data.test && html`<${EvalTable} block=${data.test} title="Test split" />`}
    `}<//>
  </section>`;
}

function PreviousRun({ previous }) {
  if (!previous || !previous.regressed_examples.length) return null;
  return html`<details class="regressions">
    <summary>Regressed since run #${previous.run_number} (${previous.regressions})</summary>
    <ul>${previous.regressed_examples.map((e) => html`<li>${e.prompt}: ${num(e.old_score)} → ${num(e.new_score)}</li>`)}</ul>
  </details>`;
}

// Base and tuned rows joined by prompt, as the report compares them.
export function joinRows(block) {
  const base = new Map(block.baseline.results.map((row) => [row.prompt, row]));
  return block.candidate.results.map((tuned) => {
    const b = base.get(tuned.prompt);
    const regressed = b && tuned.score <= b.score - CHANGE;
    const improved = b && tuned.score >= b.score + CHANGE;
    return { tuned, base: b, regressed, improved, failed: !tuned.passed };
  });
}

const FILTERS = [["all", "All rows"], ["failures", "Failures"], ["regressions", "Regressions"]];

export function EvalTable({ block, title }) {
  const [filter, setFilter] = useState("all");
  const rows = joinRows(block).filter((r) => filter === "all" || (filter === "failures" ? r.failed : r.regressed));
  const name = title.toLowerCase().replace(/\W+/g, "-");
  return html`<section class="evals" aria-label=${title}>
    <h3>${title}</h3>
    <fieldset class="filters"><legend>Show</legend>
      ${FILTERS.map(([value, label]) => html`<label>
        <input type="radio" name=${`filter-${name}`} value=${value} checked=${filter === value} onChange=${() => setFilter(value)} /> ${label}
      </label>`)}
    </fieldset>
    ${rows.length === 0
      ? html`<${Empty}><p>No ${filter === "all" ? "rows" : filter} here.</p><//>`
      : html`<div class="scroll"><table class="eval-table">
          <caption class="visually-hidden">${title}: input, expected, base output, tuned output, scores</caption>
          <thead><tr><th scope="col">Input</th><th scope="col">Expected</th><th scope="col">Base output</th><th scope="col">Tuned output</th><th scope="col">Scores (base → tuned)</th></tr></thead>
          <tbody>${rows.map((r) => html`<tr class=${r.regressed ? "regression" : r.improved ? "improvement" : ""}>
            <td class="text">${r.tuned.prompt}</td><td class="text">${r.tuned.expected}</td>
            <td class="text">${r.base?.actual ?? "–"}</td><td class="text">${r.tuned.actual}</td>
            <td>${num(r.base?.score)} → ${num(r.tuned.score)} ${r.tuned.passed ? html`<span class="badge pass">pass</span>` : html`<span class="badge fail">fail</span>`}
              ${r.regressed && html`<span class="badge status-failed">regression</span>`}
              ${r.tuned.reasoning && html`<div class="muted">${r.tuned.reasoning}</div>`}</td>
          </tr>`)}</tbody>
        </table></div>`}
  </section>`;
}

// §9.10; the section stays hidden where the API has no checkpoints route (404).
function Checkpoints({ id, status }) {
  const checkpoints = useResource(() => api(`/runs/${id}/checkpoints`).then((r) => r.data, (e) => (e.status === 404 ? null : Promise.reject(e))), [id, status]);
  if (checkpoints.status === "ready" && checkpoints.data === null) return null;
  return html`<section aria-labelledby="checkpoints-title">
    <h2 id="checkpoints-title">Checkpoints</h2>
    <${Async} resource=${checkpoints}>${(rows) =>
      rows.length === 0
        ? html`<${Empty}><p>No checkpoint yet: one is saved at the end of each epoch.</p><//>`
        : html`<div class="scroll"><table>
            <caption class="visually-hidden">Checkpoints</caption>
            <thead><tr><th scope="col">Epoch</th><th scope="col">Step</th><th scope="col">Train loss</th><th scope="col">Valid loss</th><th scope="col">Valid token accuracy</th><th scope="col">Registered</th><th scope="col">Download</th></tr></thead>
            <tbody>${rows.map((c) => html`<tr>
              <td>${c.epoch}</td><td>${c.step}</td><td>${num(c.metrics?.train_loss)}</td><td>${num(c.metrics?.valid_loss)}</td>
              <td>${pct(c.metrics?.valid_token_accuracy)}</td><td>${c.is_registered_model ? "yes" : ""}</td>
              <td><${CheckpointDownload} id=${id} epoch=${c.epoch} /></td>
            </tr>`)}</tbody>
          </table></div>`}<//>
  </section>`;
}

function CheckpointDownload({ id, epoch }) {
  const [error, setError] = useState(null);
  const download = async () => {
    try {
      const { data } = await api(`/runs/${id}/checkpoints/${epoch}/download`);
      location.assign(data.url);
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<button type="button" class="secondary" onClick=${download} aria-label=${`Download the epoch ${epoch} checkpoint`}>Download</button><${ErrorMessage} error=${error} />`;
}

function Facts({ run }) {
  const hp = run.hyperparameters ?? {};
  return html`<details class="facts-box">
    <summary>Hyperparameters and rows</summary>
    <dl class="facts">
      ${Object.entries(hp).map(([k, v]) => html`<div><dt>${k}</dt><dd>${String(v)}</dd></div>`)}
      ${run.row_counts && Object.entries(run.row_counts).map(([k, v]) => html`<div><dt>${k} rows</dt><dd>${v ?? "–"}</dd></div>`)}
      <div><dt>Started</dt><dd>${when(run.started_at)}</dd></div>
      <div><dt>Finished</dt><dd>${when(run.completed_at)}</dd></div>
    </dl>
  </details>`;
}
