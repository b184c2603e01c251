"""A run's execution ended outside its states (EventBridge): the run fails readably, its job stops."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FixedClock, SequentialIds
from tt_core.models.runs import Hyperparameters, RunRecord
from tt_core.models.workflow import ExecutionEnded
from tt_core.services.execution_ended import MESSAGES, ExecutionEndedService
from tt_core.services.run_state import RunUpdater

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _run(status: Any, stage: str, job: str | None = "job") -> RunRecord:
    hp = Hyperparameters(
        n_epochs=3, learning_rate=2e-4, batch_size=8, lora_rank=16, lora_alpha=32, lora_dropout=0.05,
        max_seq_length=2048, long_examples="truncate", max_eval_examples=50, max_test_eval_examples=50,
        max_output_tokens=256, eval_reserved_output_tokens=64, augment=True, use_llm_judge=True,
    )  # fmt: skip
    return RunRecord(
        id="r1", account_id="a1", behavior_spec_id="s1", run_number=1, status=status,
        current_stage=stage, stage_label="x", progress_pct=40, status_message="", spec_snapshot={},
        base_model="tunedtensor/tiny-chat", hyperparameters=hp, fine_tune_job_id=job, started_at=NOW,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


class _Runs:
    def __init__(self, run: RunRecord) -> None:
        self.run = run

    def get(self, account_id: str, run_id: str) -> RunRecord | None:
        return self.run if (account_id, run_id) == (self.run.account_id, self.run.id) else None

    def save(self, run: RunRecord, expected_version: int) -> bool:
        assert expected_version == self.run.version
        self.run = run
        return True


class _Launcher:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop(self, job_name: str) -> None:
        self.stopped.append(job_name)


def _service(run: RunRecord) -> tuple[ExecutionEndedService, _Runs, _Launcher]:
    runs, launcher = _Runs(run), _Launcher()
    runs_port: Any = runs
    launcher_port: Any = launcher
    return (
        ExecutionEndedService(RunUpdater(runs_port, FixedClock(), SequentialIds()), launcher_port),
        runs,
        launcher,
    )


def _event(status: str) -> ExecutionEnded:
    """EventBridge's detail for the execution: its input is the RunTaskState document, as a string."""
    detail = {
        "executionArn": "arn:aws:states:eu-west-1:123456789012:execution:m:r1",
        "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:m",
        "name": "r1", "status": status, "startDate": 1, "stopDate": 2,
        "input": json.dumps({"account_id": "a1", "run_id": "r1", "poll_seconds": 60}),
        "output": None, "error": "States.Timeout", "cause": None,
    }  # fmt: skip
    return ExecutionEnded.model_validate(detail)


@pytest.mark.parametrize("status", ["TIMED_OUT", "FAILED", "ABORTED"])
def test_an_active_run_fails_with_a_readable_error_and_its_job_stops(status: str) -> None:
    service, runs, launcher = _service(_run("training", "training_running"))
    service.record(_event(status))
    assert runs.run.status == "failed"
    assert runs.run.error == MESSAGES[status]  # type: ignore[index]
    assert "sagemaker" not in runs.run.error.lower() and "aws" not in runs.run.error.lower()
    assert launcher.stopped == [runs.run.job_name]


def test_a_cancelled_run_stays_cancelled_and_its_job_is_stopped_again() -> None:
    """The cancel's own stop may have been throttled: the execution's ABORTED stops the job once more."""
    service, runs, launcher = _service(_run("cancelled", "cancelled"))
    service.record(_event("ABORTED"))
    assert runs.run.status == "cancelled"
    assert launcher.stopped == [runs.run.job_name]


def test_a_run_without_a_job_needs_no_stop() -> None:
    service, runs, launcher = _service(_run("preparing", "compiling_spec", job=None))
    service.record(_event("TIMED_OUT"))
    assert runs.run.status == "failed" and launcher.stopped == []


def test_only_ending_statuses_are_accepted() -> None:
    with pytest.raises(ValueError):
        _event("SUCCEEDED")
