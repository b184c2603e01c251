"""Evaluate step: score the trainer's base and tuned generations and summarise them (PRODUCT.md §10)."""

from __future__ import annotations

from typing import Any

from tt_core.models.evaluation import EvalResult, EvalSummary, OutputDiagnostics, TestDiagnostics
from tt_core.models.runs import RunRecord
from tt_core.output_diagnostics import diagnose, output_insights
from tt_core.ports import ObjectStore
from tt_core.run_artifacts import read_predictions
from tt_core.scoring import score_by_similarity

PRIMARY, TEST = "primary", "test"


def _scored(predictions: list[dict[str, Any]], side: str) -> list[EvalResult]:
    return [
        score_by_similarity(
            id=str(row["id"]),
            prompt=row["input"],
            expected=row["expected"],
            actual=row[side]["output"],
            latency_ms=row[side].get("latency_ms"),
        )
        for row in predictions
    ]


def _diagnostics(predictions: list[dict[str, Any]], side: str) -> Any:
    return diagnose(
        [(row[side]["output"], row["expected"], bool(row[side]["finished"])) for row in predictions]
    )


def evaluate_predictions(
    objects: ObjectStore,
    output_key: str,
    run: RunRecord,
    *,
    previous: tuple[str, list[dict[str, Any]]] | None,
) -> tuple[dict[str, Any], EvalSummary]:
    """The per-row results of both models on both splits, and the run's eval_summary."""
    from tt_core.eval_summary import summarize

    assert run.eval_plan is not None
    predictions = read_predictions(objects, output_key)
    splits = {name: [row for row in predictions if row.get("split") == name] for name in (PRIMARY, TEST)}
    results: dict[str, Any] = {}
    for name, rows in splits.items():
        if name == TEST and not rows:
            results[name] = None
            continue
        results[name] = {
            "baseline": [r.model_dump(mode="json") for r in _scored(rows, "base")],
            "candidate": [r.model_dump(mode="json") for r in _scored(rows, "tuned")],
        }
    primary = splits[PRIMARY]
    baseline, candidate = _diagnostics(primary, "base"), _diagnostics(primary, "tuned")
    test = None
    if splits[TEST]:
        test = TestDiagnostics(
            baseline=_diagnostics(splits[TEST], "base"), candidate=_diagnostics(splits[TEST], "tuned")
        )
    output = OutputDiagnostics(
        baseline=baseline,
        candidate=candidate,
        test=test,
        insights=output_insights(
            baseline, candidate, max_output_tokens=run.hyperparameters.max_output_tokens
        ),
    )
    plan = run.eval_plan
    summary = summarize(
        candidate=[EvalResult.model_validate(r) for r in results[PRIMARY]["candidate"]],
        baseline=[EvalResult.model_validate(r) for r in results[PRIMARY]["baseline"]],
        eval_examples_total=plan.eval_examples_total,
        eval_truncated=plan.eval_truncated,
        eval_split=plan.eval_split,
        eval_overlaps_training=plan.eval_overlaps_training,
        scoring_method="similarity",
        judge_model=None,
        previous=[EvalResult.model_validate(r) for r in previous[1]] if previous else None,
        previous_run_id=previous[0] if previous else None,
        output_diagnostics=output,
    )
    return results, summary
