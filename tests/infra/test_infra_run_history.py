"""The run workflow's worst case stays under Step Functions' 25,000 history events per execution.

An execution that reaches the limit fails outright: no Catch sees it and the run would stay active. The
longest run the config allows, polled at the shortest interval it allows, is counted here event by event
from the synthesized definition and the waits the poll task hands the Wait state.
"""

from __future__ import annotations

from typing import Any

import annotated_types
import pytest

from infra.config import StageConfig
from infra.constructs.run_workflow import EXECUTION_TIMEOUT_MARGIN_MINUTES
from tests.infra.conftest import Synth
from tests.infra.test_infra_run_workflow import _states
from tt_core.runs.polling import longest_wait_seconds, next_poll_seconds

HISTORY_LIMIT = 25_000
# The history events a state adds each time it runs and succeeds. A Task whose Resource is the
# function's ARN (LambdaInvoke with payload_response_only) reports LambdaFunction* events; the
# lambda:invoke integration would report Task* events instead, as many.
EVENTS_PER_STATE: dict[str, tuple[str, ...]] = {
    "Task": (
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
    ),
    "Wait": ("WaitStateEntered", "WaitStateExited"),
    "Choice": ("ChoiceStateEntered", "ChoiceStateExited"),
    "Pass": ("PassStateEntered", "PassStateExited"),
    "Succeed": ("SucceedStateEntered", "SucceedStateExited"),
    "Fail": ("FailStateEntered",),
}
EXECUTION_EVENTS = ("ExecutionStarted", "ExecutionSucceeded")  # or ExecutionFailed
# An attempt that fails and is retried: LambdaFunctionScheduled, LambdaFunctionStarted,
# LambdaFunctionFailed (or LambdaFunctionTimedOut).
FAILED_ATTEMPT_EVENTS = 3


def _limits(field: str) -> tuple[float, float]:
    """The (lower, upper) bounds StageConfig puts on a field."""
    metadata = StageConfig.model_fields[field].metadata
    lower = next(m.ge if isinstance(m, annotated_types.Ge) else m.gt for m in metadata
                 if isinstance(m, annotated_types.Ge | annotated_types.Gt))  # fmt: skip
    upper = next(m.le for m in metadata if isinstance(m, annotated_types.Le))
    return lower, upper


def _poll_loop(states: dict[str, dict[str, Any]]) -> list[str]:
    """The states one look at the training job passes through: Wait → … → the Choice back to it."""
    (wait,) = (name for name, state in states.items() if state["Type"] == "Wait")
    loop, name = [wait], states[wait]["Next"]
    while states[name]["Type"] != "Choice":
        loop.append(name)
        name = states[name]["Next"]
    loop.append(name)
    assert wait in {choice["Next"] for choice in states[name]["Choices"]}
    return loop


def max_polls(interval_seconds: int, run_timeout_seconds: float) -> int:
    """The most looks at the job a run can take: each one the poll task's wait after the one before.

    Time starts at the run's start and the tasks take no time, so no real run polls more: a run polls
    later than this, never sooner, and the poll after the deadline fails the run (Catch → RecordFailure).
    """
    elapsed, wait, polls = 0.0, interval_seconds, 0  # Prepare sets the first wait: the interval
    while True:
        elapsed += wait
        polls += 1
        if elapsed > run_timeout_seconds:
            return polls
        wait = next_poll_seconds(
            polls,
            interval_seconds=interval_seconds,
            run_timeout_seconds=run_timeout_seconds,
            elapsed_seconds=elapsed,
        )


def worst_case_events(
    states: dict[str, dict[str, Any]], polls: int, failed_attempts_per_poll: int = 0
) -> int:
    loop = _poll_loop(states)
    per_poll = sum(len(EVENTS_PER_STATE[states[name]["Type"]]) for name in loop)
    per_poll += failed_attempts_per_poll * FAILED_ATTEMPT_EVENTS
    # Every other state once: more than any one run passes through (it succeeds or fails, not both).
    once = sum(len(EVENTS_PER_STATE[state["Type"]]) for name, state in states.items() if name not in loop)
    return len(EXECUTION_EVENTS) + once + polls * per_poll


def test_every_state_type_of_the_machine_is_counted(dev: Synth) -> None:
    assert {state["Type"] for state in _states(dev).values()} <= set(EVENTS_PER_STATE)
    assert [_states(dev)[name]["Type"] for name in _poll_loop(_states(dev))] == ["Wait", "Task", "Choice"]


def test_the_longest_run_at_the_shortest_interval_stays_under_the_history_limit(dev: Synth) -> None:
    states = _states(dev)
    shortest, _ = _limits("training_poll_seconds")
    _, longest_hours = _limits("run_timeout_hours")
    assert (shortest, longest_hours) == (5, 672)
    polls = max_polls(int(shortest), longest_hours * 3600)
    events = worst_case_events(states, polls)
    assert polls == 1145 and events == 10_335  # README.md, "How it runs"
    assert events < HISTORY_LIMIT
    # Room to spare: every poll could fail once and be retried.
    assert worst_case_events(states, polls, failed_attempts_per_poll=1) < HISTORY_LIMIT
    # At a steady 5 s the same run would look 483,840 times (4.35 million events).
    assert longest_hours * 3600 / shortest > 40 * polls


@pytest.mark.parametrize("interval", [5, 10, 30, 60, 300, 3600])
@pytest.mark.parametrize("hours", [0.5, 24, 168, 672])
def test_any_allowed_setting_stays_under_the_history_limit(dev: Synth, interval: int, hours: float) -> None:
    polls = max_polls(interval, hours * 3600)
    assert worst_case_events(_states(dev), polls, failed_attempts_per_poll=1) < HISTORY_LIMIT


def test_the_longest_wait_still_lets_the_run_time_out_before_the_execution_does() -> None:
    shortest, _ = _limits("training_poll_seconds")
    _, longest_hours = _limits("run_timeout_hours")
    assert longest_wait_seconds(int(shortest), longest_hours * 3600) < EXECUTION_TIMEOUT_MARGIN_MINUTES * 60


# Whatever does fail is recorded: no state can end the execution behind the run's back ---------------


def test_every_task_is_caught_and_recorded_as_a_failed_run(dev: Synth) -> None:
    states = _states(dev)
    # Only Task states can fail here; the others cannot hold a Catch and need none (no Parallel or Map).
    assert {state["Type"] for state in states.values()} <= {
        "Task",
        "Wait",
        "Choice",
        "Pass",
        "Succeed",
        "Fail",
    }
    for name, state in states.items():
        if state["Type"] == "Task":
            target = "RunFailed" if name == "RecordFailure" else "RecordFailure"
            assert state["Catch"] == [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": target}
            ]


def test_every_task_output_carries_the_wait_and_the_choice_guards_a_missing_state(dev: Synth) -> None:
    from tt_core.models.workflow import RunTaskState

    # A Wait whose SecondsPath is missing or not a positive integer fails the execution (States.Runtime,
    # which no Catch sees): every task returns the whole state, and the state always has a valid wait.
    output = RunTaskState(account_id="a", run_id="r").output()
    assert isinstance(output["poll_seconds"], int) and output["poll_seconds"] >= 1
    assert _states(dev)["WaitForTraining"]["SecondsPath"] == "$.poll_seconds"
    choice = _states(dev)["TrainingFinished?"]["Choices"][0]
    assert choice == {"Variable": "$.training_state", "IsPresent": False, "Next": "RecordFailure"}
