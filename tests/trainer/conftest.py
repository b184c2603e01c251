"""Trainer test fixtures: the tiny model is built once per session into a temporary cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tt_trainer.tiny import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("tiny-cache") / "tiny-chat")


@pytest.fixture(autouse=True)
def _tiny_cache(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Every job in these tests resolves tunedtensor/tiny-chat to the session's build, never ~/.cache.
    monkeypatch.setenv("TT_TINY_MODEL_CACHE", str(tiny_model_dir))
    for name in list(os.environ):
        if name.startswith(("SM_", "TT_SM_ROOT", "TT_CHECKPOINT_DIR", "TT_FAILURE_FILE")):
            monkeypatch.delenv(name)
    yield


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def encoder(tokenizer: Any) -> Any:
    from tt_trainer.data import ChatEncoder

    return ChatEncoder(tokenizer)


@pytest.fixture
def tiny_model(tiny_model_dir: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def parent_artifact(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A trained adapter (rank 8, alpha 16) to continue: the model directory of a finished job."""
    from tests.trainer.jobs import Job, item_rows, run_in_process

    mp = pytest.MonkeyPatch()
    mp.setenv("TT_TINY_MODEL_CACHE", str(tiny_model_dir))
    try:
        rows = item_rows(16)
        hp = {"batch_size": 8, "learning_rate": 5e-3, "max_steps": 40, "lora_rank": 8, "lora_alpha": 16}
        job = Job(tmp_path_factory.mktemp("parent"), hp).write(rows)
        assert run_in_process(job).code == 0
        return job.model_dir
    finally:
        mp.undo()
