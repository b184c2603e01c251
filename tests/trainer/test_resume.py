"""Resuming: a stopped job resumes exactly; a checkpoint belongs to one parent adapter."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file, save_file

from tests.trainer.jobs import child_job, item_rows, run_in_process
from tt_trainer.config import Hyperparameters
from tt_trainer.data import ChatEncoder, ChatRow, tokenize_rows
from tt_trainer.errors import TrainingStoppedError
from tt_trainer.progress import ProgressReporter
from tt_trainer.train import attach_lora, pick_precision, seed_everything, train


def _train(tiny_model_dir: Path, rows: list[Any], hp: Hyperparameters, **kwargs: Any) -> Any:
    from transformers import AutoModelForCausalLM

    seed_everything(hp.seed)
    model = attach_lora(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        hp,
        parent_dir=None,
        gradient_checkpointing=False,
    )
    return train(
        model,
        rows,
        hp,
        precision=pick_precision("fp32"),
        pad_id=0,
        reporter=ProgressReporter(None, io.StringIO()),
        **kwargs,
    )


def test_a_stopped_job_resumes_like_an_uninterrupted_run(
    tmp_path: Path, tiny_model_dir: Path, encoder: ChatEncoder
) -> None:
    chat = [ChatRow(r["messages"], f"line {i}") for i, r in enumerate(item_rows(16))]
    rows = tokenize_rows(chat, encoder, max_seq_length=256, long_examples="error")[0]
    # Two micro-batches per step and dropout: the resumed job draws the random numbers the first would have.
    hp = Hyperparameters(
        batch_size=4,
        micro_batch_size=2,
        packing=False,
        lora_dropout=0.3,
        learning_rate=5e-3,
        max_steps=10,
        checkpoint_steps=100,
        seed=5,
    )
    uninterrupted = _train(tiny_model_dir, rows, hp)

    kept = {"checkpoint_dir": tmp_path, "fingerprint": "fingerprint"}
    calls = {"n": 0}

    def stop_after_step_five() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5  # asked after each step

    with pytest.raises(TrainingStoppedError, match=r"after step 5 of 10"):
        _train(tiny_model_dir, rows, hp, **kept, should_stop=stop_after_step_five)
    resumed = _train(tiny_model_dir, rows, hp, **kept)
    assert resumed.resumed_from == 5
    assert resumed.step_losses == pytest.approx(uninterrupted.step_losses, rel=1e-5)
    assert resumed.tokens == uninterrupted.tokens


def _with_other_weights(adapter: Path, target: Path) -> Path:
    shutil.copytree(adapter, target)
    weights = target / "adapter_model.safetensors"
    tensors = {name: value * 1.01 for name, value in load_file(str(weights)).items()}
    save_file(tensors, str(weights))
    return target


def test_a_checkpoint_is_resumed_only_with_the_same_parent_adapter(
    tmp_path: Path, parent_artifact: Path
) -> None:
    # checkpoint_steps=1 with 2 steps: the job leaves checkpoint-1 behind for the next job on the same root.
    settings = {"max_steps": 2, "checkpoint_steps": 1}
    first = run_in_process(child_job(tmp_path, parent_artifact, **settings))
    assert first.code == 0, first.stderr
    assert [e["step"] for e in first.of("checkpoint")] == [1]

    # The same adapter in a directory of another name (a model.tar.gz unpacks anywhere): the same parent.
    same = child_job(tmp_path / "same", None, **settings)
    shutil.copytree(parent_artifact, same.channel("parent_model") / "renamed")
    shutil.copytree(tmp_path / "checkpoints", same.checkpoint_dir)
    assert [e["step"] for e in run_in_process(same).of("resumed")] == [1]

    # Other weights in a channel of the same name: another parent, never resumed from the first's checkpoint.
    other = _with_other_weights(parent_artifact, tmp_path / "other-parent")
    shutil.rmtree(tmp_path / "input" / "data" / "parent_model")
    result = run_in_process(child_job(tmp_path, other, **settings))
    assert result.code == 0, result.stderr
    assert not result.of("resumed")
