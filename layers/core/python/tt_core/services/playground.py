"""Playground (PRODUCT.md §12): the account's model inventory, and completions on the local stack."""

from __future__ import annotations

import time
from collections.abc import Callable

from tt_core.errors import InvalidRequestError, PlaygroundUnavailableError
from tt_core.models.base_models import CATALOGUE, UnknownBaseModelError, canonical_base_model
from tt_core.models.common import normalize_id
from tt_core.models.playground import (
    PlaygroundBaseModel,
    PlaygroundCompletion,
    PlaygroundCompletionRequest,
    PlaygroundFineTunedModel,
    PlaygroundModels,
    PlaygroundTarget,
    PlaygroundUsage,
)
from tt_core.observability import tracer
from tt_core.ports import ModelInventory, PlaygroundGenerator

UNAVAILABLE_MESSAGE = "Playground inference is unavailable for hosted fine-tuned models."


class PlaygroundService:
    def __init__(
        self,
        models: ModelInventory,
        generator: PlaygroundGenerator | None,
        *,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._models = models
        # None on AWS: hosted inference is not part of this release (§17).
        self._generator = generator
        self._timer = timer

    @tracer.capture_method
    def models(self, account_id: str) -> PlaygroundModels:
        return PlaygroundModels(
            base_models=[
                PlaygroundBaseModel(id=m.id, name=m.name, context_length=m.context_length) for m in CATALOGUE
            ],
            fine_tuned_models=[
                PlaygroundFineTunedModel(
                    id=m.provider_model_id, name=m.name, base_model=m.base_model, model_id=m.id
                )
                for m in self._models.list_all(account_id)
            ],
        )

    def _target(self, account_id: str, model: str) -> PlaygroundTarget:
        try:
            base = canonical_base_model(model)
        except UnknownBaseModelError:
            pass
        else:
            return PlaygroundTarget(name=base, base_model=base)
        model_id = normalize_id(model)
        for record in self._models.list_all(account_id):
            if model.strip() in (record.provider_model_id, record.name) or record.id == model_id:
                return PlaygroundTarget(
                    name=record.provider_model_id,
                    base_model=record.base_model,
                    model_id=record.id,
                    artifact_key=record.artifact_key,
                )
        raise InvalidRequestError.for_field(
            "model", "must be a catalogue model or the provider_model_id of one of your fine-tuned models"
        )

    @tracer.capture_method(capture_response=False)
    def complete(self, account_id: str, request: PlaygroundCompletionRequest) -> PlaygroundCompletion:
        target = self._target(account_id, request.model)
        if self._generator is None:
            raise PlaygroundUnavailableError(UNAVAILABLE_MESSAGE)
        if not self._generator.has_weights(target.base_model):
            raise InvalidRequestError.for_field(
                "model", f"the weights of {target.base_model} are not on this machine"
            )
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        started = self._timer()
        generation = self._generator.complete(
            target,
            messages,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            stop=request.stop_strings,
            seed=request.seed,
        )
        latency_ms = round((self._timer() - started) * 1000, 1)
        return PlaygroundCompletion(
            content=generation.content,
            latency_ms=latency_ms,
            model=target.name,
            finish_reason=generation.finish_reason,
            usage=PlaygroundUsage(
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
                total_tokens=generation.prompt_tokens + generation.completion_tokens,
            ),
        )
