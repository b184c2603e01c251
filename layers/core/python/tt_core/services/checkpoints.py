"""A run's kept epoch checkpoints (PRODUCT.md §9.10): the list, and signed downloads of their packages."""

from __future__ import annotations

import re

from tt_core.errors import NotFoundError
from tt_core.models.runs import Checkpoint, CheckpointDownload, EpochCheckpoint, RunRecord
from tt_core.observability import tracer
from tt_core.ports import Clock, DownloadSigner, ObjectStore, RunRepository
from tt_core.runs.artifacts import epoch_checkpoint_key
from tt_core.services.run_state import find_run
from tt_core.services.tuned_models import DOWNLOAD_URL_TTL

CHECKPOINT_NOT_FOUND = "Checkpoint not found: the run keeps the last 3 epochs' checkpoints"
_EPOCH = re.compile(r"[0-9]{1,6}")


def registered_epoch(run: RunRecord) -> int | None:
    """The epoch whose weights the run's model holds: early stopping's choice, else the last one trained."""
    if run.model_id is None:
        return None
    if run.selected_epoch is not None:
        return run.selected_epoch
    return max((c.epoch for c in run.checkpoints), default=None)


class CheckpointService:
    def __init__(
        self, runs: RunRepository, objects: ObjectStore, signer: DownloadSigner, clock: Clock
    ) -> None:
        self._runs = runs
        self._objects = objects
        self._signer = signer
        self._clock = clock

    def list(self, account_id: str, run_id: str) -> list[Checkpoint]:
        run = find_run(self._runs, account_id, run_id)
        registered = registered_epoch(run)
        return [
            Checkpoint(**c.model_dump(exclude={"file"}), is_registered_model=c.epoch == registered)
            for c in sorted(run.checkpoints, key=lambda c: c.epoch, reverse=True)
        ]

    def _kept(self, run: RunRecord, epoch: str) -> EpochCheckpoint:
        number = int(epoch) if _EPOCH.fullmatch(epoch) else None
        found = next((c for c in run.checkpoints if c.epoch == number), None)
        if (
            found is None
            or self._objects.size(epoch_checkpoint_key(run.account_id, run.id, found.file)) is None
        ):
            raise NotFoundError(CHECKPOINT_NOT_FOUND)
        return found

    @tracer.capture_method
    def download(self, account_id: str, run_id: str, epoch: str) -> CheckpointDownload:
        run = find_run(self._runs, account_id, run_id)
        kept = self._kept(run, epoch)
        filename = f"checkpoint-epoch-{kept.epoch}.tar.gz"
        url = self._signer.presign_get(
            epoch_checkpoint_key(run.account_id, run.id, kept.file), DOWNLOAD_URL_TTL, filename
        )
        return CheckpointDownload(url=url, filename=filename, expires_at=self._clock.now() + DOWNLOAD_URL_TTL)
