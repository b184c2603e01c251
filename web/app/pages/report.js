// A run's report (GET /runs/:id/report): base vs tuned on the same rows, the comparison with its interval
// and verdict, every row side by side, the test split and the previous run; downloadable as JSON.
import { html } from "../html.js";
import { api } from "../api.js";
import { Async, CodeLine, Empty, interval, num, pct, useResource } from "../components.js";
import { EvalTable } from "./run.js";

function download(report) {
  const blob = new Blob([JSON.stringify(report, null, 2)], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `report-${report.run_id}.json`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function Block({ block, title }) {
  const c = block.comparison;
  return html`<section aria-label=${title}>
    <h2>${title}</h2>
    <div class="scroll"><table>
      <caption class="visually-hidden">${title}: base vs tuned</caption>
      <thead><tr><th scope="col"></th><th scope="col">Base (${block.baseline.model})</th><th scope="col">Tuned (${block.candidate.model})</th><th scope="col">Delta</th></tr></thead>
      <tbody>
        <tr><th scope="row">Avg score</th><td>${num(block.baseline.avg_score)}</td><td>${num(block.candidate.avg_score)}</td><td>${num(c.avg_score_delta)} ${interval(c.avg_score_delta_ci95, num)}</td></tr>
        <tr><th scope="row">Pass rate</th><td>${pct(block.baseline.pass_rate)}</td><td>${pct(block.candidate.pass_rate)}</td><td>${pct(c.pass_rate_delta)}</td></tr>
        <tr><th scope="row">Exact match</th><td>${pct(block.baseline.exact_match_rate)}</td><td>${pct(block.candidate.exact_match_rate)}</td><td>${pct(c.exact_match_rate_delta)}</td></tr>
        <tr><th scope="row">Avg latency</th><td>${num(block.baseline.avg_latency_ms, 0)} ms</td><td>${num(block.candidate.avg_latency_ms, 0)} ms</td><td></td></tr>
      </tbody>
    </table></div>
    <p>Verdict: <span class=${`verdict ${c.verdict}`}>${c.verdict}</span> · ${c.regressions} regressions, ${c.improvements} improvements over ${block.candidate.total} rows.</p>
    <${EvalTable} block=${block} title=${`${title} rows`} />
  </section>`;
}

export function ReportPage({ id }) {
  const report = useResource(() => api(`/runs/${id}/report`).then((r) => r.data), [id]);
  return html`<section class="report">
    <div class="title-row">
      <h1 tabindex="-1">Run report</h1>
      <div class="actions">
        <a class="button secondary" href=${`#/runs/${id}`}>Back to the run</a>
        ${report.status === "ready" && html`<button type="button" onClick=${() => download(report.data)}>Download JSON</button>`}
      </div>
    </div>
    <p>The same report as one offline HTML file: <${CodeLine} text=${`tt runs report ${id} --html report-${id.slice(0, 8)}.html`} label="Copy the report command" /></p>
    <${Async} resource=${report}>${(r) =>
      !r.comparison
        ? html`<${Empty}><p>The report is ready once the run completes (status: ${r.status}).</p><//>`
        : html`<p class="muted">Split ${r.eval_split.replace(/_/g, " ")} · scored by ${r.scoring_method}${r.judge_model ? ` (${r.judge_model})` : ""}</p>
          <${Block} block=${r} title="Primary split" />
          ${r.test && html`<${Block} block=${r.test} title="Test split" />`}
          ${r.previous_run && html`<section aria-label="Previous run"><h2>Against run #${r.previous_run.run_number}</h2>
            <p>${r.previous_run.regressions} regressions, ${r.previous_run.improvements} improvements.</p>
            <ul>${r.previous_run.regressed_examples.map((e) => html`<li>Regressed: ${e.prompt} (${num(e.old_score)} → ${num(e.new_score)})</li>`)}
              ${r.previous_run.improved_examples.map((e) => html`<li>Improved: ${e.prompt} (${num(e.old_score)} → ${num(e.new_score)})</li>`)}</ul></section>`}`}<//>
  </section>`;
}

