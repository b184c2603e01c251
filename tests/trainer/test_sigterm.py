"""SIGTERM (SageMaker stop, spot interruption) → checkpoint and exit; the restarted job resumes from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.jobs import Job, item_rows

TRAINING_IMAGE = Path(__file__).resolve().parents[2] / "training_image"


def _start(job: Job) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(TRAINING_IMAGE)}
    return subprocess.Popen(
        [sys.executable, "-m", "tt_trainer", "train", "--sm-root", str(job.root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.slow
def test_sigterm_checkpoints_then_the_next_job_resumes(tmp_path: Path) -> None:
    hp = {
        "batch_size": 4,
        "max_steps": 120,
        "logging_steps": 1,
        "checkpoint_steps": 1000,
        "learning_rate": 1e-3,
    }
    job = Job(tmp_path, hp).write(item_rows(16))

    first = _start(job)
    assert first.stdout is not None
    for line in first.stdout:
        event = json.loads(line)
        if event["event"] == "train_step" and event["step"] >= 3:
            first.send_signal(signal.SIGTERM)
            break
    rest = [json.loads(line) for line in first.stdout]
    assert first.wait(timeout=60) == 143
    stopped_at = next(e["step"] for e in rest if e["event"] == "checkpoint")
    assert 3 <= stopped_at < 120
    assert rest[-1]["event"] == "stopped"
    assert job.failure_file.read_text().startswith(
        f"Training was stopped (SIGTERM) after step {stopped_at} of 120."
    )
    assert sorted(p.name for p in job.checkpoint_dir.glob("checkpoint-*")) == [f"checkpoint-{stopped_at}"]
    assert json.loads((job.output_dir / "progress.json").read_text())["status"] == "stopped"

    job.failure_file.unlink()
    second = _start(job)
    events = [json.loads(line) for line in second.communicate(timeout=300)[0].splitlines()]
    assert second.returncode == 0
    assert events[[e["event"] for e in events].index("resumed")]["step"] == stopped_at
    steps = [e["step"] for e in events if e["event"] == "train_step"]
    assert steps == list(range(stopped_at + 1, 121))
    metrics = json.loads((job.model_dir / "training-metrics.json").read_text())
    assert metrics["steps"] == 120 and len(metrics["loss_history"]) == 120
    assert not job.failure_file.exists()
