"""Eval generation is purely greedy: whatever the model's generation_config asks, it equals an argmax loop."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.trainer.jobs import item_rows
from tt_trainer.data import ChatEncoder
from tt_trainer.predict import Generator

# What hub models ship in generation_config.json (Qwen2.5-Instruct: repetition_penalty 1.05-1.1, top_k 20).
NOT_GREEDY = {
    "repetition_penalty": 1.3,
    "top_k": 5,
    "no_repeat_ngram_size": 2,
    "min_new_tokens": 6,
    "do_sample": True,
    "temperature": 0.7,
}


def argmax_loop(model: Any, prompt_ids: list[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
    """The definition of greedy: the whole sequence again at every step, no cache, no processor."""
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = int(model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].argmax())
            ids.append(token)
            if token in stop_ids:
                break
    return ids[len(prompt_ids) :]


@pytest.fixture
def configured_model(tiny_model: Any) -> Any:
    for name, value in NOT_GREEDY.items():
        setattr(tiny_model.generation_config, name, value)
    return tiny_model.eval()


def _prompts(encoder: ChatEncoder, n: int = 8) -> list[list[int]]:
    return [encoder.prompt_ids(row["messages"][:2]) for row in item_rows(n)]


def test_generations_equal_an_argmax_loop_whatever_the_generation_config(
    configured_model: Any, encoder: ChatEncoder, tokenizer: Any
) -> None:
    stop = {tokenizer.eos_token_id}
    generate = Generator(configured_model, encoder, stop_ids=sorted(stop), pad_id=tokenizer.pad_token_id)
    for prompt in _prompts(encoder):
        expected = argmax_loop(configured_model, prompt, 12, stop)
        got = generate(prompt, 12)
        finished = expected[-1] in stop
        assert got["output"] == encoder.decode(expected[:-1] if finished else expected)
        assert (got["output_tokens"], got["finished"]) == (len(expected), finished)


def test_the_model_config_really_changes_generate(configured_model: Any, encoder: ChatEncoder) -> None:
    """The test above has teeth: transformers' generate() applies these settings even with do_sample=False."""
    from transformers import GenerationConfig

    changed = 0
    for prompt in _prompts(encoder):
        ids = torch.tensor([prompt])
        config = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=12, eos_token_id=[-1])
        with torch.no_grad():
            out = configured_model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
            )
        changed += out[0, len(prompt) :].tolist() != argmax_loop(configured_model, prompt, 12, set())
    assert changed >= 4


def test_a_stop_token_ends_the_generation(tiny_model: Any, encoder: ChatEncoder, tokenizer: Any) -> None:
    prompt = _prompts(encoder, 1)[0]
    first = argmax_loop(tiny_model, prompt, 1, set())[0]
    generate = Generator(tiny_model.eval(), encoder, stop_ids=[first], pad_id=tokenizer.pad_token_id)
    assert generate(prompt, 12) | {"latency_ms": 0} == {
        "output": "",
        "latency_ms": 0,
        "output_tokens": 1,
        "finished": True,
    }
    assert generate(prompt, 0)["output_tokens"] == 0
