"""The run's eval_summary (PRODUCT.md §10.3, §10.6)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from tt_core.evaluation.output_diagnostics import diagnose
from tt_core.evaluation.summary import average_latency_ms, summarize
from tt_core.models.evaluation import EvalResult, EvalSummary, OutputDiagnostics

SUMMARY_FIELDS = [
    "total",
    "eval_examples_total",
    "eval_examples_used",
    "eval_truncated",
    "eval_split",
    "eval_overlaps_training",
    "avg_score",
    "pass_rate",
    "exact_match_rate",
    "baseline_avg_score",
    "baseline_pass_rate",
    "avg_latency_ms",
    "scoring_method",
    "judge_model",
    "regressions",
    "improvements",
    "previous_run_id",
    "output_diagnostics",
]


def rows(scores: Sequence[tuple[str, float, float | None]]) -> list[EvalResult]:
    return [
        EvalResult(
            id=f"row-{prompt}",
            prompt=prompt,
            expected="e",
            actual="a",
            passed=score >= 0.7,
            score=score,
            reasoning="fine",
            latency_ms=latency,
            scored_by="llm_judge",
        )
        for prompt, score, latency in scores
    ]


CANDIDATE = rows([("p1", 1.0, 100.0), ("p2", 0.8, 200.0), ("p3", 0.5, None), ("p4", 0.96, 50.5)])
BASELINE = rows([("p1", 0.6, 10.0), ("p2", 0.7, 10.0), ("p3", 0.2, 10.0), ("p4", 0.3, 10.0)])


def test_summary_with_a_previous_run() -> None:
    # p1 1.0 vs 0.9: +0.1 → improvement; p2 0.8 vs 0.9: −0.1 → regression; p3 0.5 vs 0.55: no change;
    # p4 has no previous row; p9 has no candidate row
    previous = rows([("p1", 0.9, None), ("p2", 0.9, None), ("p3", 0.55, None), ("p9", 0.0, None)])
    diagnostics = OutputDiagnostics(
        baseline=diagnose([("a", "a", True)] * 4), candidate=diagnose([("b", "b", True)] * 4), insights=[]
    )
    summary = summarize(
        candidate=CANDIDATE,
        baseline=BASELINE,
        eval_examples_total=9,
        eval_truncated=True,
        eval_split="dataset_validation",
        eval_overlaps_training=False,
        scoring_method="llm_judge",
        judge_model="claude-judge",
        previous=previous,
        previous_run_id="run-1",
        output_diagnostics=diagnostics,
    )
    dumped = summary.model_dump(mode="json")
    assert list(dumped) == SUMMARY_FIELDS
    assert dumped == {
        "total": 4,
        "eval_examples_total": 9,
        "eval_examples_used": 4,
        "eval_truncated": True,
        "eval_split": "dataset_validation",
        "eval_overlaps_training": False,
        "avg_score": 0.815,  # 3.26 / 4
        "pass_rate": 0.75,  # 1.0, 0.8, 0.96
        "exact_match_rate": 0.5,  # 1.0, 0.96
        "baseline_avg_score": 0.45,  # 1.8 / 4
        "baseline_pass_rate": 0.25,  # 0.7
        "avg_latency_ms": 116.83,  # 350.5 / 3 = 116.8333…; the row without a latency is left out
        "scoring_method": "llm_judge",
        "judge_model": "claude-judge",
        "regressions": 1,
        "improvements": 1,
        "previous_run_id": "run-1",
        "output_diagnostics": diagnostics.model_dump(mode="json"),
    }


def test_summary_without_a_previous_run_or_rows() -> None:
    summary = summarize(
        candidate=[],
        baseline=[],
        eval_examples_total=0,
        eval_truncated=False,
        eval_split="spec_examples",
        eval_overlaps_training=True,
        scoring_method="similarity",
        judge_model=None,
        previous=None,
        previous_run_id=None,
        output_diagnostics=OutputDiagnostics.empty(),
    )
    assert (summary.total, summary.eval_examples_used, summary.regressions, summary.improvements) == (
        0,
        0,
        0,
        0,
    )
    assert (summary.avg_score, summary.pass_rate, summary.exact_match_rate) == (None, None, None)
    assert (summary.baseline_avg_score, summary.baseline_pass_rate, summary.avg_latency_ms) == (
        None,
        None,
        None,
    )
    assert summary.output_diagnostics.candidate.total == 0


def test_unknown_scoring_method_is_refused() -> None:
    with pytest.raises(ValidationError):
        summarize(
            candidate=CANDIDATE,
            baseline=BASELINE,
            eval_examples_total=4,
            eval_truncated=False,
            eval_split="spec_holdout",
            eval_overlaps_training=False,
            scoring_method="similarity_fallback",
            judge_model=None,
            previous=None,
            previous_run_id=None,
            output_diagnostics=OutputDiagnostics.empty(),
        )


def test_average_latency() -> None:
    assert average_latency_ms(rows([("a", 1.0, None)])) is None
    assert average_latency_ms(rows([("a", 1.0, 1.0), ("b", 1.0, 2.0), ("c", 1.0, 2.0)])) == 1.67


def test_summary_round_trips_through_json() -> None:
    summary = summarize(
        candidate=CANDIDATE,
        baseline=BASELINE,
        eval_examples_total=4,
        eval_truncated=False,
        eval_split="spec_holdout",
        eval_overlaps_training=False,
        scoring_method="similarity",
        judge_model=None,
        previous=[],
        previous_run_id="run-0",
        output_diagnostics=OutputDiagnostics.empty(),
    )
    assert (summary.regressions, summary.improvements) == (0, 0)  # a previous run with no rows
    assert EvalSummary.model_validate_json(summary.model_dump_json()) == summary
