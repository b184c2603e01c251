"""The GPU memory plan: every catalogue model fits its profile, checkpointing and token caps when needed."""

from __future__ import annotations

import dataclasses

import pytest

from tt_core.models.base_models import CATALOGUE, ModelArchitecture
from tt_core.runs.compiler import Example
from tt_core.runs.estimation import estimate_run
from tt_core.runs.memory_plan import (
    HEADROOM,
    activation_bytes,
    architecture_of,
    lora_parameters,
    memory_breakdown,
    plan_for_job,
    plan_memory,
)
from tt_core.schema import DEFAULT_TRAINING_PROFILES, LOCAL_TRAINING_PROFILE, TrainingProfile
from tt_core.settings import Settings

GB = 10**9
WORST_CASE = {"max_seq_length": 2048, "batch_size": 8, "lora_rank": 16}  # 4 sequences per micro-batch
QWEN_4B = "Qwen/Qwen3.5-4B"
LLAMA_3B = "meta-llama/Llama-3.2-3B-Instruct"


def _arch(model_id: str) -> ModelArchitecture:
    arch = architecture_of(model_id)
    assert arch is not None
    return arch


@pytest.mark.parametrize("model_id", [m.id for m in CATALOGUE])
def test_every_catalogue_model_fits_its_profile_at_the_worst_case(model_id: str) -> None:
    profile = Settings(mode="aws").training_profile(model_id)
    plan = plan_for_job(model_id, profile, **WORST_CASE)
    if not profile.gpus:  # tiny-chat trains on a CPU instance: nothing to plan on a GPU
        assert plan is None and model_id == "tunedtensor/tiny-chat"
        return
    assert plan is not None and plan.fits
    assert plan.headroom >= HEADROOM
    assert plan.memory.total <= (1 - HEADROOM) * plan.gpu_memory_bytes


def test_gpu_profiles_record_their_gpus_and_memory() -> None:
    for name, profile in DEFAULT_TRAINING_PROFILES.items():
        if profile.instance_type.startswith(("ml.g5.", "ml.g6e.")):
            assert profile.gpus == 1 and profile.gpu_memory_gb in (24, 48), name
    # ml.g5.2xlarge has the same single A10G as ml.g5.xlarge: no profile pays more for the same GPU.
    assert all(p.instance_type != "ml.g5.2xlarge" for p in DEFAULT_TRAINING_PROFILES.values())
    assert DEFAULT_TRAINING_PROFILES["google/gemma-4-E4B-it"].instance_type == "ml.g6e.xlarge"
    assert LOCAL_TRAINING_PROFILE.gpus == 0


def test_a_4b_model_at_2048_tokens_needs_checkpointing_or_a_cap_on_24_gb() -> None:
    arch = _arch(QWEN_4B)
    plain = memory_breakdown(
        arch, sequences=4, max_seq_length=2048, lora_rank=16, gradient_checkpointing=False
    )
    assert plain.total > (1 - HEADROOM) * 24 * GB
    plan = plan_memory(arch, gpu_memory_gb=24, max_seq_length=2048, micro_batch_size=4, lora_rank=16)
    assert plan.fits and (plan.gradient_checkpointing or plan.micro_batch_tokens < 4 * 2048)
    assert plan.memory.total < plain.total


def test_a_micro_batch_that_fits_is_not_checkpointed() -> None:
    plan = plan_memory(
        _arch(LLAMA_3B), gpu_memory_gb=80, max_seq_length=2048, micro_batch_size=4, lora_rank=16
    )
    assert (plan.fits, plan.gradient_checkpointing, plan.micro_batch_tokens) == (True, False, 4 * 2048)


def test_the_cap_shrinks_when_checkpointing_is_not_enough() -> None:
    arch = _arch("google/gemma-4-E4B-it")
    on_a10g = plan_memory(arch, gpu_memory_gb=24, max_seq_length=2048, micro_batch_size=4, lora_rank=16)
    assert on_a10g.fits and on_a10g.gradient_checkpointing and on_a10g.micro_batch_sequences < 4
    assert on_a10g.trainer_hyperparameters() == {
        "micro_batch_tokens": str(on_a10g.micro_batch_sequences * 2048),
        "gradient_checkpointing": "true",
    }


