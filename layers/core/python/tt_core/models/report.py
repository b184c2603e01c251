"""The run report (PRODUCT.md §10.5): base vs tuned on the same rows, the test block, the previous run."""

from __future__ import annotations

from tt_core.models.common import Model
from tt_core.models.evaluation import Comparison, EvalResult, ExampleDelta, ScoringMethod


class ReportBlock(Model):
    """E of §10.5: one model's rates and rows on one split."""

    model: str
    total: int
    eval_examples_total: int
    eval_examples_used: int
    eval_truncated: bool
    avg_score: float | None
    pass_rate: float | None
    exact_match_rate: float | None
    avg_latency_ms: float | None
    results: list[EvalResult]


class TestReport(Model):
    __test__ = False  # not a pytest test class, whatever its name

    baseline: ReportBlock
    candidate: ReportBlock
    comparison: Comparison


class PreviousRunComparison(Model):
    """P of §10.5: the tuned rows against those of the previous completed run of the spec (§10.6)."""

    run_id: str
    run_number: int
    regressions: int
    improvements: int
    regressed_examples: list[ExampleDelta]
    improved_examples: list[ExampleDelta]


class RunReport(Model):
    run_id: str
    status: str
    fine_tuned_model_id: str | None
    eval_split: str | None
    scoring_method: ScoringMethod | None
    judge_model: str | None
    baseline: ReportBlock | None
    candidate: ReportBlock | None
    comparison: Comparison | None
    test: TestReport | None
    previous_run: PreviousRunComparison | None
