"""Run transitions: stage changes with their events and progress, saved with optimistic versioning.

Every write is a read-modify-write conditioned on the version it read, and only an active run is
ever changed, so a terminal status never changes again, whatever arrives late (PRODUCT.md §9.2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tt_core.errors import NotFoundError
from tt_core.models.common import normalize_id
from tt_core.models.runs import STAGES, RunEvent, RunRecord
from tt_core.observability import count
from tt_core.ports import Clock, IdGenerator, RunRepository

RUN_NOT_FOUND = "Run not found"
_SAVE_ATTEMPTS = 8


def stage_label(stage: str) -> str:
    return STAGES[stage][1]


def find_run(runs: RunRepository, account_id: str, run_id: str) -> RunRecord:
    """The account's run; a malformed, missing or other account's id is the same 404."""
    normalized = normalize_id(run_id)
    run = runs.get(account_id, normalized) if normalized else None
    if run is None:
        raise NotFoundError(RUN_NOT_FOUND)
    return run


class RunUpdater:
    """Applies a change to the stored run, retrying on concurrent writes; terminal runs stay as they are."""

    def __init__(self, runs: RunRepository, clock: Clock, ids: IdGenerator) -> None:
        self._runs = runs
        self._clock = clock
        self._ids = ids

    def load(self, account_id: str, run_id: str) -> RunRecord:
        run = self._runs.get(account_id, run_id)
        if run is None:
            raise NotFoundError(RUN_NOT_FOUND)
        return run

    def update(
        self, account_id: str, run_id: str, change: Callable[[RunRecord], RunRecord | None]
    ) -> RunRecord | None:
        """The saved run, or None when the run is no longer active (or `change` declined)."""
        for _ in range(_SAVE_ATTEMPTS):
            current = self.load(account_id, run_id)
            if not current.active:
                return None
            changed = change(current)
            if changed is None:
                return None
            if self._runs.save(changed, expected_version=current.version):
                return changed
        raise RuntimeError(f"run {run_id} kept changing under a write")

    def fail(self, account_id: str, run_id: str, message: str) -> RunRecord | None:
        """An active run → failed with `message` as its error; None when it had already ended."""
        failed = self.update(
            account_id,
            run_id,
            lambda r: self.moved(
                r,
                stage="failed",
                error=message,
                message=message,
                events=[(r.current_stage, "failed", message)],
            ),
        )
        if failed is not None:
            count("RunsFailed")
        return failed

    def event(self, stage: str, status: str, message: str, at: datetime) -> RunEvent:
        return RunEvent(
            id=self._ids.new_id(),
            stage=stage,
            label=stage_label(stage),
            status=status,  # type: ignore[arg-type]
            message=message,
            occurred_at=at,
        )

    def moved(
        self,
        run: RunRecord,
        *,
        stage: str | None = None,
        progress: int | None = None,
        message: str | None = None,
        events: Sequence[tuple[str, str, str]] = (),
        **changes: Any,
    ) -> RunRecord:
        """A copy of `run` at `stage` (status and label follow it), progress never decreasing."""
        now = self._clock.now()
        fields: dict[str, Any] = {**changes, "updated_at": now, "version": run.version + 1}
        new_events = list(run.events)
        if stage is not None and stage != run.current_stage:
            status, label, floor = STAGES[stage]
            fields.update(status=status, current_stage=stage, stage_label=label)
            if stage in ("completed", "failed", "cancelled"):
                fields["completed_at"] = now
            if stage == "completed":
                progress = 100
            elif stage in ("failed", "cancelled"):
                progress = run.progress_pct
            else:
                progress = max(progress or 0, floor)
        if progress is not None:
            fields["progress_pct"] = max(run.progress_pct, min(100, progress))
        if message is not None:
            fields["status_message"] = message
        for event_stage, event_status, event_message in events:
            new_events.append(self.event(event_stage, event_status, event_message, now))
        fields["events"] = new_events
        return run.model_copy(update=fields)
