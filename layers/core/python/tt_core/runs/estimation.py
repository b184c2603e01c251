"""Run estimates (PRODUCT.md §9.8): rows, tokens, duration from completed-run history or a fallback, cost."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from tt_core.augmentation.rows import augmentation_target
from tt_core.models.estimates import DurationEstimate, EstimateBasis, RangeMinutes, RunEstimate
from tt_core.runs.compiler import Example
from tt_core.schema import TrainingProfile

CHARACTERS_PER_TOKEN = 4
MIN_HISTORY_SAMPLES = 3
HIGH_CONFIDENCE_SAMPLES = 10
FALLBACK_RANGE = (0.75, 1.5)


def rate_minutes_per_million(duration_minutes: float, training_tokens: int, n_epochs: int) -> float:
    """A completed run's minutes per million token-epochs (the history sample); ValueError without tokens."""
    token_epochs = training_tokens * n_epochs
    if token_epochs <= 0:
        raise ValueError("a rate needs training tokens and epochs")
    return duration_minutes * 1_000_000 / token_epochs


def estimated_training_tokens(training_rows: Sequence[Example], system_prompt: str, total_rows: int) -> int:
    """⌈characters ÷ 4⌉ over `total_rows` rows: the real ones, the generated ones at their mean length."""
    if not training_rows:
        return 0
    characters = sum(len(system_prompt) + len(row.input) + len(row.output) for row in training_rows)
    # Exact integer ceiling of characters × (total_rows ÷ rows) ÷ 4: no float rounding at the edge.
    return -(-characters * total_rows // (CHARACTERS_PER_TOKEN * len(training_rows)))


def _usable(rates: Sequence[float]) -> list[float]:
    return [rate for rate in rates if math.isfinite(rate) and rate > 0]


def _duration(
    token_epochs: int, profile: TrainingProfile, matched_rates: Sequence[float], all_rates: Sequence[float]
) -> DurationEstimate:
    histories: tuple[tuple[EstimateBasis, list[float]], ...] = (
        ("matched_model", _usable(matched_rates)),
        ("all_completed_runs", _usable(all_rates)),
    )
    for basis, rates in histories:
        if len(rates) >= MIN_HISTORY_SAMPLES:
            # The history includes start-up, so no separate overhead is added.
            low_rate, median_rate, high_rate = statistics.quantiles(rates, n=4, method="inclusive")
            return DurationEstimate(
                estimated_minutes=round(median_rate * token_epochs / 1e6, 1),
                range_minutes=RangeMinutes(
                    low=round(low_rate * token_epochs / 1e6, 1), high=round(high_rate * token_epochs / 1e6, 1)
                ),
                basis=basis,
                confidence="high" if len(rates) >= HIGH_CONFIDENCE_SAMPLES else "medium",
                sample_count=len(rates),
            )
    minutes = profile.startup_minutes + token_epochs / profile.instance_tokens_per_second / 60
    low_factor, high_factor = FALLBACK_RANGE
    return DurationEstimate(
        estimated_minutes=round(minutes, 1),
        range_minutes=RangeMinutes(low=round(minutes * low_factor, 1), high=round(minutes * high_factor, 1)),
        basis="fallback",
        confidence="low",
        sample_count=0,
    )


def estimate_run(
    *,
    training_rows: Sequence[Example],
    system_prompt: str,
    augment: bool,
    n_epochs: int,
    profile: TrainingProfile,
    matched_rates: Sequence[float],
    all_rates: Sequence[float],
) -> RunEstimate:
    """The §9.8 estimate; `*_rates` are minutes per million token-epochs of completed runs."""
    rows = len(training_rows) + (augmentation_target(len(training_rows)) if augment else 0)
    tokens = estimated_training_tokens(training_rows, system_prompt, rows)
    duration = _duration(tokens * n_epochs, profile, matched_rates, all_rates)
    # Cost from the minutes the client sees, so it can be recomputed from the response.
    cents = round(profile.hourly_usd * duration.estimated_minutes / 60 * 100)
    return RunEstimate(
        estimated_rows=rows,
        estimated_training_tokens=tokens,
        estimated_epochs=n_epochs,
        duration=duration,
        estimated_cost_usd=cents / 100,
        estimated_cost_cents=cents,
        instance_type=profile.instance_type,
    )
