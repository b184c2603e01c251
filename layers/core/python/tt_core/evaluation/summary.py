"""The run's eval_summary from its scored rows (PRODUCT.md §10.3, §10.6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from tt_core.evaluation.scoring import compare, rates
from tt_core.models.evaluation import EvalResult, EvalSummary, OutputDiagnostics, ScoringMethod


def average_latency_ms(results: Sequence[EvalResult]) -> float | None:
    """Mean generation latency of the rows that have one, 2 decimals; None when none has."""
    latencies = [result.latency_ms for result in results if result.latency_ms is not None]
    return round(sum(latencies) / len(latencies), 2) if latencies else None


def summarize(
    *,
    candidate: Sequence[EvalResult],
    baseline: Sequence[EvalResult],
    eval_examples_total: int,
    eval_truncated: bool,
    eval_split: str,
    eval_overlaps_training: bool,
    scoring_method: str,
    judge_model: str | None,
    previous: Sequence[EvalResult] | None,
    previous_run_id: str | None,
    output_diagnostics: OutputDiagnostics,
) -> EvalSummary:
    """Tuned-model rates, base-model rates on the same rows, and changes since the previous run."""
    avg_score, pass_rate, exact_match_rate = rates(candidate)
    baseline_avg_score, baseline_pass_rate, _ = rates(baseline)
    changes = compare(previous, candidate) if previous is not None else None
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
        # pydantic refuses any other method at run time; the cast only informs the type checker
        scoring_method=cast(ScoringMethod, scoring_method),
        judge_model=judge_model,
        regressions=changes.regressions if changes else 0,
        improvements=changes.improvements if changes else 0,
        previous_run_id=previous_run_id,
        output_diagnostics=output_diagnostics,
    )
