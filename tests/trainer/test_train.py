"""LoRA training on the tiny model (CPU): learning, frozen base, overfit answers, artifact, resume, parent."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.jobs import Job, child_job, eval_rows_from, item_rows, run_in_process
from tt_trainer import checkpoints
from tt_trainer.config import Hyperparameters
from tt_trainer.data import ChatEncoder, ChatRow, tokenize_rows
from tt_trainer.errors import ParentModelError, TrainingStoppedError
from tt_trainer.progress import ProgressReporter
from tt_trainer.train import attach_lora, pick_precision, seed_everything, train

OVERFIT = {
    "batch_size": 8,
    "micro_batch_size": 8,
    "learning_rate": 5e-3,
    "lora_dropout": 0,
    "max_steps": 200,
    "logging_steps": 10,
    "max_output_tokens": 24,
    "eval_reserved_output_tokens": 8,
}


@pytest.fixture(scope="module")
def overfit(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Job, Any]:
    """One full job: 30 rows, 200 steps, eval generations on the same 30 prompts."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TT_TINY_MODEL_CACHE", str(tiny_model_dir))
    try:
        rows = item_rows(30)
        job = Job(tmp_path_factory.mktemp("overfit"), dict(OVERFIT)).write(rows, eval_rows_from(rows))
        return job, run_in_process(job)
    finally:
        mp.undo()


def test_job_succeeds_and_loss_falls(overfit: tuple[Job, Any]) -> None:
    job, result = overfit
    assert result.code == 0, result.stderr
    steps = result.of("train_step")
    # Every logging_steps and at each epoch's end (4 steps an epoch).
    assert [s["step"] for s in steps] == sorted({*range(10, 201, 10), *range(4, 201, 4)})
    assert all(s["total_steps"] == 200 for s in steps)
    assert steps[0]["loss"] > 1.0 and steps[-1]["loss"] < 0.2
    assert steps[-1]["loss"] < steps[0]["loss"] / 10
    assert steps[-1]["epoch"] == pytest.approx(200 / 4)
    assert not job.failure_file.exists()
    assert result.events[-1]["event"] == "completed"


def test_overfit_answers_come_back_exactly_and_stop(overfit: tuple[Job, Any]) -> None:
    job, _ = overfit
    predictions = [
        json.loads(line) for line in (job.output_dir / "eval_predictions.jsonl").read_text().splitlines()
    ]
    assert len(predictions) == 30
    exact = [p for p in predictions if p["tuned"]["output"] == p["expected"] and p["tuned"]["finished"]]
    assert len(exact) >= 27
    # The base model (adapter disabled) has never seen these answers.
    assert sum(p["base"]["output"] == p["expected"] for p in predictions) == 0
    first = predictions[0]
    assert set(first) == {
        "id",
        "split",
        "input",
        "expected",
        "prompt_tokens",
        "prompt_truncated",
        "max_new_tokens",
        "base",
        "tuned",
    }
    assert (first["id"], first["split"], first["input"]) == ("row-0", "val", "Describe item 0.")
    assert first["max_new_tokens"] == 24 and first["prompt_truncated"] is False
    for side in ("base", "tuned"):
        assert set(first[side]) == {"output", "latency_ms", "output_tokens", "finished"}
        assert first[side]["latency_ms"] > 0 and 1 <= first[side]["output_tokens"] <= 24
    # A finished generation counts its end-of-turn token; an unfinished one used the whole budget.
    assert all(p["base"]["finished"] or p["base"]["output_tokens"] == 24 for p in predictions)


