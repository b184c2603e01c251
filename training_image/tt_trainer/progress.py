"""Progress reporting: one JSON line per event on stdout, progress.json in the output dir, metric regexes."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

PROGRESS_FILE = "progress.json"

# The train_step line, keys always in this order (json.dumps keeps insertion order, ", " and ": " separators):
# {"event": "train_step", "step": 12, "total_steps": 60, "epoch": 0.6, "loss": 1.2345,
#  "learning_rate": 0.0002, "tokens_per_second": 5312.4}
_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
# SageMaker MetricDefinitions for CreateTrainingJob (AlgorithmSpecification.MetricDefinitions): each regex has
# exactly one group and matches only train_step lines.
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = tuple(
    {"Name": f"train:{key}", "Regex": rf'"event": "train_step".*"{key}": {_NUMBER}'}
    for key in ("loss", "learning_rate", "epoch", "step", "tokens_per_second")
)


def _finite(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


class ProgressReporter:
    """Writes events as JSON lines and keeps progress.json current for the workflow's live progress."""

    def __init__(self, output_dir: Path | None, stream: TextIO | None = None) -> None:
        self.output_dir = output_dir
        self.stream = stream if stream is not None else sys.stdout
        self.state: dict[str, Any] = {"status": "starting"}

    def event(self, name: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"event": name, **fields}, default=str) + "\n")
        self.stream.flush()

    def update(self, **fields: Any) -> None:
        """Merge fields into progress.json (written atomically: the workflow may read it at any moment)."""
        self.state.update(fields)
        self.state["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.output_dir is None:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        target = self.output_dir / PROGRESS_FILE
        tmp = target.with_name(f".{PROGRESS_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.state, indent=2, default=str) + "\n")
        os.replace(tmp, target)

    def train_step(
        self,
        *,
        step: int,
        total_steps: int,
        epoch: float,
        loss: float,
        learning_rate: float,
        tokens_per_second: float,
    ) -> None:
        line = {
            "step": step,
            "total_steps": total_steps,
            "epoch": round(epoch, 4),
            "loss": _finite(loss, 6),
            "learning_rate": float(f"{learning_rate:.6g}"),
            "tokens_per_second": round(tokens_per_second, 1),
        }
        self.event("train_step", **line)
        self.update(status="training", **line)
