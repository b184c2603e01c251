"""Playground (PRODUCT.md §12): the model inventory and the completion request and response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, StrictStr, field_validator

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


StopString = Annotated[StrictStr, Field(min_length=1)]
StopStrings = StopString | Annotated[list[StopString], Field(max_length=4)]


class PlaygroundCompletionRequest(RequestModel):
    model: Annotated[
        StrictStr, Field(min_length=1, description="A catalogue id or alias, or a provider_model_id.")
    ]
    messages: Annotated[list[PlaygroundMessage], Field(min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2), STORABLE] = 0.7
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 1024
    stop: StopStrings | None = Field(
        default=None, description="The answer ends before the first of these (1–4 non-empty strings)."
    )
    seed: Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)] | None = Field(
        default=None, description="The same seed and request give the same sampled answer."
    )
    # Not Literal[1]: that takes `true` as 1.
    n: Annotated[StrictInt, Field(ge=1, le=1)] | None = Field(
        default=None, description="One answer per request: 1 only."
    )

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_message(cls, value: Any) -> Any:
        # One plain message for the field, instead of one per branch of the union.
        stops = [value] if isinstance(value, str) else value
        if value is not None and (
            not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops)
        ):
            raise ValueError("must be a non-empty string or a list of at most 4 non-empty strings")
        return value

    @property
    def stop_strings(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


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
