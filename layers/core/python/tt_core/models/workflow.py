"""The run workflow's state: what each Step Functions task receives and returns (ARCHITECTURE.md §4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from tt_core.models.common import Model

TrainingState = Literal["queued", "running", "completed", "failed", "stopped"]


class WorkflowError(Model):
    """What a Catch puts at `$.error`: the error name and its cause (a Lambda error's JSON payload)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    Error: str = "States.Runtime"
    Cause: str | None = None


class RunTaskState(Model):
    """The execution's JSON document. Every task takes it whole and returns it whole (updated).

    - Prepare sets `poll_seconds`; StartTraining sets `job_name`; PollTraining sets `training_state`
      (the Choice after it reads it), counts its `polls` and sets the next `poll_seconds` (the waits
      grow as the run ages: `tt_core.runs.polling`); a Catch sets `error` (ResultPath `$.error`)
      before RecordFailure.
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    account_id: str
    run_id: str
    poll_seconds: int = Field(default=60, ge=1)
    polls: int = Field(default=0, ge=0)
    job_name: str | None = None
    training_state: TrainingState | None = None
    error: WorkflowError | None = None

    def output(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# The execution statuses EventBridge reports that end a run's workflow without its own Finish/RunFailed.
EndedStatus = Literal["FAILED", "TIMED_OUT", "ABORTED"]


class ExecutionEnded(Model):
    """The `detail` of EventBridge's "Step Functions Execution Status Change" for a run's execution.

    `input` is the execution's input document (a RunTaskState) as a JSON string.
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    status: EndedStatus
    input: str

    def run_state(self) -> RunTaskState:
        return RunTaskState.model_validate_json(self.input)
