"""What a parent model and its ancestors trained on, for a continued run's overlap flag (PRODUCT.md §9.3)."""

from __future__ import annotations

import json

from tt_core.language.text import normalise
from tt_core.ports import ObjectStore, RunRepository, TunedModelRepository
from tt_core.runs.artifacts import input_prefix

TRAIN_FILE = "train.jsonl"
# A chain of continued runs is short; the bound only guards against a cycle of records.
MAX_ANCESTORS = 100


def _training_inputs(data: bytes) -> set[str]:
    """The normalised user turns of a run's train channel (one chat per line, generated rows included)."""
    inputs: set[str] = set()
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            messages = json.loads(line)["messages"]
            inputs.update(normalise(m["content"]) for m in messages if m["role"] == "user")
    return inputs


def ancestors_training_inputs(
    account_id: str,
    parent_model_id: str,
    *,
    runs: RunRepository,
    models: TunedModelRepository,
    objects: ObjectStore,
) -> set[str] | None:
    """Normalised inputs the parent model and its recorded ancestors trained on; None when not all known.

    A model's training rows are the train channel its run stored (what the trainer read, untruncated);
    the run's own parent_model_id leads to the next ancestor. A deleted model, run or channel makes the
    answer unknown (None).
    """
    trained: set[str] = set()
    model_id: str | None = parent_model_id
    seen: set[str] = set()
    while model_id is not None and model_id not in seen and len(seen) < MAX_ANCESTORS:
        seen.add(model_id)
        model = models.get(account_id, model_id)
        run = runs.get(account_id, model.run_id) if model is not None and model.run_id else None
        if run is None:
            return None
        key = input_prefix(account_id, run.id, "train") + TRAIN_FILE
        if objects.size(key) is None:
            return None
        trained |= _training_inputs(objects.get_bytes(key))
        model_id = run.parent_model_id
    return trained
