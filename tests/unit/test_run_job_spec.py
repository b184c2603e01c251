"""The training job a run asks for: hyperparameters as strings, channels, limits from the settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FixedClock, SequentialIds
from tt_core.models.runs import Hyperparameters, RunRecord
from tt_core.services.run_workflow import RunWorkflowService
from tt_core.settings import Settings

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def _run(base_model: str) -> RunRecord:
    hp = Hyperparameters(
        n_epochs=3, learning_rate=2e-4, batch_size=8, lora_rank=16, lora_alpha=32, lora_dropout=0.05,
        max_seq_length=2048, long_examples="truncate", max_eval_examples=50, max_test_eval_examples=50,
        max_output_tokens=256, eval_reserved_output_tokens=64, augment=True, use_llm_judge=True,
    )  # fmt: skip
    return RunRecord(
        id="r1", account_id="a1", behavior_spec_id="s1", run_number=1, status="training",
        current_stage="training_queued", stage_label="Waiting for training capacity", progress_pct=20,
        status_message="", spec_snapshot={}, base_model=base_model, hyperparameters=hp,
        fine_tune_job_id="job", started_at=NOW, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def _service(**settings: Any) -> RunWorkflowService:
    config = Settings(**settings)
    none: Any = None
    return RunWorkflowService(
        none, none, none, none, none, none, FixedClock(), SequentialIds(), config, bucket="b"
    )


@pytest.mark.parametrize(
    ("mode", "base_model", "weights"),
    [
        ("aws", "meta-llama/Llama-3.2-3B-Instruct", "base-models/meta-llama/Llama-3.2-3B-Instruct/"),
        ("aws", "tunedtensor/tiny-chat", None),  # the trainer builds it
        ("local", "meta-llama/Llama-3.2-3B-Instruct", None),  # the machine's Hugging Face cache
    ],
)
def test_aws_jobs_read_the_staged_base_weights(mode: str, base_model: str, weights: str | None) -> None:
    job = _service(mode=mode, run_timeout_hours=2).job_spec(_run(base_model))
    assert job.channels.get("base_model") == weights
    assert set(job.channels) - {"base_model"} == {"train", "eval", "spec"}
    assert job.channels["train"] == "accounts/a1/runs/r1/input/train/"
    assert job.hyperparameters["base_model"] == base_model and job.hyperparameters["n_epochs"] == "3"
    assert job.max_runtime_seconds == 7200 and job.output_prefix == "accounts/a1/runs/r1/training"
    assert "augment" not in job.hyperparameters  # workflow-only settings stay with the workflow


def test_aws_jobs_carry_the_memory_plan_of_their_profiles_gpu() -> None:
    from tt_core.runs.memory_plan import plan_for_job

    settings = Settings(mode="aws")
    base = "Qwen/Qwen3.5-4B"
    job = _service(mode="aws").job_spec(_run(base))
    plan = plan_for_job(
        base,
        settings.training_profile(base),
        max_seq_length=2048,
        batch_size=8,
        lora_rank=16,
        lora_dropout=0.05,
    )
    assert plan is not None and plan.fits
    assert job.hyperparameters["micro_batch_tokens"] == str(plan.micro_batch_tokens)
    assert job.hyperparameters["gradient_checkpointing"] in ("true", "false")
    # The local stack trains on this machine, not on the profile's GPU; tiny-chat's CPU profile has no plan.
    assert "micro_batch_tokens" not in _service(mode="local").job_spec(_run(base)).hyperparameters
    assert (
        "micro_batch_tokens"
        not in _service(mode="aws").job_spec(_run("tunedtensor/tiny-chat")).hyperparameters
    )