def test_artifact_files_and_shapes(overfit: tuple[Job, Any]) -> None:
    job, _ = overfit
    names = {p.name for p in job.model_dir.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "training-metrics.json",
        "base_model.json",
    } <= names
    adapter_config = json.loads((job.model_dir / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "tunedtensor/tiny-chat"
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (16, 32)
    assert len(adapter_config["target_modules"]) == 14  # every linear layer of both blocks, lm_head excluded
    assert json.loads((job.model_dir / "base_model.json").read_text()) == {
        "id": "tunedtensor/tiny-chat",
        "revision": "v1",
    }
    metrics = json.loads((job.model_dir / "training-metrics.json").read_text())
    assert {
        "training_rows",
        "n_epochs",
        "steps",
        "train_runtime_seconds",
        "train_loss",
        "loss_history",
        "hyperparameters",
    } <= set(metrics)
    assert (metrics["training_rows"], metrics["steps"]) == (30, 200)
    assert metrics["hyperparameters"]["learning_rate"] == 5e-3
    assert set(metrics["loss_history"][0]) == {"step", "epoch", "loss", "learning_rate", "token_accuracy"}
    assert len(metrics["loss_history"]) == 60  # every 10 steps and every epoch's end (4 steps)
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 51))
    assert metrics["selected_epoch"] is None
    assert "{% generation %}" in (job.model_dir / "chat_template.jinja").read_text()
    progress = json.loads((job.output_dir / "progress.json").read_text())
    assert progress["status"] == "completed" and progress["step"] == 200
    assert progress["eval_rows_done"] == progress["eval_rows_total"] == 30


def test_artifact_never_names_a_local_path(overfit: tuple[Job, Any], tiny_model_dir: Path) -> None:
    job, _ = overfit
    for path in job.model_dir.iterdir():
        if path.suffix in {".json", ".md", ".jinja"}:
            text = path.read_text()
            assert str(tiny_model_dir) not in text and "/tmp" not in text, path.name


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_artifact_loads_with_plain_peft(overfit: tuple[Job, Any], tiny_model_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    job, _ = overfit
    tokenizer = AutoTokenizer.from_pretrained(job.model_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), job.model_dir)
    model.eval()
    predictions = [
        json.loads(line) for line in (job.output_dir / "eval_predictions.jsonl").read_text().splitlines()
    ]
    for row, prediction in zip(eval_rows_from(item_rows(30))[:5], predictions, strict=False):
        ids = tokenizer.apply_chat_template(row["messages"], add_generation_prompt=True, return_tensors="pt")[
            "input_ids"
        ]
        out = model.generate(
            input_ids=ids, max_new_tokens=24, do_sample=False, eos_token_id=tokenizer.eos_token_id
        )
        text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        assert text == prediction["tuned"]["output"]


# ------------------------------------------------------------------------------------------- in-process loop


def _rows(encoder: ChatEncoder, n: int = 16) -> list[Any]:
    chat = [ChatRow(r["messages"], f"line {i}") for i, r in enumerate(item_rows(n))]
    return tokenize_rows(chat, encoder, max_seq_length=256, long_examples="error")[0]


def _fresh_lora(tiny_model_dir: Path, hp: Hyperparameters, parent: Path | None = None) -> Any:
    from transformers import AutoModelForCausalLM

    seed_everything(hp.seed)
    return attach_lora(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        hp,
        parent_dir=parent,
        gradient_checkpointing=False,
    )


def _train(model: Any, rows: list[Any], hp: Hyperparameters, **kwargs: Any) -> Any:
    return train(
        model,
        rows,
        hp,
        precision=pick_precision("fp32"),
        pad_id=0,
        reporter=ProgressReporter(None, io.StringIO()),
        **kwargs,
    )


def test_base_weights_stay_frozen_and_the_adapter_changes(tiny_model_dir: Path, encoder: ChatEncoder) -> None:
    hp = Hyperparameters(batch_size=8, learning_rate=5e-3, max_steps=10)
    model = _fresh_lora(tiny_model_dir, hp)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = _train(model, _rows(encoder), hp)
    assert result.steps == 10 and result.step_losses[-1] < result.step_losses[0]
    lora = [n for n in before if "lora_" in n]
    base = [n for n in before if "lora_" not in n]
    assert lora and base
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in base)
    assert all(not after[n].requires_grad for n in base)
    assert all(not torch.equal(before[n], after[n]) for n in lora)


