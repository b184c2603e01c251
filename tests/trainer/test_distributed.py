"""More than one process: two CPU processes (gloo, DDP) train the adapter one process trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.trainer.jobs import Job, item_rows
from tt_trainer.__main__ import processes_wanted

TRAINING_IMAGE = Path(__file__).resolve().parents[2] / "training_image"


def _run(job: Job, processes: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TRAINING_IMAGE), "TT_TRAINER_PROCESSES": str(processes)}
    return subprocess.run(
        [sys.executable, "-m", "tt_trainer", "train", "--sm-root", str(job.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_processes_follow_the_gpus_unless_set() -> None:
    assert processes_wanted({"SM_NUM_GPUS": "4"}) == 4
    assert processes_wanted({"SM_NUM_GPUS": "0"}) == 1
    assert processes_wanted({"SM_NUM_GPUS": "4", "TT_TRAINER_PROCESSES": "2"}) == 2


@pytest.mark.slow
def test_two_processes_train_the_adapter_one_process_trains(tmp_path: Path) -> None:
    # Rows of uneven lengths, packed; 7 rows per step: one process gets 4 rows, the other 3.
    hp = {"batch_size": 7, "learning_rate": 5e-3, "max_steps": 4, "lora_dropout": 0, "logging_steps": 1}
    jobs = {n: Job(tmp_path / f"p{n}", hp).write(item_rows(14)) for n in (1, 2)}
    runs = {n: _run(job, n) for n, job in jobs.items()}
    for n, run in runs.items():
        assert run.returncode == 0, (n, run.stderr[-3000:])
    events = {
        n: [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        for n, run in runs.items()
    }
    losses = {n: [e["loss"] for e in found if e["event"] == "train_step"] for n, found in events.items()}
    assert len(losses[2]) == 4  # only the first process reports: one line per step
    assert [e["processes"] for n in (1, 2) for e in events[n] if e["event"] == "model"] == [1, 2]
    assert losses[2] == pytest.approx(losses[1], rel=1e-4)
    adapters = {n: load_file(str(job.model_dir / "adapter_model.safetensors")) for n, job in jobs.items()}
    assert adapters[1].keys() == adapters[2].keys()
    differences = [float((adapters[2][name] - weights).abs().max()) for name, weights in adapters[1].items()]
    assert max(differences) < 1e-5
