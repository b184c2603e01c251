"""Evaluate step: score the trainer's base and tuned generations and summarise them (PRODUCT.md §10)."""

from __future__ import annotations

from typing import Any

from tt_core.evaluation.judge import ScoreJob, judge_rows
from tt_core.evaluation.output_diagnostics import diagnose, output_insights
from tt_core.evaluation.scoring import score_by_similarity
from tt_core.models.evaluation import EvalResult, EvalSummary, OutputDiagnostics, TestDiagnostics
from tt_core.models.runs import RunRecord
from tt_core.ports import Judge, ObjectStore
from tt_core.runs.artifacts import read_predictions

PRIMARY, TEST = "primary", "test"


def _jobs(predictions: list[dict[str, Any]], side: str) -> list[ScoreJob]:
    return [
        ScoreJob(
            id=str(row["id"]),
            prompt=row["input"],
            expected=row["expected"],
            actual=row[side]["output"],
            latency_ms=row[side].get("latency_ms"),
        )
        for row in predictions
    ]


def _by_similarity(jobs: list[ScoreJob]) -> list[EvalResult]:
    return [
        score_by_similarity(
            id=job.id, prompt=job.prompt, expected=job.expected, actual=job.actual, latency_ms=job.latency_ms
        )
        for job in jobs
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
    judge: Judge | None = None,
    context: dict[str, Any] | None = None,
    timeout_seconds: float = 900,
) -> tuple[dict[str, Any], EvalSummary]:
    """The per-row results of both models on both splits, and the run's eval_summary.

    With a judge every output (base and tuned, both splits) is judged in one pool, so both models
    are scored the same way on the same rows; without one, by similarity.
    """
    from tt_core.evaluation.summary import summarize

    assert run.eval_plan is not None
    predictions = read_predictions(objects, output_key)
    splits = {name: [row for row in predictions if row.get("split") == name] for name in (PRIMARY, TEST)}
    jobs = {(name, side): _jobs(rows, side) for name, rows in splits.items() for side in ("base", "tuned")}
    everything = [job for part in jobs.values() for job in part]
    if judge is not None:
        scored = judge_rows(judge, everything, context=context or {}, timeout_seconds=timeout_seconds)
    else:
        scored = _by_similarity(everything)
    parts: dict[tuple[str, str], list[EvalResult]] = {}
    start = 0
    for key, part in jobs.items():
        parts[key], start = scored[start : start + len(part)], start + len(part)
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
        scoring_method="llm_judge" if judge is not None else "similarity",
        judge_model=judge.model if judge is not None else None,
        previous=[EvalResult.model_validate(r) for r in previous[1]] if previous else None,
        previous_run_id=previous[0] if previous else None,
        output_diagnostics=output,
    )
    return results, summary
