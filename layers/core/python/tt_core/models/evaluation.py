"""Evaluation results, output diagnostics, comparisons and the run's eval_summary (PRODUCT.md §10)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tt_core.models.common import Model

ScoredBy = Literal["llm_judge", "similarity", "similarity_fallback"]
# `mixed`: a judge scored some rows, the others fell back to similarity (§10.3).
ScoringMethod = Literal["llm_judge", "mixed", "similarity"]
Verdict = Literal["better", "worse", "inconclusive"]
# A 95% interval [low, high]; JSON writes it as a two-item array.
Interval = tuple[float, float]


class EvalResult(Model):
    """One scored row (§10.1): `passed` = score ≥ 0.7 whatever the scorer; `reasoning` is the judge's."""

    id: str
    prompt: str
    expected: str
    actual: str
    passed: bool
    score: float
    reasoning: str | None = None
    latency_ms: float | None = None
    scored_by: ScoredBy


class JudgeVerdict(Model):
    """The LLM judge's structured answer for one row (§10.2); validated before it is used."""

    score: float = Field(ge=0, le=1, description="How well the output follows the spec, 0–1.")
    passed: bool = Field(description="Whether the output is acceptable.")
    reasoning: str = Field(description="One or two sentences explaining the score.")


class DiagnosticsBlock(Model):
    """Table D of §10.4 over one split's outputs of one model; rates have 4 decimals, null over 0 rows."""

    total: int
    avg_output_chars: float
    max_output_chars: int
    starts_json_count: int
    starts_json_rate: float | None
    valid_json_count: int
    valid_json_rate: float | None
    strict_json_count: int
    strict_json_rate: float | None
    expected_json_total: int
    expected_schema_keys_count: int
    expected_schema_keys_rate: float | None
    non_json_prefix_count: int
    non_json_prefix_rate: float | None
    visible_reasoning_prefix_count: int
    visible_reasoning_prefix_rate: float | None
    finished_count: int
    finished_rate: float | None

    @classmethod
    def empty(cls) -> DiagnosticsBlock:
        """The block before evaluation: diagnostics always show both blocks (§9.9)."""
        return cls(
            total=0,
            avg_output_chars=0.0,
            max_output_chars=0,
            starts_json_count=0,
            starts_json_rate=None,
            valid_json_count=0,
            valid_json_rate=None,
            strict_json_count=0,
            strict_json_rate=None,
            expected_json_total=0,
            expected_schema_keys_count=0,
            expected_schema_keys_rate=None,
            non_json_prefix_count=0,
            non_json_prefix_rate=None,
            visible_reasoning_prefix_count=0,
            visible_reasoning_prefix_rate=None,
            finished_count=0,
            finished_rate=None,
        )


class TestDiagnostics(Model):
    __test__ = False  # not a pytest test class, whatever its name

    baseline: DiagnosticsBlock
    candidate: DiagnosticsBlock


class OutputDiagnostics(Model):
    baseline: DiagnosticsBlock
    candidate: DiagnosticsBlock
    test: TestDiagnostics | None = None
    insights: list[str]

    @classmethod
    def empty(cls) -> OutputDiagnostics:
        return cls(baseline=DiagnosticsBlock.empty(), candidate=DiagnosticsBlock.empty(), insights=[])


class ExampleDelta(Model):
    prompt: str
    old_score: float
    new_score: float


class Comparison(Model):
    """C of §10.5: deltas are new − old; example lists worst / best first, at most 20 each; the
    interval and verdict as in §10.3, over the rows joined by prompt."""

    avg_score_delta: float | None
    avg_score_delta_ci95: Interval | None
    verdict: Verdict
    pass_rate_delta: float | None
    exact_match_rate_delta: float | None
    regressions: int
    improvements: int
    regressed_examples: list[ExampleDelta]
    improved_examples: list[ExampleDelta]


class EvalSummary(Model):
    """The run's `eval_summary` (§10.3): the tuned model on the primary split."""

    total: int
    eval_examples_total: int
    eval_examples_used: int
    eval_truncated: bool
    eval_split: str
    eval_overlaps_training: bool
    avg_score: float | None
    pass_rate: float | None
    exact_match_rate: float | None
    baseline_avg_score: float | None
    baseline_pass_rate: float | None
    avg_latency_ms: float | None
    scoring_method: ScoringMethod
    judge_model: str | None
    # Defaults: summaries stored before these fields existed still read (the API returns them as stored).
    judge_fallback_rows: int = 0
    pass_rate_ci95: Interval | None = None
    baseline_pass_rate_ci95: Interval | None = None
    avg_score_delta: float | None = None
    avg_score_delta_ci95: Interval | None = None
    verdict: Verdict = "inconclusive"
    regressions: int
    improvements: int
    previous_run_id: str | None
    output_diagnostics: OutputDiagnostics
    selected_epoch: int | None = None  # §9.10: early stopping's epoch, the registered model
