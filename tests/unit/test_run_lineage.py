"""A continued run's lineage (PRODUCT.md §9.3): what its parent model and their ancestors trained on."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from tt_core.runs.lineage import ancestors_training_inputs


class Store:
    """Models, runs and train channels by id, each as small as the lineage reads them."""

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}
        self.runs: dict[str, Any] = {}
        self.objects: dict[str, bytes] = {}

    def add(self, model_id: str, run_id: str, parent: str | None, inputs: list[str]) -> None:
        self.models[model_id] = SimpleNamespace(run_id=run_id)
        self.runs[run_id] = SimpleNamespace(id=run_id, parent_model_id=parent)
        chats = [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": text},
                               {"role": "assistant", "content": "A"}]} for text in inputs]  # fmt: skip
        key = f"accounts/a/runs/{run_id}/input/train/train.jsonl"
        self.objects[key] = "".join(json.dumps(chat) + "\n" for chat in chats).encode()

    def trained(self, model_id: str) -> set[str] | None:
        models: Any = SimpleNamespace(get=lambda account, key: self.models.get(key))
        runs: Any = SimpleNamespace(get=lambda account, key: self.runs.get(key))
        stored = self.objects
        objects: Any = SimpleNamespace(size=lambda key: len(stored[key]) if key in stored else None,
                                       get_bytes=lambda key: stored[key])  # fmt: skip
        return ancestors_training_inputs("a", model_id, runs=runs, models=models, objects=objects)


def test_the_parent_and_every_recorded_ancestor_count_with_normalised_inputs() -> None:
    store = Store()
    store.add("m1", "r1", None, ["  Where is   THE invoice? "])
    store.add("m2", "r2", "m1", ["Reset my password"])
    store.add("m3", "r3", "m2", ["Change my plan"])
    assert store.trained("m3") == {"where is the invoice?", "reset my password", "change my plan"}
    assert store.trained("m2") == {"where is the invoice?", "reset my password"}


def test_an_unknown_ancestor_makes_the_answer_unknown_and_a_cycle_ends() -> None:
    store = Store()
    store.add("m1", "r1", None, ["a"])
    store.add("m2", "r2", "m1", ["b"])
    del store.objects["accounts/a/runs/r1/input/train/train.jsonl"]  # its run's rows were deleted
    assert store.trained("m2") is None
    del store.runs["r1"]
    assert store.trained("m2") is None
    assert store.trained("gone") is None
    store.add("m4", "r4", "m5", ["c"])
    store.add("m5", "r5", "m4", ["d"])  # records that point at each other: read once each
    assert store.trained("m4") == {"c", "d"}
