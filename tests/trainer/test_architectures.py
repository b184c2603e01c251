"""Each catalogue family: packed rows never leak into each other; greedy decoding with a cache is exact."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer import families
from tests.trainer.jobs import Job, item_rows, run_in_process
from tests.trainer.test_generation import argmax_loop
from tt_trainer.config import Hyperparameters
from tt_trainer.data import IGNORE_INDEX, TokenizedRow, packed_batch, padded_batch
from tt_trainer.predict import greedy_decode
from tt_trainer.progress import ProgressReporter
from tt_trainer.train import (
    loss_sum,
    model_inputs,
    packing_blocker,
    settle_packing,
    uses_flash_attention,
)

FAMILIES = [*families.CONFIGS, "tiny-chat"]
# Where packing stays on (and keeps its speed-up); Qwen3.5's linear-attention layers are padded instead.
PACKED = {"gemma-4", "llama-3.2", "phi-4-mini", "granite-3.3", "starcoder2", "tiny-chat"}
LENGTHS = (23, 11, 17, 9)


@pytest.fixture(scope="module")
def models(tiny_model_dir: Path) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    built = {family: families.build(family) for family in families.CONFIGS}
    torch.manual_seed(0)
    built["tiny-chat"] = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return built


def _rows(vocab: int) -> list[TokenizedRow]:
    generator = torch.Generator().manual_seed(1)
    rows = []
    for n in LENGTHS:
        ids = torch.randint(3, vocab, (n,), generator=generator).tolist()
        rows.append(
            TokenizedRow(input_ids=ids, labels=[IGNORE_INDEX, *ids[1:]])
        )  # as the trainer labels rows
    return rows


def _vocab(model: Any) -> int:
    return min(int(model.config.get_text_config().vocab_size), families.VOCAB)


def _alone(model: Any, row: TokenizedRow) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([row.input_ids]), use_cache=False).logits[0]


def _in_batches(
    model: Any, rows: list[TokenizedRow], *, packing: bool, boundaries: bool
) -> list[torch.Tensor]:
    """Each row's logits from one micro-batch laid out as the trainer lays it out: two packed sequences of two
    rows each, or all rows padded."""
    if packing:
        batch = packed_batch([rows[:2], rows[2:]], pad_id=0)
        with torch.no_grad():
            logits = model(**model_inputs(batch, boundaries=boundaries)).logits
        a, b, c, d = (len(r) for r in rows)
        return [logits[0, :a], logits[0, a : a + b], logits[1, :c], logits[1, c : c + d]]
    batch = padded_batch(rows, pad_id=0)
    with torch.no_grad():
        logits = model(**model_inputs(batch)).logits
    return [logits[i, : len(r)] for i, r in enumerate(rows)]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_row_in_a_batch_equals_the_row_alone(family: str, models: dict[str, Any]) -> None:
    model = models[family]
    hp = settle_packing(Hyperparameters(), model.config, ProgressReporter(None, io.StringIO()))
    assert hp.packing is (family in PACKED)
    rows = _rows(_vocab(model))
    together = _in_batches(model, rows, packing=hp.packing, boundaries=uses_flash_attention(model))
    for row, logits in zip(rows, together, strict=True):
        torch.testing.assert_close(logits, _alone(model, row), rtol=0, atol=1e-4)


def test_packing_would_leak_across_rows_through_linear_attention(models: dict[str, Any]) -> None:
    """Why Qwen3.5 is padded: its Gated DeltaNet layers carry state from one packed row into the next."""
    model = models["qwen3.5"]
    rows = _rows(_vocab(model))
    packed = _in_batches(model, rows, packing=True, boundaries=False)
    assert (packed[1] - _alone(model, rows[1])).abs().max() > 1e-3
    assert "linear_attention" in (packing_blocker(model.config) or "")


def test_packing_blockers_by_layer_type() -> None:
    from transformers import LlamaConfig

    assert packing_blocker(LlamaConfig()) is None
    gated = LlamaConfig(num_hidden_layers=2, layer_types=["full_attention", "sliding_attention"])
    assert packing_blocker(gated) is None
    hybrid = LlamaConfig()
    hybrid.layers_block_type = ["mamba", "attention"]
    assert packing_blocker(hybrid) == "its mamba layers would carry state from one packed row into the next"


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_decoding_with_a_cache_equals_an_argmax_loop(family: str, models: dict[str, Any]) -> None:
    model = models[family]
    prompt = _rows(_vocab(model))[0].input_ids
    assert greedy_decode(model, prompt, 10, set()) == argmax_loop(model, prompt, 10, set())


# ------------------------------------------------------------------------------------------- flash attention


def reference_flash_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    cu_seq_lens_q: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """What flash attention computes, on CPU: without cu_seq_lens each batch row is one causal sequence (flash
    finds packed rows in position_ids only at batch size 1); with them, every segment is its own sequence."""
    heads = query.shape[1]
    key = key.repeat_interleave(heads // key.shape[1], dim=1)
    value = value.repeat_interleave(heads // value.shape[1], dim=1)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if cu_seq_lens_q is None:
        out = sdpa(query, key, value, is_causal=True, scale=scaling)
        return out.transpose(1, 2).contiguous(), None
    batch, _, length, dim = query.shape
    q, k, v = (
        x.transpose(1, 2).reshape(batch * length, heads, dim).transpose(0, 1) for x in (query, key, value)
    )
    bounds = cu_seq_lens_q.tolist()
    parts = [
        sdpa(q[:, a:b], k[:, a:b], v[:, a:b], is_causal=True, scale=scaling)
        for a, b in itertools.pairwise(bounds)
    ]
    out = torch.cat(parts, dim=1).transpose(0, 1).reshape(batch, length, heads, dim)
    return out, None


@pytest.fixture
def flash_model() -> Any:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

    AttentionInterface.register("flash_reference", reference_flash_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register("flash_reference", flash_attention_mask)
    model = families.build("llama-3.2")
    # Set on the config: set_attn_implementation would look for a flash kernel package to load.
    model.config._attn_implementation = "flash_reference"
    return model


def test_flash_attention_gets_the_row_boundaries_of_several_packed_sequences(flash_model: Any) -> None:
    assert uses_flash_attention(flash_model)
    rows = _rows(families.VOCAB)
    alone = [_alone(flash_model, row) for row in rows]
    leaky = _in_batches(flash_model, rows, packing=True, boundaries=False)
    assert (leaky[1] - alone[1]).abs().max() > 1e-3  # without boundaries the second row sees the first
    for got, expected in zip(
        _in_batches(flash_model, rows, packing=True, boundaries=True), alone, strict=True
    ):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    # The training loss passes them by itself: packed under flash attention = padded.
    with torch.no_grad():
        packed = loss_sum(flash_model, packed_batch([rows[:2], rows[2:]], pad_id=0))
        padded = loss_sum(flash_model, padded_batch(rows, pad_id=0))
    assert float(packed) == pytest.approx(float(padded), rel=1e-5)


# ------------------------------------------------------------------------------------------- a whole job


def test_a_job_on_a_hybrid_model_pads_its_rows_with_a_warning(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    base = tmp_path / "qwen3.5"
    model = families.build("qwen3.5", vocab=len(AutoTokenizer.from_pretrained(tiny_model_dir)))
    model.save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(base)
    (base / "base_model.json").write_text(json.dumps({"id": "Qwen/Qwen3.5-2B", "revision": None}))
    job = Job(tmp_path / "job", {"base_model": str(base), "batch_size": 4, "max_steps": 2}).write(
        item_rows(8)
    )
    result = run_in_process(job)
    assert result.code == 0, result.stderr
    assert result.of("warning") == [
        {
            "event": "warning",
            "message": "packing is off for this base model: its linear_attention layers would carry state "
            "from one packed row into the next; rows are padded instead",
        }
    ]
    assert result.of("model")[0]["base_model"] == "Qwen/Qwen3.5-2B"
    metrics = json.loads((job.model_dir / "training-metrics.json").read_text())
    assert metrics["hyperparameters"]["packing"] is False