def test_a_model_too_large_for_the_gpu_does_not_fit() -> None:
    plan = plan_memory(
        _arch("google/gemma-4-E4B-it"),
        gpu_memory_gb=16,
        max_seq_length=2048,
        micro_batch_size=4,
        lora_rank=16,
    )
    assert not plan.fits and plan.micro_batch_sequences == 1 and plan.gradient_checkpointing
    assert plan.headroom < HEADROOM


def _with_vocabulary(arch: ModelArchitecture, vocab: int) -> ModelArchitecture:
    tables = 1 if arch.tied_embeddings else 2
    parameters = arch.parameters + (vocab - arch.vocab_size) * arch.hidden_size * tables
    return dataclasses.replace(arch, vocab_size=vocab, parameters=parameters)


def test_the_token_cap_shrinks_with_a_larger_vocabulary() -> None:
    base = _arch(LLAMA_3B)
    caps = []
    for vocab in (32_000, 128_256, 262_144, 1_000_000):
        plan = plan_memory(
            _with_vocabulary(base, vocab),
            gpu_memory_gb=24,
            max_seq_length=256,
            micro_batch_size=256,
            lora_rank=16,
        )
        assert plan.fits and plan.gradient_checkpointing
        caps.append(plan.micro_batch_tokens)
    assert caps == sorted(caps, reverse=True) and caps[0] > caps[-1]


def test_checkpointing_keeps_a_fraction_of_the_activations() -> None:
    arch = _arch(LLAMA_3B)
    sizes = {
        checkpointing: activation_bytes(
            arch, sequences=4, max_seq_length=2048, gradient_checkpointing=checkpointing
        )
        for checkpointing in (False, True)
    }
    assert sizes[True] < sizes[False] / 5


def test_lora_parameters_match_peft_for_llama_3_2_3b() -> None:
    # r × (in + out) per adapted linear: q 3072+3072, k and v 3072+1024, o 3072+3072, gate and up 3072+8192,
    # down 8192+3072 → 54,272 × 16 per layer, 28 layers (what peft reports for all-linear r=16).
    assert lora_parameters(_arch(LLAMA_3B), 16) == 54_272 * 16 * 28 == 24_313_856


def test_the_loss_never_holds_the_logits_of_every_token() -> None:
    arch = _arch(QWEN_4B)
    memory = memory_breakdown(
        arch, sequences=4, max_seq_length=2048, lora_rank=16, gradient_checkpointing=True
    )
    full_logits_fp32 = 4 * 2048 * arch.vocab_size * 4
    assert memory.loss < full_logits_fp32 / 4


def test_no_plan_without_a_gpu_or_for_an_unknown_model() -> None:
    assert plan_for_job(LLAMA_3B, LOCAL_TRAINING_PROFILE, **WORST_CASE) is None
    assert plan_for_job("acme/model", DEFAULT_TRAINING_PROFILES["default"], **WORST_CASE) is None
    unknown_memory = TrainingProfile(instance_type="ml.g6.xlarge", hourly_usd=0.805, tokens_per_second=2000)
    assert plan_for_job(LLAMA_3B, unknown_memory, **WORST_CASE) is None


def test_every_catalogue_model_records_its_dimensions() -> None:
    for model in CATALOGUE:
        arch = model.architecture
        assert arch.attention_heads % arch.kv_heads == 0, model.id
        assert arch.parameters > arch.vocab_size * arch.hidden_size, model.id  # more than the embeddings
        assert arch.wide_mlp_layers <= arch.num_layers and arch.wide_head_layers <= arch.num_layers


def test_the_estimate_counts_every_gpu_it_pays_for() -> None:
    rows = [Example("a" * 2_000_000, "b" * 2_000_000)]  # 1,000,000 tokens

    def minutes(gpus: int) -> float:
        profile = TrainingProfile(
            instance_type="ml.g5.12xlarge",
            hourly_usd=6.0,
            tokens_per_second=1000,
            startup_minutes=0,
            gpus=gpus,
        )
        estimate = estimate_run(
            training_rows=rows,
            system_prompt="",
            augment=False,
            n_epochs=1,
            profile=profile,
            matched_rates=(),
            all_rates=(),
        )
        return estimate.duration.estimated_minutes

    assert minutes(1) == pytest.approx(1_000_000 / 1000 / 60, abs=0.05)
    assert minutes(4) == pytest.approx(minutes(1) / 4, abs=0.05)
