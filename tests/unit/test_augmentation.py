"""Augmentation (PRODUCT.md §9.4): the target count and deduplication of generated rows."""

from __future__ import annotations

from typing import Any

import pytest

from tt_core.augmentation.rows import augment_rows, augmentation_target
from tt_core.runs.compiler import Example

SEED = "0b9c2f4e-7a51-4d0e-9d43-2f6f1b7e8a10"


@pytest.mark.parametrize(
    ("rows", "added"),
    [
        (0, 0),
        (1, 29),
        (4, 26),
        (5, 25),
        (6, 30),
        (10, 50),
        (83, 415),
        (84, 416),
        (100, 400),
        (499, 1),
        (500, 0),
        (900, 0),
    ],
)
def test_augmentation_target(rows: int, added: int) -> None:
    assert augmentation_target(rows) == added


# -- augment_rows -----------------------------------------------------------------------------------------


class ScriptedAugmenter:
    """Returns one scripted batch per call and records what it was asked."""

    method = "scripted"

    def __init__(self, batches: list[list[tuple[str, str]]]) -> None:
        self.batches = batches
        self.calls: list[tuple[int, str, dict[str, Any]]] = []

    def augment(
        self, rows: list[tuple[str, str]], count: int, *, seed: str, context: dict[str, Any]
    ) -> list[tuple[str, str]]:
        self.calls.append((count, seed, context))
        return self.batches[len(self.calls) - 1] if len(self.calls) <= len(self.batches) else []


def test_augment_rows_drops_normalised_duplicates_and_asks_for_the_shortfall() -> None:
    training = [Example(f"Train {i}", f"o{i}") for i in range(5)]  # target: 25 more
    first_batch = [
        ("  train   0 ", "x"),  # a training input, normalised
        ("HELD OUT", "x"),  # an excluded (eval) input
        ("new 1", "a"),
        ("New   1", "b"),  # an earlier generated input
        *[(f"fresh {i}", "c") for i in range(20)],
    ]
    second_batch = [("fresh 3", "d"), ("second 1", "e"), ("second 2", "e"), ("second 3", "e")]
    third_batch = [("third 1", "f"), ("third 2", "f"), ("third 3", "f")]
    augmenter = ScriptedAugmenter([first_batch, second_batch, third_batch])
    context = {"system_prompt": "p"}
    generated = augment_rows(
        training, exclude_inputs=["held out"], augmenter=augmenter, seed=SEED, context=context
    )
    assert [call[0] for call in augmenter.calls] == [25, 4, 1]
    assert [call[1] for call in augmenter.calls] == [SEED, f"{SEED}:1", f"{SEED}:2"]
    assert all(call[2] is context for call in augmenter.calls)
    assert generated == [
        Example("new 1", "a"),
        *[Example(f"fresh {i}", "c") for i in range(20)],
        Example("second 1", "e"),
        Example("second 2", "e"),
        Example("second 3", "e"),
        Example("third 1", "f"),
    ]


def test_augment_rows_stops_after_three_rounds_or_an_empty_answer() -> None:
    training = [Example("a b c", "o")]
    repeats = ScriptedAugmenter([[("a b c", "o")]] * 10)
    assert augment_rows(training, exclude_inputs=[], augmenter=repeats, seed=SEED, context={}) == []
    assert len(repeats.calls) == 3
    empty = ScriptedAugmenter([[("x y", "o")]])
    assert augment_rows(training, exclude_inputs=[], augmenter=empty, seed=SEED, context={}) == [
        Example("x y", "o")
    ]
    assert len(empty.calls) == 2


def test_augment_rows_never_exceeds_the_target() -> None:
    training = [Example(f"t {i}", "o") for i in range(100)]  # target: 400 more
    flood = ScriptedAugmenter([[(f"g {i}", "o") for i in range(1000)]])
    assert len(augment_rows(training, exclude_inputs=[], augmenter=flood, seed=SEED, context={})) == 400
    full = ScriptedAugmenter([[("g", "o")]])
    many = [Example(f"t {i}", "o") for i in range(500)]
    assert augment_rows(many, exclude_inputs=[], augmenter=full, seed=SEED, context={}) == []
    assert full.calls == []
