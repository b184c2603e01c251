"""The built-in tiny base model: deterministic build, special tokens, template, cache behaviour."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tt_trainer import tiny


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()
    }


def test_two_builds_are_identical_bit_for_bit(tmp_path: Path, tiny_model_dir: Path) -> None:
    rebuilt = tiny.build(tmp_path / "again")
    assert _digests(rebuilt) == _digests(tiny_model_dir)
    assert {"model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"} <= set(
        _digests(rebuilt)
    )


def test_special_tokens_and_template(tokenizer: Any, tiny_model: Any) -> None:
    assert tokenizer.pad_token == "<|pad|>"
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert "{% generation %}" in tokenizer.chat_template
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|bos|><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    config = tiny_model.config
    assert config.max_position_embeddings == tiny.CONTEXT_LENGTH == 2048
    assert config.eos_token_id == tokenizer.eos_token_id
    assert config.initializer_range == 0.1
    n_params = sum(p.numel() for p in tiny_model.parameters())
    assert 300_000 < n_params < 600_000


def test_any_text_round_trips(tokenizer: Any) -> None:
    text = 'Ünïcode ✓ {"k": [1, 2.5e-3]} \t tabs\nnew lines 日本'
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_cache_is_reused_and_stale_builds_are_replaced(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    tiny.ensure_tiny_model(target)
    weights = target / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert tiny.ensure_tiny_model(target) == target
    assert weights.stat().st_mtime_ns == stamp  # not rebuilt

    marker = target / tiny.MARKER_FILE
    marker.write_text(json.dumps({"revision": "v0"}))
    tiny.ensure_tiny_model(target)
    assert json.loads(marker.read_text())["revision"] == tiny.TINY_REVISION
    assert not list(tmp_path.glob(".tiny-chat-build-*"))


def test_cli_builds_into_a_directory(tmp_path: Path, capsys: Any) -> None:
    assert tiny.main(["build", str(tmp_path / "out")]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["revision"] == tiny.TINY_REVISION
    assert tiny.is_built(tmp_path / "out")


def test_default_cache_honours_the_environment(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv(tiny.CACHE_ENV, str(tmp_path / "x"))
    assert tiny.default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv(tiny.CACHE_ENV)
    assert tiny.default_cache_dir() == Path.home() / ".cache" / "tuned-tensor" / "tiny-chat"
