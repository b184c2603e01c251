"""BaseModelWeights on AWS: the operator's staged copies under base-models/<id>/ of the bucket (§14.6)."""

from __future__ import annotations

from tt_core.ports import ObjectStore
from tt_core.schema import (
    BASE_MODEL_MANIFEST,
    BASE_MODELS_PREFIX,
    DEFAULT_STAGE,
    LOCAL_DEFAULT_BASE_MODEL,
    stack_name,
)


def staged_prefix(base_model: str) -> str:
    """Where the training jobs read the base model's weights (the job's base_model channel)."""
    return f"{BASE_MODELS_PREFIX}{base_model}/"


class StagedBaseModelWeights:
    def __init__(self, objects: ObjectStore, *, stage: str = DEFAULT_STAGE) -> None:
        self._objects = objects
        self._stage = stage

    def available(self, base_model: str) -> bool:
        if base_model == LOCAL_DEFAULT_BASE_MODEL:  # built by the trainer itself, on any instance
            return True
        # The manifest is written after every file is copied and verified: without it the copy is partial.
        return self._objects.size(staged_prefix(base_model) + BASE_MODEL_MANIFEST) is not None

    def stage_command(self, base_model: str) -> str:
        # The CLI's --stack defaults to the default stage's stack: name any other.
        stack = "" if self._stage == DEFAULT_STAGE else f" --stack {stack_name(self._stage)}"
        return f"tt admin stage-base-model {base_model}{stack}"
