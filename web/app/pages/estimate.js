// The run estimate (rows, tokens, minutes, cost) and the spec lint it carries: broken Never/Always
// constraints and the guidelines or constraints that no example exercises.
import { html } from "../html.js";
import { Empty, int } from "../components.js";

export function EstimateSummary({ estimate }) {
  const d = estimate.duration;
  return html`<dl class="cards" aria-label="Estimate">
    <div class="card"><dt>Training rows</dt><dd>${int(estimate.estimated_rows)}</dd></div>
    <div class="card"><dt>Training tokens</dt><dd>${int(estimate.estimated_training_tokens)}</dd></div>
    <div class="card"><dt>Epochs</dt><dd>${estimate.estimated_epochs}</dd></div>
    <div class="card">
      <dt>Minutes</dt>
      <dd>${d.estimated_minutes.toFixed(1)}</dd>
      <dd class="muted">${d.range_minutes.low.toFixed(1)}–${d.range_minutes.high.toFixed(1)} · ${d.basis.replace(/_/g, " ")}, ${d.confidence} confidence</dd>
    </div>
    <div class="card"><dt>Cost</dt><dd>$${estimate.estimated_cost_usd.toFixed(2)}</dd><dd class="muted">${estimate.instance_type}</dd></div>
  </dl>`;
}

export function LintReport({ lint }) {
  const broken = lint.constraints.filter((c) => !c.passed);
  const uncovered = lint.coverage.filter((c) => c.examples === 0);
  return html`<section class="lint" aria-labelledby="lint-title">
    <h2 id="lint-title">Spec lint</h2>
    <p class=${broken.length ? "bad" : uncovered.length ? "warn" : "good"}>
      ${broken.length ? `${broken.length} constraint${broken.length > 1 ? "s" : ""} broken by the examples.` : "No constraint is broken by the examples."}
      ${" "}${uncovered.length ? `${uncovered.length} rule${uncovered.length > 1 ? "s" : ""} no example exercises.` : "Every rule is exercised by an example."}
    </p>
    ${lint.constraints.length > 0 &&
    html`<ul class="checks">
      ${lint.constraints.map(
        (c) => html`<li class=${c.passed ? "pass" : "fail"}>
          <span class="mark" aria-hidden="true">${c.passed ? "✓" : "✗"}</span>
          <span class="visually-hidden">${c.passed ? "Passed:" : "Failed:"}</span> ${c.message}
        </li>`,
      )}
    </ul>`}
    ${lint.coverage.length
      ? html`<div class="scroll"><table>
          <caption>Coverage: examples that share a keyword with each rule</caption>
          <thead><tr><th scope="col">Rule</th><th scope="col">Kind</th><th scope="col">Examples</th></tr></thead>
          <tbody>
            ${lint.coverage.map(
              (c) => html`<tr class=${c.examples === 0 ? "uncovered" : ""}>
                <td>${c.text}</td><td>${c.kind}</td>
                <td>${c.examples}${c.examples === 0 ? " — no example exercises it" : ""}</td>
              </tr>`,
            )}
          </tbody>
        </table></div>`
      : html`<${Empty}>The spec has no guidelines or constraints to cover.<//>`}
  </section>`;
}