def test_warmup_then_linear_decay(tiny_model_dir: Path, encoder: ChatEncoder) -> None:
    rows = _rows(encoder, 4)
    hp = Hyperparameters(batch_size=4, learning_rate=1e-2, max_steps=10, warmup_ratio=0.2)
    rates = [h["learning_rate"] for h in _train(_fresh_lora(tiny_model_dir, hp), rows, hp).loss_history]
    # transformers' linear schedule: warmup from 0 over 2 steps, then down to 0 at step 10.
    assert rates == pytest.approx([0.0, 5e-3, 1e-2, 8.75e-3, 7.5e-3, 6.25e-3, 5e-3, 3.75e-3, 2.5e-3, 1.25e-3])


def test_cpu_trains_in_fp32() -> None:
    precision = pick_precision("auto", torch.device("cpu"))
    assert precision.name == "fp32" and precision.load_dtype == torch.float32


def test_gradient_accumulation_matches_one_big_batch(tiny_model_dir: Path, encoder: ChatEncoder) -> None:
    rows = _rows(encoder, 8)
    results = []
    for micro in (8, 3):
        hp = Hyperparameters(
            batch_size=8, micro_batch_size=micro, learning_rate=5e-3, lora_dropout=0, max_steps=3
        )
        results.append(_train(_fresh_lora(tiny_model_dir, hp), rows, hp).step_losses)
    assert results[0] == pytest.approx(results[1], rel=1e-4)


def test_stop_checkpoints_and_resume_continues_the_step_count(
    tmp_path: Path, tiny_model_dir: Path, encoder: ChatEncoder
) -> None:
    rows = _rows(encoder, 16)
    hp = Hyperparameters(batch_size=4, learning_rate=5e-3, max_steps=12, checkpoint_steps=100, seed=3)
    uninterrupted = _train(_fresh_lora(tiny_model_dir, hp), rows, hp)

    kept = {"checkpoint_dir": tmp_path, "fingerprint": "fingerprint"}
    calls = {"n": 0}

    def stop_after_five_steps() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5  # asked after each step

    with pytest.raises(TrainingStoppedError, match=r"after step 5 of 12\. A checkpoint was saved"):
        _train(_fresh_lora(tiny_model_dir, hp), rows, hp, **kept, should_stop=stop_after_five_steps)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-5"]

    stream = io.StringIO()
    model = _fresh_lora(tiny_model_dir, hp)
    resumed = train(
        model,
        rows,
        hp,
        precision=pick_precision("fp32"),
        pad_id=0,
        reporter=ProgressReporter(None, stream),
        **kept,
    )
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert events[0] == {
        "event": "resumed",
        "step": 5,
        "total_steps": 12,
        "checkpoint": "checkpoint-5",
    }
    assert [e["step"] for e in events if e["event"] == "train_step"] == list(range(6, 13))
    assert resumed.resumed_from == 5 and resumed.steps == 12
    assert [h["step"] for h in resumed.loss_history] == list(range(1, 13))
    # Same data order, optimizer, schedule and RNG: the resumed run is the uninterrupted run.
    assert resumed.step_losses == pytest.approx(uninterrupted.step_losses, rel=1e-4)


def test_a_checkpoint_of_other_settings_is_ignored(
    tmp_path: Path, tiny_model_dir: Path, encoder: ChatEncoder
) -> None:
    rows = _rows(encoder, 8)
    hp = Hyperparameters(batch_size=4, max_steps=4, checkpoint_steps=2)
    _train(_fresh_lora(tiny_model_dir, hp), rows, hp, checkpoint_dir=tmp_path, fingerprint="one")
    assert [p.name for p in tmp_path.iterdir()] == [
        "checkpoint-2"
    ]  # none of the last step: the model is saved
    assert checkpoints.resumable(tmp_path, "one", total_steps=4) is not None
    assert checkpoints.resumable(tmp_path, "other", total_steps=4) is None


