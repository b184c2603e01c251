"""Progress reporting: JSON lines on stdout, progress.json and training_log.jsonl (mirrored); metrics."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

PROGRESS_FILE = "progress.json"
TRAINING_LOG_FILE = "training_log.jsonl"
# The mirror's directory under the checkpoint dir: SageMaker syncs that dir to S3 while the job runs, so
# <checkpoint_prefix>/progress/ is where a launcher reads live progress on AWS.
PROGRESS_MIRROR_DIR = "progress"

# The train_step line, keys always in this order (json.dumps keeps insertion order, ", " and ": " separators):
# {"event": "train_step", "step": 12, "total_steps": 60, "epoch": 0.6, "loss": 1.2345,
#  "learning_rate": 0.0002, "tokens_per_second": 5312.4, "token_accuracy": 0.61}
# and at each epoch's end, after that epoch's last train_step line:
# {"event": "validation", "step": 20, "epoch": 1, "valid_loss": 1.4, "valid_token_accuracy": 0.55}
_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
# SageMaker MetricDefinitions for CreateTrainingJob (AlgorithmSpecification.MetricDefinitions): each regex has
# exactly one group and matches only its own event's lines.
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = tuple(
    {"Name": f"train:{key}", "Regex": rf'"event": "train_step".*"{key}": {_NUMBER}'}
    for key in ("loss", "learning_rate", "epoch", "step", "tokens_per_second", "token_accuracy")
) + tuple(
    {"Name": f"validation:{key}", "Regex": rf'"event": "validation".*"valid_{key}": {_NUMBER}'}
    for key in ("loss", "token_accuracy")
)


def timestamp() -> str:
    """ISO-8601 UTC with milliseconds, as the API writes timestamps."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _finite(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _write_atomic(path: Path, text: str) -> None:
    """Readers (the workflow, SageMaker's checkpoint sync) never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _keep_steps_before(path: Path, step: int) -> None:
    """Drop lines of steps ≥ `step` and torn lines: a resumed job repeats the steps after its checkpoint."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    kept = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int) and entry["step"] < step:
            kept.append(line + "\n")
    _write_atomic(path, "".join(kept))


class ProgressReporter:
    """Writes events as JSON lines and keeps progress.json and training_log.jsonl current for live progress.

    `output_dir` gets both files (failures to write there propagate); `mirror_dir` gets best-effort copies:
    a mirror that cannot be written is reported once as a warning and never fails training.
    """

    def __init__(
        self, output_dir: Path | None, stream: TextIO | None = None, *, mirror_dir: Path | None = None
    ) -> None:
        self.output_dir = output_dir
        self.mirror_dir = mirror_dir
        self.stream = stream if stream is not None else sys.stdout
        self.state: dict[str, Any] = {"status": "starting"}
        self._logs_opened: set[Path] = set()
        self._mirror_failed = False

    def event(self, name: str, **fields: Any) -> None:
        self._print(json.dumps({"event": name, **fields}, default=str))

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def update(self, **fields: Any) -> None:
        """Merge fields into progress.json (written atomically: the workflow may read it at any moment)."""
        self.state.update(fields)
        self.state["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = json.dumps(self.state, indent=2, default=str) + "\n"
        if self.output_dir is not None:
            _write_atomic(self.output_dir / PROGRESS_FILE, text)
        self._to_mirror(lambda mirror: _write_atomic(mirror / PROGRESS_FILE, text))

    def train_step(
        self,
        *,
        step: int,
        total_steps: int,
        epoch: float,
        loss: float,
        learning_rate: float,
        tokens_per_second: float,
        token_accuracy: float | None = None,
    ) -> None:
        fields = {
            "step": step,
            "total_steps": total_steps,
            "epoch": round(epoch, 4),
            "loss": _finite(loss, 6),
            "learning_rate": float(f"{learning_rate:.6g}"),
            "tokens_per_second": round(tokens_per_second, 1),
            "token_accuracy": _finite(token_accuracy, 6),
        }
        self._log("train_step", step, fields)
        self.update(status="training", **fields)

    def validation(self, *, step: int, epoch: int, loss: float, token_accuracy: float) -> None:
        """The epoch's validation line: the curve gives the sample of that step its valid_* values."""
        fields = {
            "step": step,
            "epoch": epoch,
            "valid_loss": _finite(loss, 6),
            "valid_token_accuracy": _finite(token_accuracy, 6),
        }
        self._log("validation", step, fields)
        self.update(**{k: v for k, v in fields.items() if k.startswith("valid_")})

    def _log(self, event: str, step: int, fields: dict[str, Any]) -> None:
        self._print(json.dumps({"event": event, **fields}, default=str))
        # training_log.jsonl holds the stdout line (the "event" key included) plus when it was logged: the
        # workflow's training curve is drawn from it.
        stamped = json.dumps({"event": event, **fields, "timestamp": timestamp()}, default=str)
        if self.output_dir is not None:
            self._append_log(self.output_dir / TRAINING_LOG_FILE, stamped, step)
        self._to_mirror(lambda mirror: self._append_log(mirror / TRAINING_LOG_FILE, stamped, step))

    def _append_log(self, path: Path, line: str, step: int) -> None:
        if path not in self._logs_opened:
            # A log left by an earlier attempt (a resumed job, a checkpoint dir restored from S3) keeps only
            # the steps before this process's first one, so no step appears twice.
            path.parent.mkdir(parents=True, exist_ok=True)
            _keep_steps_before(path, step)
            self._logs_opened.add(path)
        with path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
            log.flush()

    def _to_mirror(self, write: Callable[[Path], None]) -> None:
        if self.mirror_dir is None:
            return
        try:
            write(self.mirror_dir)
        except OSError as exc:
            if not self._mirror_failed:
                self._mirror_failed = True
                self.event(
                    "warning", message=f"live progress cannot be mirrored to the checkpoint dir: {exc}"
                )
