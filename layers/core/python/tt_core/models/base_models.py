"""The base-model catalogue (PRODUCT.md §5) and alias canonicalisation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BaseModelInfo:
    id: str
    context_length: int

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]


CATALOGUE: tuple[BaseModelInfo, ...] = (
    BaseModelInfo("google/gemma-4-E2B-it", 128_000),
    BaseModelInfo("google/gemma-4-E4B-it", 128_000),
    BaseModelInfo("Qwen/Qwen3.5-2B", 131_072),
    BaseModelInfo("Qwen/Qwen3.5-4B", 262_144),
    BaseModelInfo("meta-llama/Llama-3.2-3B-Instruct", 128_000),
    BaseModelInfo("microsoft/Phi-4-mini-instruct", 128_000),
    BaseModelInfo("ibm-granite/granite-3.3-2b-instruct", 128_000),
    BaseModelInfo("bigcode/starcoder2-3b", 16_384),
    BaseModelInfo("tunedtensor/tiny-chat", 2_048),
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
