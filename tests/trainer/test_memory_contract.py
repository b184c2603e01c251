"""The memory plan (tt_core) and the trainer agree: loss chunk, micro-batch, hyperparameters, tiny-chat."""

from __future__ import annotations

import json
from pathlib import Path

from tt_core.models.base_models import CATALOGUE
from tt_core.runs import memory_plan
from tt_trainer import loss
from tt_trainer.config import parse_hyperparameters


def test_the_plan_counts_the_trainers_loss_chunk_and_micro_batch() -> None:
    assert memory_plan.CHUNK_LOGIT_ELEMENTS == loss.CHUNK_LOGIT_ELEMENTS
    largest, _ = parse_hyperparameters({"batch_size": 4096})
    assert largest.effective_micro_batch_size == memory_plan.DEFAULT_MICRO_BATCH_SIZE


def test_the_trainer_takes_the_plans_hyperparameters() -> None:
    arch = memory_plan.architecture_of("google/gemma-4-E4B-it")
    assert arch is not None
    plan = memory_plan.plan_memory(
        arch, gpu_memory_gb=24, max_seq_length=2048, micro_batch_size=4, lora_rank=16
    )
    hp, ignored = parse_hyperparameters(plan.trainer_hyperparameters())
    assert ignored == []
    assert hp.micro_batch_tokens == plan.micro_batch_tokens
    assert hp.gradient_checkpointing is plan.gradient_checkpointing is True


def test_the_catalogue_records_tiny_chats_built_dimensions(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    arch = next(m.architecture for m in CATALOGUE if m.id == "tunedtensor/tiny-chat")
    assert (arch.hidden_size, arch.num_layers, arch.intermediate_size, arch.vocab_size) == (
        config["hidden_size"],
        config["num_hidden_layers"],
        config["intermediate_size"],
        config["vocab_size"],
    )
    assert (arch.attention_heads, arch.kv_heads, arch.tied_embeddings) == (
        config["num_attention_heads"],
        config["num_key_value_heads"],
        config["tie_word_embeddings"],
    )
    assert arch.head_dim == config.get("head_dim", config["hidden_size"] // config["num_attention_heads"])
