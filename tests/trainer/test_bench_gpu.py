"""bench/trainer_gpu.py: every catalogue model's real shapes, a FLOP count, and a clean exit without a GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from tt_core.models.base_models import CATALOGUE
from tt_trainer.tiny import TINY_MODEL_ID

BENCH = Path(__file__).resolve().parents[2] / "bench" / "trainer_gpu.py"
# Published parameter counts of the text models (config.json dimensions, tied embeddings counted once).
PUBLISHED = {
    "meta-llama/Llama-3.2-3B-Instruct": 3.21e9,
    "microsoft/Phi-4-mini-instruct": 3.84e9,
    "ibm-granite/granite-3.3-2b-instruct": 2.53e9,
    "bigcode/starcoder2-3b": 3.03e9,
}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trainer_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _on_meta(bench: ModuleType, model_id: str) -> Any:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):  # the real shapes without allocating them
        return AutoModelForCausalLM.from_config(bench.model_config(model_id))


def test_every_catalogue_model_is_benchmarked(bench: ModuleType) -> None:
    assert set(bench.MODELS) == {m.id for m in CATALOGUE} - {TINY_MODEL_ID}


@pytest.mark.parametrize("model_id", [m.id for m in CATALOGUE if m.id != TINY_MODEL_ID])
def test_the_dimensions_are_the_catalogues(bench: ModuleType, model_id: str) -> None:
    from tt_trainer.architecture import head_dims

    recorded = getattr(next(m for m in CATALOGUE if m.id == model_id), "architecture", None)
    if recorded is None:
        pytest.skip("this catalogue records no dimensions")
    text = bench.model_config(model_id).get_text_config()
    built = (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads)
    assert built == (recorded.hidden_size, recorded.num_layers, recorded.attention_heads, recorded.kv_heads)
    assert (text.vocab_size, text.intermediate_size) == (recorded.vocab_size, recorded.intermediate_size)
    assert min(head_dims(text)) == recorded.head_dim


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_the_models_have_their_published_sizes(bench: ModuleType, model_id: str) -> None:
    assert bench.parameter_count(_on_meta(bench, model_id)) == pytest.approx(PUBLISHED[model_id], rel=0.01)


def test_the_hybrid_families_keep_what_sets_them_apart(bench: ModuleType) -> None:
    gemma = bench.model_config("google/gemma-4-E2B-it").get_text_config()
    assert gemma.num_kv_shared_layers == 20 and gemma.layer_types.count("full_attention") == 7
    qwen = bench.model_config("Qwen/Qwen3.5-4B").get_text_config()
    assert qwen.layer_types.count("linear_attention") == 24 and qwen.layer_types[-1] == "full_attention"
    # Gemma 4's global layers (head dim 512) never get flash-attn 2, whatever the machine.
    kinds = bench._layer_attention(gemma)
    assert {width for kind, width, _ in kinds if kind == "full_attention"} == {8 * 512}
    assert {window for kind, _, window in kinds if kind == "sliding_attention"} == {512}


def test_model_flops_of_one_row(bench: ModuleType) -> None:
    from tt_trainer.data import IGNORE_INDEX, TokenizedRow

    config = bench.model_config("meta-llama/Llama-3.2-3B-Instruct", smoke=True)
    model = bench.build_model(config, device=torch.device("cpu"), dtype=torch.float32)
    row = TokenizedRow(input_ids=[5] * 10, labels=[IGNORE_INDEX] * 6 + [5] * 4)
    d, layers, inter, q, kv = 64, 2, 128, 4 * 16, 2 * 16
    body = layers * (d * q + 2 * d * kv + q * d + 3 * d * inter)
    assert sum(i * o for i, o in bench.linear_shapes(model)) == body  # the lm_head is not a layer LoRA adapts
    attention = 3 * 4 * layers * q * (10 * 11 // 2)
    assert bench.model_flops(model, [row], lora_rank=0) == 10 * 4 * body + 4 * 4 * 512 * d + attention


def test_sliding_windows_and_linear_attention_count_what_they_compute(bench: ModuleType) -> None:
    assert bench._pairs(10, None) == bench._pairs(10, 10) == 55
    assert bench._pairs(10, 4) == 10 + 6 * 4  # the first 4 tokens see what is before them, the rest 4 each


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_a_gpu_it_says_so_and_exits_cleanly(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--out", str(tmp_path / "out.json")]) == 0
    assert capsys.readouterr().out.startswith("trainer_gpu: no CUDA GPU here")
    assert not (tmp_path / "out.json").exists()


def test_the_smoke_run_trains_each_family_with_the_trainers_choices(
    bench: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    models = ["meta-llama/Llama-3.2-3B-Instruct", "Qwen/Qwen3.5-2B"]
    argv = ["--smoke", "--steps", "1", "--out", str(out)]
    assert bench.main([*argv, *(a for m in models for a in ("--model", m))]) == 0
    results = json.loads(out.read_text())["results"]
    assert list(results) == models
    llama, qwen = results[models[0]], results[models[1]]
    assert llama["mode"] == "packed" and qwen["mode"] == "padded"  # linear attention: rows padded
    assert llama["attn_implementation"] == qwen["attn_implementation"] == "sdpa"  # on the CPU
    assert qwen["kernels_warning"] is None  # the kernels matter on CUDA only
    for r in results.values():
        assert r["tokens"] > 0 and r["tokens_per_second"] > 0 and r["model_tflops_per_second"] >= 0
