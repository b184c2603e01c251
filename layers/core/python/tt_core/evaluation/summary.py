"""The run's eval_summary from its scored rows (PRODUCT.md §10.3, §10.6)."""

from __future__ import annotations

from collections.abc import Sequence

from tt_core.evaluation.scoring import PASS_THRESHOLD, rates, row_changes
from tt_core.evaluation.uncertainty import delta_interval, sample_size_insights, verdict, wilson_interval
from tt_core.models.evaluation import EvalResult, EvalSummary, OutputDiagnostics, ScoringMethod


def average_latency_ms(results: Sequence[EvalResult]) -> float | None:
    """Mean generation latency of the rows that have one, 2 decimals; None when none has."""
    latencies = [result.latency_ms for result in results if result.latency_ms is not None]
    return round(sum(latencies) / len(latencies), 2) if latencies else None


def scoring_method(
    results: Sequence[EvalResult], judge_model: str | None
) -> tuple[ScoringMethod, str | None]:
    """(scoring_method, judge_model) of §10.3 from how the rows were scored.

    A row's two outputs always share a scorer, so the tuned rows alone tell how many rows fell back.
    """
    fell_back = sum(result.scored_by == "similarity_fallback" for result in results)
    if judge_model is None or (results and fell_back == len(results)):
        return "similarity", None
    return ("mixed" if fell_back else "llm_judge"), judge_model


def pass_interval(results: Sequence[EvalResult]) -> tuple[float, float] | None:
    """Wilson 95% interval of the pass rate (score ≥ 0.7, as `rates` counts it)."""
    return wilson_interval(sum(result.score >= PASS_THRESHOLD for result in results), len(results))


def summarize(
    *,
    candidate: Sequence[EvalResult],
    baseline: Sequence[EvalResult],
    eval_examples_total: int,
    eval_truncated: bool,
    eval_split: str,
    eval_overlaps_training: bool,
    judge_model: str | None,
    run_id: str,
    previous: Sequence[EvalResult] | None,
    previous_run_id: str | None,
    output_diagnostics: OutputDiagnostics,
    selected_epoch: int | None = None,
) -> EvalSummary:
    """Tuned-model rates, base-model rates on the same rows, how sure the difference is, and changes
    since the previous run.

    `candidate` and `baseline` are the same rows in the same order; `judge_model` is None when no judge
    was asked; `run_id` seeds the bootstrap, so a run's interval is the same whenever it is computed.
    """
    avg_score, pass_rate, exact_match_rate = rates(candidate)
    baseline_avg_score, baseline_pass_rate, _ = rates(baseline)
    method, judge = scoring_method(candidate, judge_model)
    deltas = [tuned.score - base.score for tuned, base in zip(candidate, baseline, strict=True)]
    interval = delta_interval(deltas, seed=run_id)
    pass_rate_ci95 = pass_interval(candidate)
    # The difference of the two rounded means, as the report's comparison and the CLI show it.
    score_delta = (
        None if avg_score is None or baseline_avg_score is None else round(avg_score - baseline_avg_score, 4)
    )
    insights = [*output_diagnostics.insights, *sample_size_insights(len(candidate), pass_rate_ci95)]
    if selected_epoch is not None:
        insights.append(
            f"The model is epoch {selected_epoch}, chosen by early stopping on these evaluation rows: the "
            "verdict may be optimistic"
            + (" (the test block is not affected)." if output_diagnostics.test is not None else ".")
        )
    changes = row_changes(previous, candidate) if previous is not None else None
    return EvalSummary(
        total=len(candidate),
        eval_examples_total=eval_examples_total,
        eval_examples_used=len(candidate),
        eval_truncated=eval_truncated,
        eval_split=eval_split,
        eval_overlaps_training=eval_overlaps_training,
        avg_score=avg_score,
        pass_rate=pass_rate,
        exact_match_rate=exact_match_rate,
        baseline_avg_score=baseline_avg_score,
        baseline_pass_rate=baseline_pass_rate,
        avg_latency_ms=average_latency_ms(candidate),
        scoring_method=method,
        judge_model=judge,
        judge_fallback_rows=sum(result.scored_by == "similarity_fallback" for result in candidate),
        pass_rate_ci95=pass_rate_ci95,
        baseline_pass_rate_ci95=pass_interval(baseline),
        avg_score_delta=score_delta,
        avg_score_delta_ci95=interval,
        verdict=verdict(len(deltas), interval),
        regressions=len(changes.regressed) if changes else 0,
        improvements=len(changes.improved) if changes else 0,
        previous_run_id=previous_run_id,
        output_diagnostics=output_diagnostics.model_copy(update={"insights": insights}),
        selected_epoch=selected_epoch,
    )
