"""Checkpoints in /opt/ml/checkpoints (synced to S3 by SageMaker): Trainer writes them, this module marks each
with the job's fingerprint and the progress so far, and finds the one a job may resume."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

STATE_FILE = "tt_state.json"


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]


def _folders(root: Path) -> list[Path]:
    found = [p for p in root.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.rpartition("-")[2].isdigit()]
    return sorted(found, key=lambda p: int(p.name.rpartition("-")[2]), reverse=True)


def _state(folder: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def mark(folder: Path, fingerprint: str, state: dict[str, Any]) -> None:
    """Written last, atomically: a folder without it (a SIGKILL mid-save) is never resumed."""
    staging = folder / f".{STATE_FILE}.tmp"
    staging.write_text(json.dumps({**state, "fingerprint": fingerprint}, indent=2) + "\n")
    os.replace(staging, folder / STATE_FILE)


def resumable(root: Path | None, fingerprint: str, total_steps: int) -> Checkpoint | None:
    """The latest complete checkpoint of this very job (same data and settings) that has steps left."""
    if root is None or not root.is_dir():
        return None
    for folder in _folders(root):
        state = _state(folder)
        step = int(folder.name.rpartition("-")[2])
        if state is not None and state.get("fingerprint") == fingerprint and step < total_steps:
            return Checkpoint(path=folder, step=step, state=state)
    return None


def discard_others(root: Path | None, keep: Checkpoint | None) -> None:
    """Remove every other checkpoint: another job's would confuse Trainer's rotation, which sorts by step."""
    if root is None or not root.is_dir():
        return
    for folder in _folders(root):
        if keep is None or folder != keep.path:
            shutil.rmtree(folder, ignore_errors=True)
