"""A run's execution ended outside its own states (timed out, failed, stopped): fail the run, stop its job."""

from __future__ import annotations

from tt_core.models.workflow import EndedStatus, ExecutionEnded
from tt_core.observability import logger
from tt_core.ports import TrainingLauncher
from tt_core.services.run_state import RunUpdater

# The run's error (PRODUCT.md §9.2: a sentence the user can act on, no provider names).
MESSAGES: dict[EndedStatus, str] = {
    "TIMED_OUT": "The run took longer than its time limit and was stopped. Start the run again.",
    "FAILED": "The run stopped unexpectedly: its workflow failed. Start the run again.",
    "ABORTED": "The run's workflow was stopped before the run finished. Start the run again.",
}


class ExecutionEndedService:
    """The backstop behind the workflow's Catch: no run stays `running` after its execution is gone."""

    def __init__(self, updater: RunUpdater, launcher: TrainingLauncher) -> None:
        self._updater = updater
        self._launcher = launcher

    def record(self, ended: ExecutionEnded) -> None:
        state = ended.run_state()
        run = self._updater.load(state.account_id, state.run_id)
        if run.active:
            # An execution that timed out or died past its Catch, or was stopped by hand: the run says so.
            run = self._updater.fail(run.account_id, run.id, MESSAGES[ended.status]) or run
            logger.warning("Run failed by its execution's end", extra={"status": ended.status})
        # A cancelled or failed run's job is stopped here once more: the stop at cancel or RecordFailure may
        # have been refused for throttling (tt_core.adapters.sagemaker), and a job must not run on unpaid-for.
        if run.job_name and run.status != "completed":
            self._launcher.stop(run.job_name)
