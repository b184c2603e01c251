"""Run compilation (PRODUCT.md §9.3, §9.4): training/eval/test splits and the trainer's JSONL channels."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from tt_core.errors import InvalidRequestError
from tt_core.language.text import normalise
from tt_core.models.runs import SplitRatios
from tt_core.specs.prompt import chat_messages

EvalSplit = Literal["spec_holdout", "spec_examples", "dataset_validation", "dataset_test", "dataset_training"]
TEST_SPLIT: EvalSplit = "dataset_test"
# Spec runs hold out ⌊n ÷ 5⌋ examples once they have at least this many.
MIN_SPEC_EXAMPLES_FOR_HOLDOUT = 5


@dataclass(frozen=True)
class Example:
    input: str
    output: str


@dataclass(frozen=True)
class SplitPlan:
    """Which rows train, which are evaluated (the primary split) and which form the test block."""

    train: list[Example]
    eval: list[Example]
    test: list[Example]
    eval_split: EvalSplit
    eval_overlaps_training: bool
    eval_examples_total: int  # rows in the primary split before the max_eval cap
    eval_truncated: bool
    test_examples_total: int  # rows in the test split before the max_test cap (0: no test block)
    test_truncated: bool
    duplicates_dropped: int = 0  # rows whose normalised input repeats an earlier row's


def seeded_random(seed: str) -> random.Random:
    """A PRNG that gives the same sequence for the same seed in every process (unlike `hash()`)."""
    return random.Random(hashlib.sha256(seed.encode()).digest())


def distinct_inputs(rows: Sequence[Example]) -> list[Example]:
    """The rows less those whose normalised input (§10.2) equals an earlier row's, in order."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        key = normalise(row.input)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def _shuffled_indices(rows: Sequence[Example], seed: str) -> list[int]:
    """A stable shuffle: each row ranks by a hash of the seed and its normalised input.

    Not a seeded permutation of positions: a row keeps its rank when others are added, removed or
    reordered, so an edited spec moves few held-out examples (§9.3). Inputs are distinct here.
    """

    def rank(index: int) -> bytes:
        return hashlib.sha256(f"{seed}\n{normalise(rows[index].input)}".encode()).digest()

    return sorted(range(len(rows)), key=rank)


def _capped(rows: list[Example], cap: int) -> tuple[list[Example], bool]:
    cap = max(0, cap)
    return rows[:cap], len(rows) > cap


def _in_original_order(rows: Sequence[Example], indices: Sequence[int]) -> list[Example]:
    # The trainer shuffles every epoch; keeping the source order makes the compiled dataset readable.
    return [rows[i] for i in sorted(indices)]


def _plan(
    *,
    train: list[Example],
    eval_rows: list[Example],
    eval_split: EvalSplit,
    overlaps: bool,
    max_eval: int,
    test_rows: list[Example] | None = None,
    max_test: int = 0,
) -> SplitPlan:
    evaluated, eval_truncated = _capped(eval_rows, max_eval)
    tested, test_truncated = _capped(test_rows or [], max_test)
    return SplitPlan(
        train=train,
        eval=evaluated,
        test=tested,
        eval_split=eval_split,
        eval_overlaps_training=overlaps,
        eval_examples_total=len(eval_rows),
        eval_truncated=eval_truncated,
        test_examples_total=len(test_rows or []),
        test_truncated=test_truncated,
    )


def split_spec_examples(given: Sequence[Example], *, seed: str, max_eval: int) -> SplitPlan:
    """n ≥ 5: ⌊n ÷ 5⌋ held out for evaluation; n < 5: train on all and evaluate all (overlapping).

    `seed`: the spec's id, so every run of an unchanged spec holds out the same examples.
    """
    examples = distinct_inputs(given)
    dropped = len(given) - len(examples)
    order = _shuffled_indices(examples, seed)
    if len(examples) < MIN_SPEC_EXAMPLES_FOR_HOLDOUT:
        plan = _plan(
            train=list(examples),
            eval_rows=[examples[i] for i in order],
            eval_split="spec_examples",
            overlaps=True,
            max_eval=max_eval,
        )
    else:
        held_out = len(examples) // 5
        plan = _plan(
            train=_in_original_order(examples, order[held_out:]),
            eval_rows=[examples[i] for i in order[:held_out]],
            eval_split="spec_holdout",
            overlaps=False,
            max_eval=max_eval,
        )
    return replace(plan, duplicates_dropped=dropped)


