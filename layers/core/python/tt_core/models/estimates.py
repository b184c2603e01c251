"""The run estimate response (PRODUCT.md §9.8)."""

from __future__ import annotations

from typing import Literal

from tt_core.models.common import Model
from tt_core.models.spec_lint import SpecLint

EstimateBasis = Literal["matched_model", "all_completed_runs", "fallback"]
EstimateConfidence = Literal["high", "medium", "low"]


class RangeMinutes(Model):
    low: float
    high: float


class DurationEstimate(Model):
    estimated_minutes: float
    range_minutes: RangeMinutes
    basis: EstimateBasis
    confidence: EstimateConfidence
    sample_count: int  # completed runs behind a history basis; 0 for fallback


class RunEstimate(Model):
    estimated_rows: int
    estimated_training_tokens: int
    estimated_epochs: int
    duration: DurationEstimate
    estimated_cost_usd: float
    estimated_cost_cents: int
    instance_type: str


class RunEstimateResponse(RunEstimate):
    """What the estimate endpoint returns: §9.8 plus the spec lint of the rows the run would use, so
    that gaps (broken constraints, rules no example exercises) show before a run is paid for."""

    spec_lint: SpecLint
