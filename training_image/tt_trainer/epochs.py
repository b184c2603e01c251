"""Each epoch's end (PRODUCT.md §9.10): its checkpoint packaged as a model artifact, the last KEEP kept, and
the early-stopping rule over the validation losses.

The packages live in <checkpoint dir>/epochs/ (synced to storage while the job runs on AWS) with index.json,
which lists the kept ones: what the service shows as the run's checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tt_trainer.progress import timestamp

EPOCHS_DIR = "epochs"
INDEX_FILE = "index.json"
KEEP = 3


def checkpoint_file(epoch: int) -> str:
    return f"checkpoint-epoch-{epoch}.tar.gz"


def best_epoch(history: Sequence[dict[str, Any]]) -> int | None:
    """The epoch with the lowest validation loss (the earliest of equals), None without one."""
    measured = [h for h in history if h["metrics"].get("valid_loss") is not None]
    if not measured:
        return None
    return int(min(measured, key=lambda h: (h["metrics"]["valid_loss"], h["epoch"]))["epoch"])


def patience_spent(history: Sequence[dict[str, Any]], patience: int) -> bool:
    """Whether the validation loss has not improved on its best for `patience` epochs."""
    best = best_epoch(history)
    if best is None:
        return False
    return sum(h["epoch"] > best for h in history) >= patience


class EpochCheckpoints:
    """checkpoint-epoch-<n>.tar.gz packages in one folder, with index.json written last (atomically)."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.root = root / EPOCHS_DIR
        self.fingerprint = fingerprint
        index = self._read_index()
        if index.get("fingerprint") != fingerprint:
            # Another job's (a checkpoint dir reused with other data or settings): none of it is ours.
            shutil.rmtree(self.root, ignore_errors=True)
            index = {}
        self.root.mkdir(parents=True, exist_ok=True)
        self.kept: list[dict[str, Any]] = list(index.get("checkpoints", []))
        self.selected_epoch: int | None = index.get("selected_epoch")

    def _read_index(self) -> dict[str, Any]:
        try:
            index = json.loads((self.root / INDEX_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return index if isinstance(index, dict) else {}

    def save(
        self, entry: dict[str, Any], write: Callable[[Path], None], *, protect: int | None = None
    ) -> None:
        """Package the epoch (`write` fills a folder with the artifact), record it, and delete packages beyond
        the last KEEP epochs, except `protect` (the best epoch so far, when early stopping may select it)."""
        epoch = int(entry["epoch"])
        with tempfile.TemporaryDirectory(prefix="tt-epoch-") as scratch:
            folder = Path(scratch) / "artifact"
            write(folder)
            staging = self.root / f".{checkpoint_file(epoch)}.tmp"
            # The weights barely compress: the fastest level costs a fraction of the default's time.
            with tarfile.open(staging, mode="w:gz", compresslevel=1) as archive:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
            os.replace(staging, self.root / checkpoint_file(epoch))
        record = {**entry, "created_at": timestamp(), "file": checkpoint_file(epoch)}
        kept = [k for k in self.kept if k["epoch"] != epoch] + [record]
        newest = sorted((k["epoch"] for k in kept), reverse=True)[:KEEP]
        self.kept = [k for k in kept if k["epoch"] in newest or k["epoch"] == protect]
        self._write_index()
        for path in self.root.glob("checkpoint-epoch-*.tar.gz"):
            if path.name not in {k["file"] for k in self.kept}:
                path.unlink(missing_ok=True)

    def select(self, epoch: int | None) -> None:
        """Name the epoch registered as the model (early stopping); it stays kept."""
        self.selected_epoch = epoch
        self._write_index()

    def load_adapter(self, model: Any, epoch: int) -> None:
        """Put the epoch's adapter weights back into the model (early stopping's selected epoch)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load

        with tarfile.open(self.root / checkpoint_file(epoch), mode="r:gz") as archive:
            member = archive.extractfile("adapter_model.safetensors")
            assert member is not None, "an epoch's package always holds its adapter"
            set_peft_model_state_dict(model, load(member.read()))  # copied onto the parameters' devices

    def _write_index(self) -> None:
        index = {
            "fingerprint": self.fingerprint,
            "selected_epoch": self.selected_epoch,
            "checkpoints": sorted(self.kept, key=lambda k: k["epoch"], reverse=True),
        }
        staging = self.root / f".{INDEX_FILE}.tmp"
        staging.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        os.replace(staging, self.root / INDEX_FILE)
