"""The run's eval_summary (PRODUCT.md §10.3, §10.6)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from tt_core.evaluation.output_diagnostics import diagnose
from tt_core.evaluation.summary import average_latency_ms, summarize
from tt_core.models.evaluation import EvalResult, EvalSummary, OutputDiagnostics, ScoredBy

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
    "judge_fallback_rows",
    "pass_rate_ci95",
    "baseline_pass_rate_ci95",
    "avg_score_delta",
    "avg_score_delta_ci95",
    "verdict",
    "regressions",
    "improvements",
    "previous_run_id",
    "output_diagnostics",
    "selected_epoch",
]


def rows(
    scores: Sequence[tuple[str, float, float | None]], scored_by: ScoredBy = "llm_judge"
) -> list[EvalResult]:
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
            scored_by=scored_by,
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
        judge_model="claude-judge",
        run_id="run-2",
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
        "judge_fallback_rows": 0,
        "pass_rate_ci95": [0.3006, 0.9544],  # Wilson, 3 of 4
        "baseline_pass_rate_ci95": [0.0456, 0.6994],  # 1 of 4
        "avg_score_delta": 0.365,  # 0.815 − 0.45
        "avg_score_delta_ci95": dumped["avg_score_delta_ci95"],  # resampled: checked below
        "verdict": "inconclusive",  # 4 rows: under 10, no verdict
        "regressions": 1,
        "improvements": 1,
        "previous_run_id": "run-1",
        "output_diagnostics": {
            **diagnostics.model_dump(mode="json"),
            "insights": [
                "Only 4 rows were evaluated: the tuned pass rate could be anywhere from 30% to 95%.",
                "Tuned vs base is inconclusive on 4 rows: no verdict under 10 rows.",
            ],
        },
        "selected_epoch": None,
    }
    # row deltas 0.4, 0.1, 0.3, 0.66: every resampled mean lies between the smallest and the largest
    low, high = dumped["avg_score_delta_ci95"]
    assert 0.1 <= low < 0.365 < high <= 0.66


def test_summary_without_a_previous_run_or_rows() -> None:
    summary = summarize(
        candidate=[],
        baseline=[],
        eval_examples_total=0,
        eval_truncated=False,
        eval_split="spec_examples",
        eval_overlaps_training=True,
        judge_model=None,
        run_id="run-1",
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
    # over zero rows: no interval, no delta, no verdict, and no sample-size insight
    assert (summary.pass_rate_ci95, summary.baseline_pass_rate_ci95) == (None, None)
    assert (summary.avg_score_delta, summary.avg_score_delta_ci95, summary.verdict) == (
        None,
        None,
        "inconclusive",
    )
    assert summary.output_diagnostics.insights == []
    assert (summary.scoring_method, summary.judge_fallback_rows) == ("similarity", 0)


def _summary(candidate: list[EvalResult], baseline: list[EvalResult], judge_model: str | None) -> EvalSummary:
    return summarize(
        candidate=candidate,
        baseline=baseline,
        eval_examples_total=len(candidate),
        eval_truncated=False,
        eval_split="spec_holdout",
        eval_overlaps_training=False,
        judge_model=judge_model,
        run_id="run-1",
        previous=None,
        previous_run_id=None,
        output_diagnostics=OutputDiagnostics.empty(),
    )


def test_scoring_method_follows_the_rows_that_fell_back() -> None:
    judged = rows([("p1", 0.9, None), ("p2", 0.8, None)])
    mixed = judged[:1] + rows([("p2", 0.8, None)], "similarity_fallback")
    fell_back = rows([("p1", 0.9, None), ("p2", 0.8, None)], "similarity_fallback")
    cases = [
        (judged, "judge", ("llm_judge", "judge", 0)),
        (mixed, "judge", ("mixed", "judge", 1)),
        (fell_back, "judge", ("similarity", None, 2)),  # every row fell back: no judge scored any
        (rows([("p1", 0.9, None)], "similarity"), None, ("similarity", None, 0)),
    ]
    for candidate, judge_model, expected in cases:
        summary = _summary(candidate, candidate, judge_model)
        assert (summary.scoring_method, summary.judge_model, summary.judge_fallback_rows) == expected


def test_unknown_scoring_method_is_refused() -> None:
    stored = _summary(CANDIDATE, BASELINE, None).model_dump(mode="json")
    with pytest.raises(ValidationError):
        EvalSummary.model_validate({**stored, "scoring_method": "similarity_fallback"})


def test_a_summary_stored_before_intervals_still_reads() -> None:
    stored = _summary(CANDIDATE, BASELINE, "judge").model_dump(mode="json")
    for field in (
        "judge_fallback_rows",
        "pass_rate_ci95",
        "baseline_pass_rate_ci95",
        "avg_score_delta",
        "avg_score_delta_ci95",
        "verdict",
    ):
        del stored[field]
    old = EvalSummary.model_validate(stored)
    assert (old.judge_fallback_rows, old.pass_rate_ci95, old.avg_score_delta_ci95, old.verdict) == (
        0,
        None,
        None,
        "inconclusive",
    )


def test_ten_rows_that_all_improve_are_better_and_all_that_drop_are_worse() -> None:
    base = rows([(f"p{i}", round(0.3 + i / 100, 2), None) for i in range(10)])
    tuned = rows([(f"p{i}", round(0.8 + i / 100, 2), None) for i in range(10)])
    better = _summary(tuned, base, None)
    assert better.verdict == "better" and better.avg_score_delta == 0.5
    assert better.avg_score_delta_ci95 == (0.5, 0.5)  # every row moved by the same 0.5
    assert _summary(base, tuned, None).verdict == "worse"
    assert _summary(tuned[:9], base[:9], None).verdict == "inconclusive"  # 9 rows: no verdict
    assert not any("no verdict" in text for text in better.output_diagnostics.insights)


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
        judge_model=None,
        run_id="run-1",
        previous=[],
        previous_run_id="run-0",
        output_diagnostics=OutputDiagnostics.empty(),
    )
    assert (summary.regressions, summary.improvements) == (0, 0)  # a previous run with no rows
    assert EvalSummary.model_validate_json(summary.model_dump_json()) == summary


def test_an_early_stopping_epoch_is_named_with_its_optimism() -> None:
    diagnostics = OutputDiagnostics(
        baseline=diagnose([("a", "a", True)] * 4), candidate=diagnose([("b", "b", True)] * 4), insights=[]
    )
    summary = summarize(
        candidate=CANDIDATE,
        baseline=BASELINE,
        eval_examples_total=4,
        eval_truncated=False,
        eval_split="validation",
        eval_overlaps_training=False,
        judge_model=None,
        run_id="run-3",
        previous=None,
        previous_run_id=None,
        output_diagnostics=diagnostics,
        selected_epoch=4,
    )
    assert summary.selected_epoch == 4
    assert summary.output_diagnostics.insights[-1] == (
        "The model is epoch 4, chosen by early stopping on these evaluation rows: the verdict may be "
        "optimistic."
    )
