"""Evaluate step: score the trainer's base and tuned generations and summarise them (PRODUCT.md §10)."""

from __future__ import annotations

from typing import Any

from tt_core.evaluation.judge import ScoreJob, judge_groups
from tt_core.evaluation.output_diagnostics import diagnose, output_insights
from tt_core.evaluation.scoring import score_by_similarity
from tt_core.models.evaluation import EvalResult, EvalSummary, OutputDiagnostics, TestDiagnostics
from tt_core.models.runs import RunRecord
from tt_core.ports import Judge, ObjectStore
from tt_core.runs.artifacts import read_predictions

PRIMARY, TEST = "primary", "test"
SIDES = ("base", "tuned")


def _job(row: dict[str, Any], side: str) -> ScoreJob:
    return ScoreJob(
        id=str(row["id"]),
        prompt=row["input"],
        expected=row["expected"],
        actual=row[side]["output"],
        latency_ms=row[side].get("latency_ms"),
    )


def _by_similarity(job: ScoreJob) -> EvalResult:
    return score_by_similarity(
        id=job.id, prompt=job.prompt, expected=job.expected, actual=job.actual, latency_ms=job.latency_ms
    )


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
    judge: Judge | None = None,
    context: dict[str, Any] | None = None,
    timeout_seconds: float = 900,
) -> tuple[dict[str, Any], EvalSummary]:
    """The per-row results of both models on both splits, and the run's eval_summary.

    With a judge the rows of both splits (primary first) are judged row by row: a row's base and
    tuned outputs one after the other, and when either cannot be judged both fall back to similarity
    (§10.2), so the two models are always scored the same way on the same row. Without one, by
    similarity.
    """
    from tt_core.evaluation.summary import summarize

    assert run.eval_plan is not None
    predictions = read_predictions(objects, output_key)
    splits = {name: [row for row in predictions if row.get("split") == name] for name in (PRIMARY, TEST)}
    pairs = [[_job(row, side) for side in SIDES] for name in (PRIMARY, TEST) for row in splits[name]]
    if judge is not None:
        scored = judge_groups(judge, pairs, context=context or {}, timeout_seconds=timeout_seconds)
    else:
        scored = [[_by_similarity(job) for job in pair] for pair in pairs]
    parts: dict[tuple[str, str], list[EvalResult]] = {}
    start = 0
    for name in (PRIMARY, TEST):
        split_pairs = scored[start : start + len(splits[name])]
        start += len(splits[name])
        for index, side in enumerate(SIDES):
            parts[(name, side)] = [pair[index] for pair in split_pairs]
    results: dict[str, Any] = {}
    for name, rows in splits.items():
        if name == TEST and not rows:
            results[name] = None
            continue
        results[name] = {
            "baseline": [r.model_dump(mode="json") for r in parts[(name, "base")]],
            "candidate": [r.model_dump(mode="json") for r in parts[(name, "tuned")]],
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
        judge_model=judge.model if judge is not None else None,
        run_id=run.id,
        previous=[EvalResult.model_validate(r) for r in previous[1]] if previous else None,
        previous_run_id=previous[0] if previous else None,
        output_diagnostics=output,
        selected_epoch=run.selected_epoch,
    )
    return results, summary
