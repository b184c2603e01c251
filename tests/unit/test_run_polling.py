"""The poll loop's waits: the configured interval at first, then growing geometrically to a cap."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.fakes import FixedClock, SequentialIds
from tests.unit.test_run_job_spec import NOW, _run
from tt_core.models.runs import RunRecord
from tt_core.models.workflow import RunTaskState
from tt_core.ports import TrainingJobSpec, TrainingJobStatus
from tt_core.runs.polling import (
    MAX_CAPPED_POLLS,
    POLL_GROWTH,
    POLL_STEADY_SECONDS,
    longest_wait_seconds,
    next_poll_seconds,
    steady_polls,
)
from tt_core.services.run_workflow import RunWorkflowService
from tt_core.settings import Settings

START = NOW
DAY, FOUR_WEEKS = 24 * 3600, 672 * 3600


def _waits(interval: int, timeout: float, polls: int) -> list[int]:
    """The waits after polls 1…`polls` of a run that polls exactly when each wait ends."""
    waits, elapsed = [], 0.0
    for poll in range(1, polls + 1):
        elapsed += waits[-1] if waits else interval
        waits.append(
            next_poll_seconds(
                poll, interval_seconds=interval, run_timeout_seconds=timeout, elapsed_seconds=elapsed
            )
        )
    return waits


@pytest.mark.parametrize("interval", [1, 5, 30, 60, 600])
def test_the_first_ten_minutes_poll_at_the_configured_interval(interval: int) -> None:
    steady = steady_polls(interval)
    assert steady == math.ceil(POLL_STEADY_SECONDS / interval)
    waits = _waits(interval, FOUR_WEEKS, steady + 1)
    assert waits[:steady] == [interval] * steady
    # Those polls (and the first wait, Prepare's) cover the first ten minutes of training.
    assert interval * (steady + 1) >= POLL_STEADY_SECONDS
    assert waits[steady] == math.ceil(interval * POLL_GROWTH)


@pytest.mark.parametrize(("interval", "timeout"), [(5, FOUR_WEEKS), (60, FOUR_WEEKS), (5, DAY), (60, DAY)])
def test_then_each_wait_grows_by_the_factor_up_to_the_cap(interval: int, timeout: int) -> None:
    cap = longest_wait_seconds(interval, timeout)
    assert cap == max(interval, math.ceil(timeout / MAX_CAPPED_POLLS))
    steady = steady_polls(interval)
    waits = _waits(interval, timeout, steady + 200)[steady - 1 :]
    growing = [w for w in waits if w < cap]
    for k, wait in enumerate(growing):
        assert wait == math.ceil(interval * POLL_GROWTH**k)
    assert waits[len(growing) :] == [cap] * (len(waits) - len(growing))
    assert len(growing) <= math.ceil(math.log(cap / interval, POLL_GROWTH)) + 1


def test_the_caps_of_the_default_and_the_longest_run() -> None:
    assert longest_wait_seconds(60, DAY) == 87  # a default run barely slows down
    assert longest_wait_seconds(5, FOUR_WEEKS) == 2420  # 40 minutes: within the execution's hour of margin
    assert longest_wait_seconds(3600, DAY) == 3600  # never shorter than the configured interval


def test_a_wait_does_not_reach_past_the_deadline_by_more_than_the_interval() -> None:
    def late(elapsed: float) -> int:
        return next_poll_seconds(5000, interval_seconds=60, run_timeout_seconds=DAY, elapsed_seconds=elapsed)

    assert late(DAY - 3600) == 87  # the cap
    assert late(DAY - 70) == 70  # the next look lands on the deadline
    assert late(DAY - 50) == 60  # or at most one interval after it
    assert late(DAY + 10) == 60


def test_huge_poll_counts_do_not_overflow() -> None:
    wait = next_poll_seconds(10**6, interval_seconds=1, run_timeout_seconds=FOUR_WEEKS, elapsed_seconds=0)
    assert wait == longest_wait_seconds(1, FOUR_WEEKS)


# The poll task itself: it counts its polls and hands the next wait to the Wait state -----------------


class _Runs:
    def __init__(self, run: RunRecord) -> None:
        self.run = run

    def get(self, account_id: str, run_id: str) -> RunRecord | None:
        return self.run

    def save(self, run: RunRecord, expected_version: int) -> bool:
        self.run = run
        return True


class _RunningJob:
    def start(self, job: TrainingJobSpec) -> None: ...

    def stop(self, job_name: str) -> None: ...

    def describe(self, job: TrainingJobSpec) -> TrainingJobStatus:
        return TrainingJobStatus(state="running", progress={"status": "training", "epoch": 0.5})


def test_poll_training_returns_the_growing_waits() -> None:
    clock = FixedClock(START)
    none: Any = None
    settings = Settings(training_poll_seconds=5, run_timeout_hours=672)
    service = RunWorkflowService(
        _Runs(_run("tunedtensor/tiny-chat")),
        none,
        none,
        none,
        _RunningJob(),
        none,
        clock,
        SequentialIds(),
        settings,
        bucket="b",
    )
    state = RunTaskState(account_id="a1", run_id="r1", poll_seconds=settings.poll_seconds)
    returned = []
    for _ in range(300):
        clock.advance(seconds=state.poll_seconds)
        state = RunTaskState.model_validate(service.poll_training(state).output())
        assert state.training_state == "running"
        returned.append(state.poll_seconds)
    assert state.polls == 300
    assert returned == _waits(5, FOUR_WEEKS, 300)
    assert returned[0] == 5 and returned[-1] == longest_wait_seconds(5, FOUR_WEEKS)
    assert returned == sorted(returned)
