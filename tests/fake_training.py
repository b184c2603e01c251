"""A TrainingLauncher that finishes at once, for tests of what happens around training (augmentation,
scoring, reports): it reads the run's eval channel and writes the trainer's outputs in SageMaker's
layout, with outputs a test chooses. The real trainer is covered by the runs tests."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from tt_core.ports import ObjectStore, TrainingJobSpec, TrainingJobStatus
from tt_core.runs.artifacts import PREDICTIONS_FILE

# (eval row of the channel, "base" | "tuned") → the model's output for it.
Outputs = Callable[[dict[str, Any], str], str]


def default_outputs(row: dict[str, Any], side: str) -> str:
    """The tuned model answers the reference; the base model rambles."""
    return str(row["expected"]) if side == "tuned" else f"I am not sure about: {row['input']}"


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class InstantTrainer:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.outputs: Outputs = default_outputs
        self.jobs: list[TrainingJobSpec] = []
        self.train_rows: dict[str, list[dict[str, Any]]] = {}  # job name → the training rows it got

    def start(self, job: TrainingJobSpec) -> None:
        if any(seen.job_name == job.job_name for seen in self.jobs):
            return
        self.jobs.append(job)
        train = self.objects.get_bytes(job.channels["train"] + "train.jsonl").decode()
        self.train_rows[job.job_name] = [json.loads(line) for line in train.splitlines() if line.strip()]
        lines = self.objects.get_bytes(job.channels["eval"] + "eval.jsonl").decode().splitlines()
        predictions = []
        for line in filter(None, lines):
            channel_row = json.loads(line)
            row = {
                "id": channel_row["id"],
                "split": channel_row["split"],
                "input": channel_row["messages"][-1]["content"],
                "expected": channel_row["expected"],
            }
            for side in ("base", "tuned"):
                row[side] = {"output": self.outputs(row, side), "latency_ms": 12.5, "output_tokens": 5,
                             "finished": side == "tuned"}  # fmt: skip
            predictions.append(row)
        body = "".join(json.dumps(row) + "\n" for row in predictions).encode()
        prefix = f"{job.output_prefix}/{job.job_name}/output/"
        self.objects.put_bytes(prefix + "output.tar.gz", _tar(PREDICTIONS_FILE, body), "application/gzip")
        self.objects.put_bytes(
            prefix + "model.tar.gz", _tar("adapter_config.json", b"{}"), "application/gzip"
        )

    def describe(self, job: TrainingJobSpec) -> TrainingJobStatus:
        log = [
            {"epoch": e / 2, "loss": 2.0 - e / 4, "learning_rate": 1e-3, "timestamp": None}
            for e in range(1, 5)
        ]
        return TrainingJobStatus(state="completed", progress={"status": "completed"}, log=log)

    def stop(self, job_name: str) -> None:
        return None

    def discard(self, job_name: str) -> None:
        return None


def install_instant_training(monkeypatch: pytest.MonkeyPatch) -> InstantTrainer:
    """Every run of this test trains instantly (the wiring's launcher is replaced)."""
    from tt_core import wiring

    trainer = InstantTrainer(wiring._objects())
    # A cached function, as the wiring's own: reset() clears its cache.
    monkeypatch.setattr(wiring, "_launcher", cache(lambda: trainer))
    wiring.run_workflow_service.cache_clear()
    wiring.run_service.cache_clear()
    return trainer


def install_fake_claude(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The local stack's provider setting (ANTHROPIC_API_KEY) with a fake Claude behind it."""
    from tests.llm_fakes import FakeClaude
    from tt_core import wiring

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-real")
    wiring.reset()
    fake = FakeClaude()
    wiring.use_llm_transport(fake.transport)
    return fake


def no_language_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's environment holds, tests never reach a real provider."""
    from tt_core import wiring

    for name in ("ANTHROPIC_API_KEY", "TT_ANTHROPIC_API_KEY_SECRET", "TT_BEDROCK_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    wiring.reset()
