"""Each epoch's end (PRODUCT.md §9.10): validation loss and token accuracy, the last 3 epochs kept as model
artifacts, early stopping on the validation loss with the best epoch as the model."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load

from tests.trainer.jobs import COLORS, SHAPES, SYSTEM, Job, Result, item_rows, run_in_process
from tt_trainer import epochs
from tt_trainer.config import Hyperparameters
from tt_trainer.data import IGNORE_INDEX, ChatEncoder
from tt_trainer.progress import TRAINING_LOG_FILE, ProgressReporter
from tt_trainer.train import _epoch_end

SHORT = {
    "batch_size": 8,
    "micro_batch_size": 8,
    "learning_rate": 5e-3,
    "lora_dropout": 0,
    "logging_steps": 1,
    "max_output_tokens": 4,
    "eval_reserved_output_tokens": 2,
}
ARTIFACT_FILES = {
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "training-metrics.json",
    "base_model.json",
}


def unseen_eval_rows(n: int) -> list[dict[str, Any]]:
    """Items the training rows never describe: their colours and shapes cannot be learned, only guessed."""
    rng = random.Random(7)
    return [
        {
            "id": f"eval-{i}",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Describe item {i}."},
            ],
            "expected": f"Item {i} is a {rng.choice(COLORS)} {rng.choice(SHAPES)}.",
            "split": "primary",
        }
        for i in range(100, 100 + n)
    ]


def _run(root: Path, **hp: Any) -> tuple[Job, Result]:
    job = Job(root, {**SHORT, **hp}).write(item_rows(16), unseen_eval_rows(6))
    return job, run_in_process(job)


def _members(package: Path) -> dict[str, bytes]:
    with tarfile.open(package, mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _index(job: Job) -> dict[str, Any]:
    return json.loads((job.checkpoint_dir / epochs.EPOCHS_DIR / epochs.INDEX_FILE).read_text())


@pytest.fixture(scope="module")
def five_epochs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Job, Result]:
    mp = pytest.MonkeyPatch()
    mp.setenv("TT_TINY_MODEL_CACHE", str(tiny_model_dir))
    try:
        return _run(tmp_path_factory.mktemp("five"), n_epochs=5)
    finally:
        mp.undo()


def test_validation_at_each_epoch_end_and_token_accuracy_on_steps(five_epochs: tuple[Job, Result]) -> None:
    job, result = five_epochs
    assert result.code == 0, result.stderr
    checks = result.of("validation")
    assert [(v["epoch"], v["step"]) for v in checks] == [(e, 2 * e) for e in range(1, 6)]  # 2 steps an epoch
    assert all(v["valid_loss"] > 0 and 0 <= v["valid_token_accuracy"] <= 1 for v in checks)
    steps = result.of("train_step")
    assert len(steps) == 10 and all(0 <= s["token_accuracy"] <= 1 for s in steps)
    assert steps[-1]["token_accuracy"] > steps[0]["token_accuracy"]  # it learns the answers
    logged = [json.loads(line) for line in (job.output_dir / TRAINING_LOG_FILE).read_text().splitlines()]
    assert [e["valid_loss"] for e in logged if e["event"] == "validation"] == [
        v["valid_loss"] for v in checks
    ]


def test_validation_loss_is_the_teacher_forced_loss_of_the_expected_answers(
    five_epochs: tuple[Job, Result], tiny_model: Any, encoder: ChatEncoder
) -> None:
    """Recomputed from the last epoch's package with the model's own logits and F.cross_entropy."""
    from peft import PeftModel

    job, result = five_epochs
    model = PeftModel.from_pretrained(tiny_model, str(job.model_dir)).eval()
    loss_sum, hits, count = 0.0, 0, 0
    for row in unseen_eval_rows(6):
        ids, mask = encoder.encode([*row["messages"], {"role": "assistant", "content": row["expected"]}])
        labels = torch.tensor([i if m else IGNORE_INDEX for i, m in zip(ids, mask, strict=True)])[1:]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
        loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
        kept = labels != IGNORE_INDEX
        hits += int((logits.argmax(dim=1)[kept] == labels[kept]).sum())
        count += int(kept.sum())
    last = result.of("validation")[-1]
    assert last["valid_loss"] == pytest.approx(loss_sum / count, abs=1e-4)
    assert last["valid_token_accuracy"] == pytest.approx(hits / count, abs=1e-6)


def test_the_last_three_epochs_are_kept_as_artifacts(five_epochs: tuple[Job, Result]) -> None:
    job, result = five_epochs
    index = _index(job)
    assert [c["epoch"] for c in index["checkpoints"]] == [5, 4, 3]
    assert index["selected_epoch"] is None
    folder = job.checkpoint_dir / epochs.EPOCHS_DIR
    assert sorted(p.name for p in folder.glob("*.tar.gz")) == [epochs.checkpoint_file(e) for e in (3, 4, 5)]
    validations = {v["epoch"]: v for v in result.of("validation")}
    for entry in index["checkpoints"]:
        assert entry["metrics"]["valid_loss"] == validations[entry["epoch"]]["valid_loss"]
        assert entry["step"] == 2 * entry["epoch"] and entry["created_at"].endswith("Z")
        members = _members(folder / entry["file"])
        assert set(members) >= ARTIFACT_FILES
        metrics = json.loads(members["training-metrics.json"])
        assert (metrics["n_epochs"], metrics["steps"]) == (entry["epoch"], entry["step"])
        assert metrics["valid_loss"] == entry["metrics"]["valid_loss"]
    # The registered model is the last epoch's; an earlier epoch's weights differ.
    final = load((job.model_dir / "adapter_model.safetensors").read_bytes())
    fifth = load(_members(folder / epochs.checkpoint_file(5))["adapter_model.safetensors"])
    third = load(_members(folder / epochs.checkpoint_file(3))["adapter_model.safetensors"])
    assert all(torch.equal(final[k], fifth[k]) for k in final)
    assert any(not torch.equal(third[k], fifth[k]) for k in final)


def test_a_kept_checkpoint_loads_like_a_model(five_epochs: tuple[Job, Result], tmp_path: Path) -> None:
    from tt_serve.archive import extract_archive
    from tt_serve.runtime import ModelRuntime

    job, _ = five_epochs
    folder = extract_archive(
        job.checkpoint_dir / epochs.EPOCHS_DIR / epochs.checkpoint_file(3), tmp_path / "c"
    )
    runtime = ModelRuntime.load(folder, device="cpu")
    answer = runtime.generate([{"role": "user", "content": "Describe item 3."}], max_tokens=8)
    assert runtime.base_model == "tunedtensor/tiny-chat" and answer.text


def test_early_stopping_registers_the_epoch_with_the_lowest_validation_loss(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A high learning rate over-fits 16 rows within a few epochs: unseen items' loss turns up.
    job, result = _run(tmp_path, n_epochs=20, learning_rate=2e-2, early_stopping_patience=1)
    assert result.code == 0, result.stderr
    losses = {v["epoch"]: v["valid_loss"] for v in result.of("validation")}
    best = min(losses, key=lambda e: (losses[e], e))
    assert len(losses) < 20 and max(losses) == best + 1  # stopped one epoch after the best (patience 1)
    assert result.of("selected_epoch") == [{"event": "selected_epoch", "epoch": best, "stopped_early": True}]
    metrics = json.loads((job.model_dir / "training-metrics.json").read_text())
    assert (metrics["selected_epoch"], metrics["n_epochs"]) == (best, best + 1)
    index = _index(job)
    assert index["selected_epoch"] == best and best in [c["epoch"] for c in index["checkpoints"]]
    chosen = load(
        _members(job.checkpoint_dir / epochs.EPOCHS_DIR / epochs.checkpoint_file(best))[
            "adapter_model.safetensors"
        ]
    )
    final = load((job.model_dir / "adapter_model.safetensors").read_bytes())
    assert all(torch.equal(final[k], chosen[k]) for k in final)
    # The eval generations come from the selected weights too: they ran after the weights were put back.
    assert json.loads((job.output_dir / "progress.json").read_text())["selected_epoch"] == best


def test_early_stopping_needs_evaluation_rows(tmp_path: Path) -> None:
    stream = io.StringIO()
    hp = Hyperparameters(early_stopping_patience=2)
    end = _epoch_end(hp, tmp_path, "fp", (), lambda folder, entry: None, ProgressReporter(None, stream))
    assert end.patience is None
    assert "early stopping is off: the run has no evaluation rows" in stream.getvalue()


def _entry(epoch: int, valid_loss: float | None = None) -> dict[str, Any]:
    return {"epoch": epoch, "step": epoch * 2, "metrics": {"train_loss": 1.0, "valid_loss": valid_loss}}


def _write(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")


def test_store_keeps_the_last_three_and_the_protected_epoch(tmp_path: Path) -> None:
    store = epochs.EpochCheckpoints(tmp_path, "fp")
    for epoch in range(1, 7):
        store.save(_entry(epoch), _write, protect=2)
    assert [c["epoch"] for c in store.kept] == [2, 4, 5, 6]
    files = sorted(p.name for p in (tmp_path / epochs.EPOCHS_DIR).iterdir())
    assert files == sorted([epochs.INDEX_FILE, *(epochs.checkpoint_file(e) for e in (2, 4, 5, 6))])
    # Same job again (a resumed one): the index is read back; another job's folder is emptied.
    assert [c["epoch"] for c in epochs.EpochCheckpoints(tmp_path, "fp").kept] == [6, 5, 4, 2]
    assert epochs.EpochCheckpoints(tmp_path, "other").kept == []
    assert list((tmp_path / epochs.EPOCHS_DIR).iterdir()) == []


def test_patience_counts_epochs_since_the_best() -> None:
    history = [_entry(1, 2.0), _entry(2, 1.5), _entry(3, 1.5), _entry(4, 1.7)]
    assert epochs.best_epoch(history) == 2  # the earliest of equals
    assert epochs.patience_spent(history, 2) and not epochs.patience_spent(history, 3)
    assert epochs.best_epoch([_entry(1)]) is None and not epochs.patience_spent([_entry(1)], 1)
