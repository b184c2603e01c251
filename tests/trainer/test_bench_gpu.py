"""bench/trainer_gpu.py: real catalogue shapes, a FLOP count, and a clean exit where there is no GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench" / "trainer_gpu.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trainer_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_architectures_have_their_published_sizes(bench: ModuleType) -> None:
    assert bench.parameter_count(bench.llama_config("llama-3.2-3b")) == pytest.approx(3.21e9, rel=0.01)
    assert bench.parameter_count(bench.llama_config("llama-3.2-1b")) == pytest.approx(1.24e9, rel=0.01)


def test_model_flops_of_one_row(bench: ModuleType) -> None:
    from tt_trainer.data import IGNORE_INDEX, TokenizedRow

    config = bench.llama_config("smoke")
    row = TokenizedRow(input_ids=[5] * 10, labels=[IGNORE_INDEX] * 6 + [5] * 4)
    body = config.num_hidden_layers * sum(i * o for i, o in bench.linear_shapes(config))
    attention = 6 * config.num_hidden_layers * 64 * 10 * 11
    assert bench.model_flops(config, [row], lora_rank=0) == 10 * 4 * body + 4 * 4 * 512 * 64 + attention


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_a_gpu_it_says_so_and_exits_cleanly(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--out", str(tmp_path / "out.json")]) == 0
    assert capsys.readouterr().out.startswith("trainer_gpu: no CUDA GPU here")
    assert not (tmp_path / "out.json").exists()


def test_the_smoke_run_measures_both_modes(bench: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert bench.main(["--smoke", "--steps", "1", "--repeats", "1", "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"padded", "packed"}
    assert results["packed"]["tokens"] == results["padded"]["tokens"] > 0
    assert results["packed"]["padding_share"] < results["padded"]["padding_share"]
    assert all(r["tokens_per_second"] > 0 and r["model_tflops_per_second"] >= 0 for r in results.values())
