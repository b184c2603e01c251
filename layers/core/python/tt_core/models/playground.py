"""Playground (PRODUCT.md §12): the model inventory and the completion request and response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StrictStr

from tt_core.models.common import STORABLE, Model, RequestModel


class PlaygroundBaseModel(Model):
    id: str
    name: str
    type: Literal["base"] = "base"
    context_length: int


class PlaygroundFineTunedModel(Model):
    """`id` is the model's provider_model_id; `model_id` its UUID."""

    id: str
    name: str
    type: Literal["fine-tuned"] = "fine-tuned"
    base_model: str
    model_id: str


class PlaygroundModels(Model):
    base_models: list[PlaygroundBaseModel]
    fine_tuned_models: list[PlaygroundFineTunedModel]


class PlaygroundMessage(RequestModel):
    role: Literal["system", "user", "assistant"]
    content: StrictStr


class PlaygroundCompletionRequest(RequestModel):
    model: Annotated[
        StrictStr, Field(min_length=1, description="A catalogue id or alias, or a provider_model_id.")
    ]
    messages: Annotated[list[PlaygroundMessage], Field(min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2), STORABLE] = 0.7
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 1024


class PlaygroundUsage(Model):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class PlaygroundCompletion(Model):
    content: str
    latency_ms: float
    model: str
    finish_reason: Literal["stop", "length"]
    usage: PlaygroundUsage


@dataclass(frozen=True)
class PlaygroundTarget:
    """What generates: a catalogue model (no artifact) or a fine-tuned model's artifact on its base."""

    name: str  # the id the response names: the canonical id or the provider_model_id
    base_model: str
    model_id: str | None = None
    artifact_key: str | None = None


@dataclass(frozen=True)
class PlaygroundGeneration:
    content: str
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
