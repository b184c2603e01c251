"""Intervals and the verdict of an evaluation (PRODUCT.md §10.3): Wilson pass-rate intervals, the paired
bootstrap of the score delta seeded by the run id, and better / worse / inconclusive."""

from __future__ import annotations

import random
import time

import pytest

from tt_core.evaluation.uncertainty import (
    BOOTSTRAP_RESAMPLES,
    MIN_VERDICT_ROWS,
    delta_interval,
    sample_size_insights,
    verdict,
    wilson_interval,
)


def test_wilson_of_three_passes_in_four() -> None:
    low, high = wilson_interval(3, 4) or (None, None)
    assert (round(low or 0, 2), round(high or 0, 2)) == (0.30, 0.95)
    assert (low, high) == (0.3006, 0.9544)  # 4 decimals


@pytest.mark.parametrize(
    ("passed", "total", "interval"),
    [
        (2, 2, (0.3424, 1.0)),  # PRODUCT's example: "anywhere from 34% to 100%"
        (0, 2, (0.0, 0.6576)),
        (0, 0, None),  # an interval over zero rows is null
        (50, 100, (0.4038, 0.5962)),
    ],
)
def test_wilson_bounds(passed: int, total: int, interval: tuple[float, float] | None) -> None:
    assert wilson_interval(passed, total) == interval


def test_the_bootstrap_is_deterministic_per_run_and_brackets_the_mean() -> None:
    rng = random.Random(7)
    deltas = [round(rng.uniform(-0.2, 0.6), 4) for _ in range(40)]
    first = delta_interval(deltas, seed="run-a")
    assert first == delta_interval(deltas, seed="run-a")  # same run id → same interval
    assert first != delta_interval(deltas, seed="run-b")  # another run id → other resamples
    assert first is not None
    low, high = first
    mean = sum(deltas) / len(deltas)
    assert low < mean < high and (round(low, 4), round(high, 4)) == (low, high)
    assert delta_interval([], seed="run-a") is None
    assert delta_interval([0.25], seed="run-a") == (0.25, 0.25)  # one row: nothing to resample


def test_the_bootstrap_is_cheap_on_a_large_split() -> None:
    deltas = [(i % 7) / 10 - 0.2 for i in range(10_000)]
    started = time.monotonic()
    delta_interval(deltas, seed="big")
    assert time.monotonic() - started < 3.0
    assert BOOTSTRAP_RESAMPLES == 2000


@pytest.mark.parametrize(
    ("rows", "interval", "expected"),
    [
        (10, (0.01, 0.3), "better"),
        (10, (-0.3, -0.01), "worse"),
        (10, (0.0, 0.3), "inconclusive"),  # touches 0: not wholly above it
        (10, (-0.1, 0.3), "inconclusive"),
        (9, (0.2, 0.3), "inconclusive"),  # under 10 rows there is no verdict
        (0, None, "inconclusive"),
    ],
)
def test_verdict(rows: int, interval: tuple[float, float] | None, expected: str) -> None:
    assert MIN_VERDICT_ROWS == 10
    assert verdict(rows, interval) == expected


def test_small_samples_get_insights() -> None:
    assert sample_size_insights(2, (0.3424, 1.0)) == [
        "Only 2 rows were evaluated: the tuned pass rate could be anywhere from 34% to 100%.",
        "Tuned vs base is inconclusive on 2 rows: no verdict under 10 rows.",
    ]
    assert sample_size_insights(1, (0.0, 0.7935)) == [
        "Only 1 row was evaluated: the tuned pass rate could be anywhere from 0% to 79%.",
        "Tuned vs base is inconclusive on 1 row: no verdict under 10 rows.",
    ]
    assert sample_size_insights(12, (0.5, 0.9)) == [
        "Only 12 rows were evaluated: the tuned pass rate could be anywhere from 50% to 90%."
    ]
    assert sample_size_insights(30, (0.5, 0.8)) == []
    assert sample_size_insights(0, None) == []
