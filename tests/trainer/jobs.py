"""Helpers for trainer tests: chat rows, a SageMaker-shaped job directory, running the trainer in-process."""

from __future__ import annotations

import contextlib
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLORS = ("red", "blue", "green", "yellow", "black", "white")
SHAPES = ("cube", "sphere", "cone", "cylinder", "pyramid")
SYSTEM = "You describe items."


def item_rows(n: int = 30, seed: int = 0) -> list[dict[str, Any]]:
    """The overfit set of FEASIBILITY §4: 'Describe item i.' → 'Item i is a <color> <shape>.'"""
    rng = random.Random(seed)
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Describe item {i}."},
                {"role": "assistant", "content": f"Item {i} is a {rng.choice(COLORS)} {rng.choice(SHAPES)}."},
            ]
        }
        for i in range(n)
    ]


def eval_rows_from(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"row-{i}",
            "messages": r["messages"][:-1],
            "expected": r["messages"][-1]["content"],
            "split": "val",
        }
        for i, r in enumerate(rows)
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@dataclass
class Job:
    """A directory laid out like /opt/ml."""

    root: Path
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    def write(self, train: list[dict[str, Any]] | None, eval_rows: list[dict[str, Any]] | None = None) -> Job:
        config = self.root / "input" / "config" / "hyperparameters.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        # SageMaker hands every value over as a string.
        config.write_text(json.dumps({k: str(v) for k, v in self.hyperparameters.items()}))
        if train is not None:
            write_jsonl(self.channel("train") / "train.jsonl", train)
        if eval_rows is not None:
            write_jsonl(self.channel("eval") / "eval.jsonl", eval_rows)
        return self


@dataclass
class Result:
    code: int
    events: list[dict[str, Any]]
    stdout: str
    stderr: str

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]


def run_in_process(job: Job, *extra: str) -> Result:
    """Run `python -m tt_trainer train` in this process (no interpreter and torch start-up per job)."""
    from tt_trainer.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--sm-root", str(job.root), *extra])
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return Result(code=code, events=events, stdout=out.getvalue(), stderr=err.getvalue())


def child_job(root: Path, parent_channel_content: Path | None, **hp: Any) -> Job:
    """A short job continuing a parent adapter (a model directory or its model.tar.gz) from its channel."""
    job = Job(root, {"batch_size": 8, "learning_rate": 5e-3, "max_steps": 2, "logging_steps": 1, **hp})
    job.write(item_rows(16))
    if parent_channel_content is not None:
        channel = job.channel("parent_model")
        channel.mkdir(parents=True)
        if parent_channel_content.is_dir():
            for f in parent_channel_content.iterdir():
                (channel / f.name).write_bytes(f.read_bytes())
        else:
            (channel / parent_channel_content.name).write_bytes(parent_channel_content.read_bytes())
    return job
