"""BaseModelWeights on AWS: the operator's staged copies under base-models/<id>/ of the bucket (§14.6)."""

from __future__ import annotations

from tt_core.ports import ObjectStore
from tt_core.schema import BASE_MODEL_MANIFEST, BASE_MODELS_PREFIX, LOCAL_DEFAULT_BASE_MODEL

# PRODUCT.md §14.6: the stack of the default stage is TunedTensor, any other stage's TunedTensor-<stage>.
_STACK = "TunedTensor"
_DEFAULT_STAGE = "dev"


def staged_prefix(base_model: str) -> str:
    """Where the training jobs read the base model's weights (the job's base_model channel)."""
    return f"{BASE_MODELS_PREFIX}{base_model}/"


class StagedBaseModelWeights:
    def __init__(self, objects: ObjectStore, *, stage: str = _DEFAULT_STAGE) -> None:
        self._objects = objects
        self._stage = stage

    def available(self, base_model: str) -> bool:
        if base_model == LOCAL_DEFAULT_BASE_MODEL:  # built by the trainer itself, on any instance
            return True
        # The manifest is written after every file is copied and verified: without it the copy is partial.
        return self._objects.size(staged_prefix(base_model) + BASE_MODEL_MANIFEST) is not None

    def stage_command(self, base_model: str) -> str:
        stack = "" if self._stage == _DEFAULT_STAGE else f" --stack {_STACK}-{self._stage}"
        return f"tt admin stage-base-model {base_model}{stack}"
