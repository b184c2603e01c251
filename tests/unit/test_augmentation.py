"""Augmentation (PRODUCT.md §9.4): the target, the EDA augmenter and deduplication of generated rows."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from tt_core.augmentation.eda import EdaAugmenter, augment_rows, augmentation_target, perturb
from tt_core.language.text import normalise
from tt_core.ports import Augmenter
from tt_core.runs.compiler import Example

SEED = "0b9c2f4e-7a51-4d0e-9d43-2f6f1b7e8a10"


def sentence_rows(count: int, words: int = 8) -> list[tuple[str, str]]:
    """Row k has words w<j>k only, so a variant's source is readable from any of its words."""
    return [(" ".join(f"w{j}r{k}" for j in range(words)), f"out {k}") for k in range(count)]


def source_of(text: str) -> int:
    return int(text.split()[0].split("r")[1])


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


# -- EDA --------------------------------------------------------------------------------------------------


def test_eda_is_deterministic_per_seed() -> None:
    rows = sentence_rows(3)
    first = EdaAugmenter().augment(rows, 12, seed=SEED, context={})
    assert EdaAugmenter().augment(rows, 12, seed=SEED, context={}) == first
    assert EdaAugmenter().augment(rows, 12, seed="another-run", context={}) != first
    assert EdaAugmenter.method == "eda"


def test_eda_returns_count_distinct_edits_with_copied_outputs() -> None:
    rows = sentence_rows(3)
    generated = EdaAugmenter().augment(rows, 20, seed=SEED, context={})
    assert len(generated) == 20
    keys = [normalise(text) for text, _ in generated]
    assert len(set(keys)) == 20
    assert set(keys).isdisjoint(normalise(text) for text, _ in rows)
    for text, output in generated:
        source, source_output = rows[source_of(text)]
        assert output == source_output
        before, after = Counter(source.split()), Counter(text.split())
        if after == before:  # a swap: same words, another order
            assert text != source
        elif after.total() > before.total():  # an insert of one word of the same input
            assert after.total() == before.total() + 1 and not after - before - Counter(before.keys())
            assert not before - after
        else:  # a deletion of one to a few words
            assert not after - before and 1 <= before.total() - after.total() <= 3


def test_eda_cycles_through_the_rows() -> None:
    rows = sentence_rows(4)
    generated = EdaAugmenter().augment(rows, 8, seed=SEED, context={})
    assert Counter(source_of(text) for text, _ in generated) == {0: 2, 1: 2, 2: 2, 3: 2}


def test_eda_one_word_inputs_only_get_a_duplicate() -> None:
    assert EdaAugmenter().augment([("hello", "hi")], 5, seed=SEED, context={}) == [("hello hello", "hi")]


def test_eda_never_returns_its_source_or_empty_inputs() -> None:
    # Swapping equal words changes nothing: one deletion and one insertion are new; a blank input gives none.
    generated = EdaAugmenter().augment([("same same same", "o"), ("   ", "x")], 10, seed=SEED, context={})
    assert sorted(generated) == [("same same", "o"), ("same same same same", "o")]
    assert EdaAugmenter().augment([], 5, seed=SEED, context={}) == []


def test_perturb_keeps_line_breaks_around_edits() -> None:
    text = "first line here\nsecond line there\nthird line end"  # no deletion empties a line
    rng = random.Random(7)
    for _ in range(200):
        variant = perturb(text, rng)
        assert variant is not None and variant.count("\n") == 2
        assert not variant.startswith((" ", "\n")) and not variant.endswith((" ", "\n"))


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


def test_augment_rows_with_eda_reaches_the_target_without_overlap() -> None:
    training = [Example(text, output) for text, output in sentence_rows(5, words=6)]
    excluded = ["w1r0 w0r0 w2r0 w3r0 w4r0 w5r0", "W0R1 w1r1 w2r1 w3r1 w4r1"]
    augmenter: Augmenter = EdaAugmenter()
    generated = augment_rows(training, exclude_inputs=excluded, augmenter=augmenter, seed=SEED, context={})
    assert len(generated) == 25
    keys = [normalise(row.input) for row in generated]
    assert len(set(keys)) == 25
    assert set(keys).isdisjoint(
        {normalise(text) for text in excluded} | {normalise(r.input) for r in training}
    )
    assert (
        augment_rows(training, exclude_inputs=excluded, augmenter=augmenter, seed=SEED, context={})
        == generated
    )