# ------------------------------------------------------------------------------------------- parent adapter


def test_a_parent_adapter_is_continued(tmp_path: Path, parent_artifact: Path) -> None:
    parent_metrics = json.loads((parent_artifact / "training-metrics.json").read_text())
    fresh = run_in_process(child_job(tmp_path / "fresh", None, lora_rank=4))
    continued = child_job(tmp_path / "child", parent_artifact, lora_rank=4)
    child = run_in_process(continued)
    assert child.code == 0, child.stderr
    assert child.of("model")[0]["parent_model"] is True
    # It starts where the parent ended, far below a fresh adapter's first loss.
    first_child = child.of("train_step")[0]["loss"]
    assert first_child < fresh.of("train_step")[0]["loss"] / 2
    assert first_child < parent_metrics["loss_history"][0]["loss"]
    config = json.loads((continued.model_dir / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (8, 16)  # the parent's shape, not lora_rank=4
    assert config["base_model_name_or_path"] == "tunedtensor/tiny-chat"


def test_a_parent_model_tarball_is_accepted(tmp_path: Path, parent_artifact: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in parent_artifact.iterdir():
            tar.add(f, arcname=f.name)  # SageMaker packs /opt/ml/model at the archive root
    result = run_in_process(child_job(tmp_path / "child", archive))
    assert result.code == 0, result.stderr
    assert result.of("model")[0]["parent_model"] is True


def test_a_parent_of_another_base_model_is_refused(tmp_path: Path, parent_artifact: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for f in parent_artifact.iterdir():
        (foreign / f.name).write_bytes(f.read_bytes())
    (foreign / "base_model.json").write_text(
        json.dumps({"id": "meta-llama/Llama-3.2-3B-Instruct", "revision": None})
    )
    job = child_job(tmp_path / "child", foreign)
    result = run_in_process(job)
    assert result.code == 1
    assert job.failure_file.read_text().startswith(
        "The parent model was trained on meta-llama/Llama-3.2-3B-Instruct, but this run's base model is "
        "tunedtensor/tiny-chat"
    )


def test_an_empty_parent_channel_is_refused(tmp_path: Path) -> None:
    job = child_job(tmp_path / "child", None)
    job.channel("parent_model").mkdir(parents=True)
    result = run_in_process(job)
    assert result.code == 1
    reason = job.failure_file.read_text()
    assert "The parent model's files hold no adapter" in reason and "channel" not in reason
    assert ParentModelError.__name__  # the error class the message comes from is part of the public hierarchy


def test_spec_channel_and_unknown_hyperparameters(tmp_path: Path) -> None:
    job = Job(tmp_path, {"max_steps": 1, "lerning_rate": "0.1", "max_eval_examples": "50"}).write(
        item_rows(4)
    )
    spec = {"id": "spec-1", "name": "Items", "system_prompt": "You describe items."}
    (job.channel("spec")).mkdir(parents=True)
    (job.channel("spec") / "tunedtensor.json").write_text(json.dumps(spec))
    result = run_in_process(job)
    assert result.code == 0, result.stderr
    assert result.of("warning") == [
        {"event": "warning", "message": "ignored unknown hyperparameters: lerning_rate"}
    ]
    assert json.loads((job.model_dir / "tunedtensor.json").read_text()) == spec
    assert not (job.output_dir / "eval_predictions.jsonl").exists()  # no eval channel, no generations


def test_gpu_precision_prefers_bf16_then_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert pick_precision("auto", cuda).name == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    fp16 = pick_precision("auto", cuda)
    assert (fp16.name, fp16.load_dtype) == ("fp16", torch.float16)
    assert pick_precision("fp32", cuda).amp_dtype is None
