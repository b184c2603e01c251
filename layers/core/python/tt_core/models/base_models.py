"""The base-model catalogue (PRODUCT.md §5) and alias canonicalisation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelArchitecture:
    """A base model's dimensions (of its language model, for multimodal ones): what the memory plan needs."""

    hidden_size: int
    num_layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int
    # Every weight the trainer loads onto the GPU, vision and audio towers included.
    parameters: int
    tied_embeddings: bool
    # StarCoder2's MLP is c_fc → gelu → c_proj (two matrices); the others are gated (three).
    gated_mlp: bool = True
    # Gemma 4 E2B's KV-sharing layers have an MLP of twice intermediate_size (use_double_wide_mlp).
    wide_mlp_layers: int = 0
    # Gemma 4's per-layer embeddings: this many extra inputs per token and layer.
    per_layer_input_size: int = 0
    # Layers whose attention heads are wider than fused attention kernels take (Gemma 4's global layers,
    # global_head_dim 512): PyTorch's sdpa runs its math kernel there, which keeps the S² attention scores.
    wide_head_layers: int = 0
    # Granite divides its logits by logits_scaling; Gemma caps them with final_logit_softcapping.
    logits_scaling: float | None = None
    final_logit_softcapping: float | None = None


@dataclass(frozen=True)
class BaseModelInfo:
    id: str
    context_length: int
    architecture: ModelArchitecture

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]


# Dimensions from each model's published config.json on the Hugging Face Hub (text_config of the multimodal
# Gemma 4 and Qwen3.5 configs). Parameter counts: transformers' count of a model built from that config on the
# meta device; where a vision or audio tower's config was not at hand (Gemma 4: the model cards' totals "with
# embeddings"; Qwen3.5: its vision tower) the total is rounded up to 0.1 B.
CATALOGUE: tuple[BaseModelInfo, ...] = (
    BaseModelInfo(
        "google/gemma-4-E2B-it",
        128_000,
        ModelArchitecture(
            hidden_size=1536,
            num_layers=35,
            attention_heads=8,
            kv_heads=1,
            head_dim=256,
            vocab_size=262_144,
            intermediate_size=6144,
            parameters=5_100_000_000,
            tied_embeddings=True,
            wide_mlp_layers=20,
            per_layer_input_size=256,
            wide_head_layers=7,
            final_logit_softcapping=30.0,
        ),
    ),
    BaseModelInfo(
        "google/gemma-4-E4B-it",
        128_000,
        ModelArchitecture(
            hidden_size=2560,
            num_layers=42,
            attention_heads=8,
            kv_heads=2,
            head_dim=256,
            vocab_size=262_144,
            intermediate_size=10_240,
            parameters=8_000_000_000,
            tied_embeddings=True,
            per_layer_input_size=256,
            wide_head_layers=7,
            final_logit_softcapping=30.0,
        ),
    ),
    BaseModelInfo(
        "Qwen/Qwen3.5-2B",
        131_072,
        ModelArchitecture(
            hidden_size=2048,
            num_layers=24,
            attention_heads=8,
            kv_heads=2,
            head_dim=256,
            vocab_size=248_320,
            intermediate_size=6144,
            parameters=2_300_000_000,
            tied_embeddings=True,
        ),
    ),
    BaseModelInfo(
        "Qwen/Qwen3.5-4B",
        262_144,
        ModelArchitecture(
            hidden_size=2560,
            num_layers=32,
            attention_heads=16,
            kv_heads=4,
            head_dim=256,
            vocab_size=248_320,
            intermediate_size=9216,
            parameters=4_700_000_000,
            tied_embeddings=True,
        ),
    ),
    BaseModelInfo(
        "meta-llama/Llama-3.2-3B-Instruct",
        128_000,
        ModelArchitecture(
            hidden_size=3072,
            num_layers=28,
            attention_heads=24,
            kv_heads=8,
            head_dim=128,
            vocab_size=128_256,
            intermediate_size=8192,
            parameters=3_212_749_824,
            tied_embeddings=True,
        ),
    ),
    BaseModelInfo(
        "microsoft/Phi-4-mini-instruct",
        128_000,
        ModelArchitecture(
            hidden_size=3072,
            num_layers=32,
            attention_heads=24,
            kv_heads=8,
            head_dim=128,
            vocab_size=200_064,
            intermediate_size=8192,
            parameters=3_836_021_760,
            tied_embeddings=True,
        ),
    ),
    BaseModelInfo(
        "ibm-granite/granite-3.3-2b-instruct",
        128_000,
        ModelArchitecture(
            hidden_size=2048,
            num_layers=40,
            attention_heads=32,
            kv_heads=8,
            head_dim=64,
            vocab_size=49_159,
            intermediate_size=8192,
            parameters=2_533_539_840,
            tied_embeddings=True,
            logits_scaling=8.0,
        ),
    ),
    BaseModelInfo(
        "bigcode/starcoder2-3b",
        16_384,
        ModelArchitecture(
            hidden_size=3072,
            num_layers=30,
            attention_heads=24,
            kv_heads=2,
            head_dim=128,
            vocab_size=49_152,
            intermediate_size=12_288,
            parameters=3_030_371_328,
            tied_embeddings=True,
            gated_mlp=False,
        ),
    ),
    # The project's own model (tt_trainer.tiny): its built config.json.
    BaseModelInfo(
        "tunedtensor/tiny-chat",
        2_048,
        ModelArchitecture(
            hidden_size=128,
            num_layers=2,
            attention_heads=4,
            kv_heads=2,
            head_dim=32,
            vocab_size=1024,
            intermediate_size=256,
            parameters=426_624,
            tied_embeddings=True,
        ),
    ),
)
CANONICAL_IDS: tuple[str, ...] = tuple(model.id for model in CATALOGUE)

_EXTRA_ALIASES = {
    "qwen/qwen3.5-2b-base": "Qwen/Qwen3.5-2B",
    "qwen/qwen3.5-4b-base": "Qwen/Qwen3.5-4B",
    "google/gemma-4-e2b": "google/gemma-4-E2B-it",
    "google/gemma-4-e4b": "google/gemma-4-E4B-it",
    "meta-llama/llama-3.2-3b": "meta-llama/Llama-3.2-3B-Instruct",
}
_ALIASES: dict[str, str] = {
    **{model.id.lower(): model.id for model in CATALOGUE},
    **{model.name.lower(): model.id for model in CATALOGUE},
    **_EXTRA_ALIASES,
}


class UnknownBaseModelError(ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"unknown base model '{value}'; supported: {', '.join(CANONICAL_IDS)}")


def canonical_base_model(value: str) -> str:
    """The canonical id for a catalogue id or alias, matched case-insensitively."""
    try:
        return _ALIASES[value.strip().lower()]
    except KeyError:
        raise UnknownBaseModelError(value) from None