def share_count(ratio: float, rows: int) -> int:
    """round(ratio × rows), halves up, on the decimal the client wrote (0.35 × 10 → 4, not 3.4999… → 3)."""
    exact = Decimal(repr(ratio)) * rows
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def split_dataset_rows(
    given: Sequence[Example],
    *,
    train: float,
    validation: float,
    test: float,
    seed: str,
    max_eval: int,
    max_test: int,
) -> SplitPlan:
    """The dataset rows of §9.3's table; raises InvalidRequestError when no row is left to train on.

    `train` is implied by the other two (it takes the rest); the cases follow the rounded row counts, so a
    share that rounds to no rows counts as absent. `seed`: the dataset's id, so every run on it (with the
    same ratios) evaluates the same rows. The shares apply to the rows left after dropping duplicates.
    """
    del train  # the rest after validation and test, by definition
    rows = distinct_inputs(given)
    dropped = len(given) - len(rows)
    n_validation = share_count(validation, len(rows))
    n_test = share_count(test, len(rows))
    n_train = len(rows) - n_validation - n_test
    if n_train <= 0:
        raise InvalidRequestError.for_field(
            "split_ratios",
            f"leaves no training rows ({len(rows)} rows: {n_validation} validation, {n_test} test)",
        )
    order = _shuffled_indices(rows, seed)
    validation_rows = [rows[i] for i in order[:n_validation]]
    test_rows = [rows[i] for i in order[n_validation : n_validation + n_test]]
    train_rows = _in_original_order(rows, order[n_validation + n_test :])
    if validation_rows:
        plan = _plan(
            train=train_rows,
            eval_rows=validation_rows,
            eval_split="dataset_validation",
            overlaps=False,
            max_eval=max_eval,
            test_rows=test_rows,
            max_test=max_test,
        )
    elif test_rows:
        plan = _plan(
            train=train_rows, eval_rows=test_rows, eval_split=TEST_SPLIT, overlaps=False, max_eval=max_eval
        )
    else:
        plan = _plan(
            train=train_rows,
            eval_rows=[rows[i] for i in order],
            eval_split="dataset_training",
            overlaps=True,
            max_eval=max_eval,
        )
    return replace(plan, duplicates_dropped=dropped)


def split_run_rows(
    examples: Sequence[Example], ratios: SplitRatios | None, *, seed: str, max_eval: int, max_test: int
) -> SplitPlan:
    """A run's split: an uploaded dataset's rows by `ratios`, or (None) the spec's examples.

    `seed`: the dataset's id, or the spec's; never the run's, so successive runs evaluate the same rows.
    """
    if ratios is None:
        return split_spec_examples(examples, seed=seed, max_eval=max_eval)
    return split_dataset_rows(
        examples,
        train=ratios.train,
        validation=ratios.validation,
        test=ratios.test,
        seed=seed,
        max_eval=max_eval,
        max_test=max_test,
    )


def _jsonl(objects: Sequence[object]) -> bytes:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in objects).encode()


def training_jsonl(rows: Sequence[Example], system: str) -> bytes:
    """The trainer's `train` channel: one `{"messages": [system?, user, assistant]}` per line."""
    return _jsonl([{"messages": chat_messages(system, row.input, row.output)} for row in rows])


def eval_jsonl(rows: Sequence[Example], system: str, *, split: str, id_prefix: str) -> bytes:
    """The trainer's `eval` channel: ids `<id_prefix>-1`, `-2`, …; the output is the `expected` answer."""
    return _jsonl(
        [
            {
                "id": f"{id_prefix}-{position}",
                "messages": chat_messages(system, row.input),
                "expected": row.output,
                "split": split,
            }
            for position, row in enumerate(rows, start=1)
        ]
    )
