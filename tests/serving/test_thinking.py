"""Serving a model with a thinking template (Qwen3.5's): prompts have thinking off, as in its evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tests.trainer import families
from tt_serve.runtime import ModelRuntime


def test_served_prompts_have_thinking_off(tmp_path: Path) -> None:
    from tt_trainer.tiny import ensure_tiny_model

    tokenizer = families.qwen3_5_tokenizer(ensure_tiny_model())
    families.build("qwen3.5", vocab=len(tokenizer)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "base_model.json").write_text(json.dumps({"id": "Qwen/Qwen3.5-4B", "revision": None}))
    runtime = ModelRuntime.load(None, base_model=str(tmp_path), device="cpu")
    messages = [{"role": "user", "content": "Describe item 3."}]
    prompt = runtime.tokenizer.decode(runtime.prompt_ids(messages))
    assert prompt.endswith("Describe item 3.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert runtime.generate(messages, max_tokens=2).prompt_tokens == len(runtime.prompt_ids(messages))
