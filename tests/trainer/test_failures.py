"""Bad inputs end in a one-paragraph failure file and a non-zero exit, never a bare traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.jobs import Job, item_rows, run_in_process

TRAINING_IMAGE = Path(__file__).resolve().parents[2] / "training_image"


def _assert_failed(job: Job, result: Any, *fragments: str) -> str:
    assert result.code == 1
    reason = job.failure_file.read_text()
    assert reason.endswith("\n") and "\n" not in reason.rstrip("\n"), "one paragraph"
    for fragment in fragments:
        assert fragment in reason
    assert "Traceback" not in reason and "Traceback" not in result.stderr
    assert result.events[-1] == {"event": "failed", "reason": reason.strip()}
    assert json.loads((job.output_dir / "progress.json").read_text())["status"] == "failed"
    assert not (job.model_dir / "adapter_model.safetensors").exists()
    return reason


def test_empty_train_channel(tmp_path: Path) -> None:
    job = Job(tmp_path).write(None)
    job.channel("train").mkdir(parents=True)
    _assert_failed(job, run_in_process(job), "The training job received no training examples.")


def test_train_channel_with_only_blank_lines(tmp_path: Path) -> None:
    job = Job(tmp_path).write(None)
    (job.channel("train")).mkdir(parents=True)
    (job.channel("train") / "train.jsonl").write_text("\n\n")
    _assert_failed(job, run_in_process(job), "The training data holds no training examples.")


def test_missing_train_channel(tmp_path: Path) -> None:
    job = Job(tmp_path).write(None)
    _assert_failed(job, run_in_process(job), "The training job received no training examples.")


def test_empty_eval_channel(tmp_path: Path) -> None:
    job = Job(tmp_path).write(item_rows(4), [])
    _assert_failed(job, run_in_process(job), "The evaluation data holds no evaluation rows.")


def test_malformed_jsonl(tmp_path: Path) -> None:
    job = Job(tmp_path).write(item_rows(3))
    with (job.channel("train") / "train.jsonl").open("a") as f:
        f.write('{"messages": [{"role": "user", "content": "oops"}\n')
    _assert_failed(job, run_in_process(job), "The training data is malformed: training example 4 is not JSON")


def test_row_without_an_assistant_turn(tmp_path: Path) -> None:
    rows = item_rows(3)
    rows[1]["messages"] = rows[1]["messages"][:2]
    job = Job(tmp_path).write(rows)
    _assert_failed(job, run_in_process(job), "Training example 2 has no assistant message")


def test_unknown_base_model(tmp_path: Path) -> None:
    job = Job(tmp_path, {"base_model": "acme/never-heard-of-it"}).write(item_rows(3))
    reason = _assert_failed(job, run_in_process(job), "Unknown base model 'acme/never-heard-of-it'")
    assert "never downloads" in reason and "Choose another base model" in reason
    assert "channel" not in reason  # the training machine's layout means nothing to the user


def test_a_diverging_loss_fails_the_training_and_saves_no_model(tmp_path: Path) -> None:
    # A learning rate this high turns the tiny model's loss into NaN at its second step.
    job = Job(tmp_path, {"learning_rate": 1e30, "batch_size": 4, "n_epochs": 2}).write(item_rows(8))
    _assert_failed(
        job,
        run_in_process(job),
        "The loss became NaN at step 2 of 4 (epoch 1): training diverged.",
        "Lower learning_rate (now 1e+30) and start a new run.",
    )


def test_non_numeric_hyperparameter(tmp_path: Path) -> None:
    job = Job(tmp_path, {"learning_rate": "fast"}).write(item_rows(3))
    _assert_failed(job, run_in_process(job), "Invalid hyperparameters: learning_rate = 'fast'")


def test_too_long_rows_with_the_error_policy(tmp_path: Path) -> None:
    job = Job(tmp_path, {"max_seq_length": 20, "long_examples": "error"}).write(item_rows(3))
    reason = _assert_failed(
        job, run_in_process(job), "3 training examples are longer than max_seq_length (20 tokens)"
    )
    assert 'training example 1 ("Describe item 0.", ' in reason and "train.jsonl" not in reason


def test_an_unexpected_error_still_writes_the_failure_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_trainer import data

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(data, "tokenize_rows", broken)
    job = Job(tmp_path).write(item_rows(3))
    result = run_in_process(job)
    assert result.code == 1
    assert (
        job.failure_file.read_text().strip()
        == "The training job failed unexpectedly: RuntimeError: disk on fire"
    )
    assert "Traceback" in result.stderr  # kept for the logs, next to the reason


def test_the_container_entrypoint_exits_non_zero_with_a_reason(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`python -m tt_trainer train` as SageMaker runs it, with SM_* variables instead of flags."""
    job = Job(tmp_path, {"n_epochs": "many"}).write(item_rows(3))
    env = {
        **os.environ,
        "PYTHONPATH": str(TRAINING_IMAGE),
        "TT_SM_ROOT": str(tmp_path),
        "SM_MODEL_DIR": str(tmp_path / "elsewhere"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tt_trainer", "train"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    reason = job.failure_file.read_text()
    assert reason.startswith("Invalid hyperparameters: n_epochs = 'many'")
    assert json.loads(proc.stdout.splitlines()[-1])["event"] == "failed"


@pytest.mark.parametrize(
    "error",
    [MemoryError(), type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory")],
    ids=["host", "gpu"],
)
def test_running_out_of_memory_names_settings_the_run_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    import tt_trainer.__main__ as entry

    def out_of_memory(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(entry, "run_job", out_of_memory)
    job = Job(tmp_path).write(item_rows(3))
    assert run_in_process(job).code == 1
    reason = job.failure_file.read_text()
    # micro_batch_size is the trainer's own knob: a run's hyperparameters cannot set it.
    assert "ran out of memory. Lower max_seq_length, or batch_size below 4" in reason
    assert "micro_batch_size" not in reason
