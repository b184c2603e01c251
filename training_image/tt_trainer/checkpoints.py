"""Training checkpoints in /opt/ml/checkpoints (synced to S3 by SageMaker): save, find, restore."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "trainer_state.json"
TENSORS_FILE = "adapter_state.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
_PREFIX = "checkpoint-"


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]


class CheckpointStore:
    """Keeps the latest checkpoint only; one with another fingerprint (data, settings) is never used."""

    def __init__(self, root: Path | None, fingerprint: str) -> None:
        self.root = root
        self.fingerprint = fingerprint

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def latest(self) -> Checkpoint | None:
        if self.root is None or not self.root.is_dir():
            return None
        for path in sorted(self.root.glob(f"{_PREFIX}*"), reverse=True):
            try:
                state = json.loads((path / STATE_FILE).read_text())
            except (OSError, ValueError):
                continue
            if state.get("fingerprint") == self.fingerprint and (path / TENSORS_FILE).is_file():
                return Checkpoint(path=path, step=int(state["step"]), state=state)
        return None

    def save(
        self, *, step: int, model: torch.nn.Module, training: dict[str, Any], state: dict[str, Any]
    ) -> Path:
        """Write checkpoint-<step> atomically (a SIGKILL mid-write leaves the previous one intact)."""
        assert self.root is not None
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"{_PREFIX}{step:08d}"
        staging = self.root / f".{final.name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        tensors = {
            n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad
        }
        save_file(tensors, str(staging / TENSORS_FILE))
        torch.save(training, staging / OPTIMIZER_FILE)
        (staging / STATE_FILE).write_text(
            json.dumps({**state, "step": step, "fingerprint": self.fingerprint}, indent=2) + "\n"
        )
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        for old in self.root.glob(f"{_PREFIX}*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def restore(checkpoint: Checkpoint, model: torch.nn.Module) -> dict[str, Any]:
        """Load the adapter weights into model; return the optimizer/scheduler/RNG states."""
        tensors = load_file(str(checkpoint.path / TENSORS_FILE))
        params = dict(model.named_parameters())
        missing = [n for n, p in params.items() if p.requires_grad and n not in tensors]
        if missing or any(n not in params for n in tensors):
            raise ValueError(f"checkpoint {checkpoint.path.name} does not match the model's adapter")
        with torch.no_grad():
            for name, value in tensors.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))
        training: dict[str, Any] = torch.load(
            checkpoint.path / OPTIMIZER_FILE, map_location="cpu", weights_only=True
        )
        return training
