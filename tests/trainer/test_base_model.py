"""Base model sources: tiny-chat, the local Hugging Face cache, a local directory, the base_model channel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.jobs import Job, item_rows, run_in_process
from tt_trainer.base_model import choose_pad_id, context_length, resolve_base_model, stop_token_ids
from tt_trainer.errors import BaseModelError
from tt_trainer.tiny import TINY_MODEL_ID, TINY_REVISION

SHORT = {"batch_size": 4, "max_steps": 2, "max_seq_length": 100_000}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _fake_hub_cache(root: Path, repo_id: str, source: Path) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(source, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def _adapter_base(job: Job) -> str:
    return str(json.loads((job.model_dir / "adapter_config.json").read_text())["base_model_name_or_path"])


def test_tiny_chat_and_its_alias(tmp_path: Path, tiny_model_dir: Path) -> None:
    for name in (TINY_MODEL_ID, "Tiny-Chat"):
        source = resolve_base_model(name, None, staged_dir=None, scratch=tmp_path)
        assert (source.id, source.revision, source.path) == (TINY_MODEL_ID, TINY_REVISION, tiny_model_dir)


def test_a_hub_id_from_the_local_cache(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _fake_hub_cache(tmp_path / "hub", "acme/tiny-instruct", tiny_model_dir)
    job = Job(tmp_path / "job", {"base_model": "acme/tiny-instruct", **SHORT}).write(item_rows(8))
    result = run_in_process(job)
    assert result.code == 0, result.stderr
    assert result.of("data")[0]["max_seq_length"] == 2048  # clamped to the model's context length
    assert _adapter_base(job) == "acme/tiny-instruct"
    assert json.loads((job.model_dir / "base_model.json").read_text()) == {
        "id": "acme/tiny-instruct",
        "revision": COMMIT,
    }
    assert json.loads((job.model_dir / "adapter_config.json").read_text())["revision"] == COMMIT


def test_a_hub_id_missing_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(BaseModelError, match="not in the training machine's Hugging Face cache"):
        resolve_base_model("acme/tiny-instruct", None, staged_dir=None, scratch=tmp_path)


def test_weights_in_the_base_model_channel(tmp_path: Path, tiny_model_dir: Path) -> None:
    job = Job(tmp_path, {"base_model": "acme/tiny-instruct", "base_model_revision": "r1", **SHORT}).write(
        item_rows(8)
    )
    shutil.copytree(tiny_model_dir, job.channel("base_model") / "weights")  # one level down is found too
    result = run_in_process(job)
    assert result.code == 0, result.stderr
    assert _adapter_base(job) == "acme/tiny-instruct"
    assert json.loads((job.model_dir / "base_model.json").read_text()) == {
        "id": "acme/tiny-instruct",
        "revision": "r1",
    }


def test_a_local_directory_keeps_its_recorded_identity(tmp_path: Path, tiny_model_dir: Path) -> None:
    local = shutil.copytree(tiny_model_dir, tmp_path / "somewhere" / "my-model")
    source = resolve_base_model(str(local), None, staged_dir=None, scratch=tmp_path)
    assert (source.id, source.revision) == (TINY_MODEL_ID, TINY_REVISION)  # from the tiny-chat marker
    (local / "tiny_chat.json").unlink()
    (local / "base_model.json").write_text(json.dumps({"id": "acme/exported", "revision": "abc"}))
    assert resolve_base_model(str(local), None, staged_dir=None, scratch=tmp_path).id == "acme/exported"
    (local / "base_model.json").unlink()
    assert resolve_base_model(str(local), None, staged_dir=None, scratch=tmp_path).id == "my-model"


def test_a_channel_without_weights(tmp_path: Path) -> None:
    (tmp_path / "channel").mkdir()
    with pytest.raises(BaseModelError, match="The staged weights of base model acme/x hold no model") as info:
        resolve_base_model("acme/x", None, staged_dir=tmp_path / "channel", scratch=tmp_path)
    assert "channel" not in str(info.value) and "Stage the model's weights again" in str(info.value)


class _Tok:
    """Just enough of a tokenizer for the pad choice."""

    def __init__(self, pad: int | None, eos: int, added: dict[str, int], unk: int | None = None) -> None:
        self.pad_token_id, self.eos_token_id, self.unk_token_id = pad, eos, unk
        self._vocab = added
        self.all_special_tokens: list[str] = []
        self.pad_token: str | None = None

    def get_added_vocab(self) -> dict[str, int]:
        return self._vocab

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._vocab[token]


def test_pad_is_never_the_end_of_turn_token() -> None:
    llama_like = _Tok(pad=None, eos=9, added={"<|eot_id|>": 9, "<|finetune_right_pad_id|>": 4})
    assert choose_pad_id(llama_like) == 4 and llama_like.pad_token == "<|finetune_right_pad_id|>"
    assert choose_pad_id(_Tok(pad=9, eos=9, added={}, unk=0)) == 0
    assert choose_pad_id(_Tok(pad=2, eos=9, added={})) == 2


def test_stop_tokens_include_every_configured_eos(tokenizer: Any, tiny_model: Any) -> None:
    assert stop_token_ids(tokenizer, tiny_model) == [tokenizer.eos_token_id]
    tiny_model.generation_config.eos_token_id = [tokenizer.eos_token_id, 2]
    assert stop_token_ids(tokenizer, tiny_model) == sorted({tokenizer.eos_token_id, 2})
    assert context_length(tiny_model.config) == 2048
