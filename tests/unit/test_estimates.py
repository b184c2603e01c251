"""Run estimates (PRODUCT.md §9.8): rows, tokens, duration bases, range, confidence, cost; numbers by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from tt_core.models.estimates import RunEstimate
from tt_core.runs.compiler import Example
from tt_core.runs.estimation import estimate_run, rate_minutes_per_million
from tt_core.schema import LOCAL_TRAINING_PROFILE, TrainingProfile

PROFILE = TrainingProfile(
    instance_type="ml.g5.xlarge", hourly_usd=1.5, tokens_per_second=10, startup_minutes=6
)
# One row of 4,000,000 characters: 1,000,000 tokens; with 2 epochs, 2 million token-epochs.
MILLION_TOKENS = [Example("a" * 2_000_000, "b" * 2_000_000)]


def estimate(
    rows: list[Example],
    *,
    system_prompt: str = "",
    augment: bool = False,
    n_epochs: int = 2,
    profile: TrainingProfile = PROFILE,
    matched_rates: Sequence[float] = (),
    all_rates: Sequence[float] = (),
) -> RunEstimate:
    return estimate_run(
        training_rows=rows,
        system_prompt=system_prompt,
        augment=augment,
        n_epochs=n_epochs,
        profile=profile,
        matched_rates=matched_rates,
        all_rates=all_rates,
    )


def test_fallback_estimate_with_augmentation() -> None:
    # 4 rows of 4 + 16 + 20 = 40 characters; augmentation targets 30 rows → 1,200 characters = 300 tokens.
    rows = [Example("q" * 16, "a" * 20) for _ in range(4)]
    result = estimate(rows, system_prompt="sys ", augment=True, n_epochs=4)
    # 300 tokens × 4 epochs = 1,200 token-epochs at 10 tokens/s = 2 minutes, + 6 minutes start-up.
    assert result.model_dump() == {
        "estimated_rows": 30,
        "estimated_training_tokens": 300,
        "estimated_epochs": 4,
        "duration": {
            "estimated_minutes": 8.0,
            "range_minutes": {"low": 6.0, "high": 12.0},
            "basis": "fallback",
            "confidence": "low",
            "sample_count": 0,
        },
        "estimated_cost_usd": 0.2,  # 1.5 $/h × 8 min ÷ 60
        "estimated_cost_cents": 20,
        "instance_type": "ml.g5.xlarge",
    }


def test_fallback_rounds_minutes_to_one_decimal() -> None:
    # 10 tokens × 8 epochs at 10 tokens/s = 0.1333 minutes + 6 = 6.1333 → 6.1; range 4.6 and 9.2.
    result = estimate([Example("x" * 20, "y" * 20)], n_epochs=8)
    assert result.estimated_training_tokens == 10
    assert result.duration.estimated_minutes == 6.1
    assert result.duration.range_minutes.model_dump() == {"low": 4.6, "high": 9.2}
    # Cost from the reported minutes: 1.5 × 6.1 ÷ 60 = 0.1525 → 15 cents.
    assert (result.estimated_cost_usd, result.estimated_cost_cents) == (0.15, 15)


def test_rows_and_tokens_without_augmentation_round_up() -> None:
    rows = [Example("ab", "cde") for _ in range(3)]  # 15 characters
    result = estimate(rows)
    assert (result.estimated_rows, result.estimated_training_tokens) == (3, 4)  # ⌈15 ÷ 4⌉


def test_generated_rows_count_at_the_mean_row_length() -> None:
    rows = [Example("a", ""), Example("b", "c")]  # 1 + 2 characters: mean 1.5
    result = estimate(rows, augment=True)
    assert result.estimated_rows == 30
    assert result.estimated_training_tokens == 12  # ⌈30 × 1.5 ÷ 4⌉ = ⌈11.25⌉
    big = [Example("x" * 10, "") for _ in range(100)]  # target 500: 400 generated rows
    assert estimate(big, system_prompt="s", augment=True).estimated_training_tokens == 1375  # 500 × 11 ÷ 4


def test_matched_model_history() -> None:
    result = estimate(MILLION_TOKENS, matched_rates=[40, 10, 30, 20], all_rates=[1, 1, 1, 1, 1])
    # Median 25 min per million token-epochs × 2; quartiles (inclusive) 17.5 and 32.5.
    assert result.estimated_training_tokens == 1_000_000
    assert result.duration.model_dump() == {
        "estimated_minutes": 50.0,
        "range_minutes": {"low": 35.0, "high": 65.0},
        "basis": "matched_model",
        "confidence": "medium",
        "sample_count": 4,
    }
    assert (result.estimated_cost_usd, result.estimated_cost_cents) == (1.25, 125)  # 1.5 × 50 ÷ 60


def test_all_completed_runs_history_with_high_confidence() -> None:
    profile = PROFILE.model_copy(update={"hourly_usd": 1.2})
    result = estimate(MILLION_TOKENS, profile=profile, matched_rates=[3, 4], all_rates=range(1, 11))
    # Rates 1…10: median 5.5, quartiles 3.25 and 7.75; × 2 million token-epochs.
    assert result.duration.model_dump() == {
        "estimated_minutes": 11.0,
        "range_minutes": {"low": 6.5, "high": 15.5},
        "basis": "all_completed_runs",
        "confidence": "high",
        "sample_count": 10,
    }
    assert (result.estimated_cost_usd, result.estimated_cost_cents) == (0.22, 22)  # 1.2 × 11 ÷ 60


def test_three_samples_are_enough_and_unusable_rates_are_ignored() -> None:
    three = estimate(MILLION_TOKENS, matched_rates=[10, 20, 30])
    assert (three.duration.basis, three.duration.sample_count, three.duration.estimated_minutes) == (
        "matched_model",
        3,
        40.0,
    )
    assert three.duration.range_minutes.model_dump() == {"low": 30.0, "high": 50.0}  # rates 15 and 25
    unusable = estimate(MILLION_TOKENS, matched_rates=[10, 0, math.nan, 20], all_rates=[5, -1, math.inf])
    assert (unusable.duration.basis, unusable.duration.sample_count) == ("fallback", 0)


def test_local_profile_costs_nothing() -> None:
    result = estimate(MILLION_TOKENS, profile=LOCAL_TRAINING_PROFILE)
    assert (result.estimated_cost_usd, result.estimated_cost_cents, result.instance_type) == (0.0, 0, "local")
    # 0.2 start-up + 2,000,000 token-epochs at 10,000 tokens/s (3.333… minutes).
    assert result.duration.estimated_minutes == 3.5


def test_no_rows_estimate_nothing_to_train() -> None:
    result = estimate([], augment=True)
    assert (result.estimated_rows, result.estimated_training_tokens) == (0, 0)
    assert result.duration.estimated_minutes == 6.0


def test_rate_minutes_per_million() -> None:
    assert rate_minutes_per_million(50, 1_000_000, 2) == 25.0
    assert rate_minutes_per_million(12, 300, 4) == pytest.approx(10_000)
    # A recorded rate gives back the run's duration for the same workload.
    rate = rate_minutes_per_million(42.0, 1_000_000, 2)
    assert estimate(MILLION_TOKENS, all_rates=[rate] * 3).duration.estimated_minutes == 42.0
    with pytest.raises(ValueError):
        rate_minutes_per_million(10, 0, 3)
