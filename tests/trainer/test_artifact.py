"""The artifact tells what was trained: the continued adapter's shape, the epochs run, a clean tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.jobs import Job, child_job, run_in_process


@pytest.fixture(scope="module")
def continued(tmp_path_factory: pytest.TempPathFactory, parent_artifact: Path, tiny_model_dir: Path) -> Job:
    """3 steps of 8 rows over 16 rows (1.5 epochs) on the rank-8, alpha-16 parent, asking for 4 and 8."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TT_TINY_MODEL_CACHE", str(tiny_model_dir))
    try:
        job = child_job(
            tmp_path_factory.mktemp("continued"), parent_artifact, max_steps=3, lora_rank=4, lora_alpha=8
        )
        result = run_in_process(job)
        assert result.code == 0, result.stderr
        return job
    finally:
        mp.undo()


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_metrics_report_the_continued_adapters_rank_and_alpha(continued: Job) -> None:
    metrics = _json(continued.model_dir / "training-metrics.json")
    assert (metrics["hyperparameters"]["lora_rank"], metrics["hyperparameters"]["lora_alpha"]) == (8, 16)
    config = _json(continued.model_dir / "adapter_config.json")
    assert (config["r"], config["lora_alpha"]) == (8, 16)


def test_metrics_report_the_epochs_run_under_max_steps(continued: Job) -> None:
    metrics = _json(continued.model_dir / "training-metrics.json")
    assert (metrics["steps"], metrics["n_epochs"], metrics["training_rows"]) == (3, 1.5, 16)
    assert metrics["hyperparameters"]["n_epochs"] == 3  # the setting stays what was asked
    assert _json(continued.output_dir / "progress.json")["n_epochs"] == 1.5


def test_the_tokenizer_config_holds_no_loading_options(continued: Job) -> None:
    from transformers import AutoTokenizer

    config = _json(continued.model_dir / "tokenizer_config.json")
    assert not {"local_files_only", "is_local"} & set(config)
    assert config["eos_token"] == "<|im_end|>" and config["pad_token"] == "<|pad|>"
    tokenizer = AutoTokenizer.from_pretrained(continued.model_dir)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template
