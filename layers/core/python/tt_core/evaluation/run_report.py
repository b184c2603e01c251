"""The run report (PRODUCT.md §10.5) from a run, its evals.json and the previous run's rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tt_core.evaluation.scoring import MAX_LISTED_EXAMPLES, compare, rates, row_changes
from tt_core.evaluation.summary import average_latency_ms
from tt_core.models.evaluation import EvalResult
from tt_core.models.report import PreviousRunComparison, ReportBlock, RunReport, TestReport
from tt_core.models.runs import RunRecord
from tt_core.models.tuned_models import model_name


def _rows(rows: Sequence[dict[str, Any]]) -> list[EvalResult]:
    return [EvalResult.model_validate(row) for row in rows]


def _block(model: str, results: list[EvalResult], total: int, truncated: bool) -> ReportBlock:
    avg_score, pass_rate, exact_match_rate = rates(results)
    return ReportBlock(
        model=model,
        total=len(results),
        eval_examples_total=total,
        eval_examples_used=len(results),
        eval_truncated=truncated,
        avg_score=avg_score,
        pass_rate=pass_rate,
        exact_match_rate=exact_match_rate,
        avg_latency_ms=average_latency_ms(results),
        results=results,
    )


def build_report(
    run: RunRecord,
    evals: dict[str, Any] | None,
    previous: tuple[RunRecord, Sequence[dict[str, Any]]] | None,
) -> RunReport:
    """§10.5; a run that is not completed (or has no results) has every block null.

    `previous`: the run eval_summary compared with (its previous_run_id) and that run's tuned rows,
    so the report's regressions are the summary's, row by row.
    """
    summary = run.eval_summary or {}
    plan = run.eval_plan
    report = RunReport(
        run_id=run.id,
        status=run.status,
        fine_tuned_model_id=run.model_id,
        eval_split=plan.eval_split if plan else None,
        scoring_method=summary.get("scoring_method"),
        judge_model=summary.get("judge_model"),
        baseline=None,
        candidate=None,
        comparison=None,
        test=None,
        previous_run=None,
    )
    if run.status != "completed" or evals is None or plan is None:
        return report
    base_model = run.base_model
    tuned_model = model_name(run.base_model, run.fine_tune_job_id) if run.fine_tune_job_id else base_model
    primary = evals["primary"]
    baseline, candidate = _rows(primary["baseline"]), _rows(primary["candidate"])
    test = None
    if evals.get("test"):
        test_baseline, test_candidate = _rows(evals["test"]["baseline"]), _rows(evals["test"]["candidate"])
        test = TestReport(
            baseline=_block(base_model, test_baseline, plan.test_examples_total, plan.test_truncated),
            candidate=_block(tuned_model, test_candidate, plan.test_examples_total, plan.test_truncated),
            comparison=compare(test_baseline, test_candidate, seed=run.id),
        )
    previous_run = None
    if previous is not None:
        other, rows = previous
        changes = row_changes(_rows(rows), candidate)
        previous_run = PreviousRunComparison(
            run_id=other.id,
            run_number=other.run_number,
            regressions=len(changes.regressed),
            improvements=len(changes.improved),
            regressed_examples=changes.regressed[:MAX_LISTED_EXAMPLES],
            improved_examples=changes.improved[:MAX_LISTED_EXAMPLES],
        )
    return report.model_copy(
        update={
            "baseline": _block(base_model, baseline, plan.eval_examples_total, plan.eval_truncated),
            "candidate": _block(tuned_model, candidate, plan.eval_examples_total, plan.eval_truncated),
            # Seeded by the run id, as eval_summary's: the same rows give the same interval.
            "comparison": compare(baseline, candidate, seed=run.id),
            "test": test,
            "previous_run": previous_run,
        }
    )
