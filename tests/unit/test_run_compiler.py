"""Run compilation (PRODUCT.md §9.3, §9.4): spec and dataset splits, caps, the trainer's JSONL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tt_core.errors import InvalidRequestError
from tt_core.language.text import normalise
from tt_core.runs.compiler import (
    Example,
    SplitPlan,
    eval_jsonl,
    split_dataset_rows,
    split_spec_examples,
    training_jsonl,
)

ROOT = Path(__file__).resolve().parents[2]
SEED = "0b9c2f4e-7a51-4d0e-9d43-2f6f1b7e8a10"


def examples(count: int) -> list[Example]:
    return [Example(input=f"input {i}", output=f"output {i}") for i in range(count)]


def dataset_split(rows: int, train: float, validation: float, test: float, **caps: int) -> SplitPlan:
    return split_dataset_rows(
        examples(rows),
        train=train,
        validation=validation,
        test=test,
        seed=SEED,
        max_eval=caps.get("max_eval", 10_000),
        max_test=caps.get("max_test", 10_000),
    )


def sizes(plan: SplitPlan) -> tuple[int, int, int]:
    return len(plan.train), len(plan.eval), len(plan.test)


# -- spec examples ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "train", "evaluated", "split", "overlaps"),
    [
        (1, 1, 1, "spec_examples", True),
        (4, 4, 4, "spec_examples", True),
        (5, 4, 1, "spec_holdout", False),
        (12, 10, 2, "spec_holdout", False),
        (26, 21, 5, "spec_holdout", False),
    ],
)
def test_spec_split_sizes(count: int, train: int, evaluated: int, split: str, overlaps: bool) -> None:
    rows = examples(count)
    plan = split_spec_examples(rows, seed=SEED, max_eval=50)
    assert sizes(plan) == (train, evaluated, 0)
    assert (plan.eval_split, plan.eval_overlaps_training) == (split, overlaps)
    assert (plan.eval_examples_total, plan.eval_truncated) == (evaluated, False)
    assert (plan.test_examples_total, plan.test_truncated) == (0, False)
    if overlaps:
        assert plan.train == rows and sorted(plan.eval, key=rows.index) == rows
    else:
        assert set(plan.train).isdisjoint(plan.eval)
        assert set(plan.train) | set(plan.eval) == set(rows)


def test_spec_training_rows_keep_the_examples_order() -> None:
    rows = examples(26)
    plan = split_spec_examples(rows, seed=SEED, max_eval=50)
    assert plan.train == [row for row in rows if row not in plan.eval]


def test_spec_split_is_reproducible_and_seeded() -> None:
    rows = examples(26)
    first = split_spec_examples(rows, seed=SEED, max_eval=50)
    assert split_spec_examples(rows, seed=SEED, max_eval=50) == first
    other = split_spec_examples(rows, seed="another-spec", max_eval=50)
    assert other.eval != first.eval
    # Fewer than five examples are all evaluated, but still in the seeded order.
    few = examples(4)
    orders = {tuple(split_spec_examples(few, seed=f"spec-{i}", max_eval=50).eval) for i in range(10)}
    assert len(orders) > 1


def test_spec_split_is_the_same_in_a_fresh_process() -> None:
    rows = examples(26)
    expected = [row.input for row in split_spec_examples(rows, seed=SEED, max_eval=50).eval]
    script = (
        "from tt_core.runs.compiler import Example, split_spec_examples\n"
        "rows = [Example(f'input {i}', f'output {i}') for i in range(26)]\n"
        f"print([row.input for row in split_spec_examples(rows, seed={SEED!r}, max_eval=50).eval])\n"
    )
    # A different hash seed proves the split does not depend on Python's salted hash().
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers/core/python"), "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == repr(expected)


def test_spec_eval_cap_keeps_the_first_shuffled_rows_and_returns_none_to_training() -> None:
    rows = examples(26)
    full = split_spec_examples(rows, seed=SEED, max_eval=50)
    capped = split_spec_examples(rows, seed=SEED, max_eval=2)
    assert capped.eval == full.eval[:2]
    assert capped.train == full.train
    assert (capped.eval_examples_total, capped.eval_truncated) == (5, True)
    few = split_spec_examples(examples(4), seed=SEED, max_eval=3)
    assert (len(few.train), len(few.eval), few.eval_examples_total, few.eval_truncated) == (4, 3, 4, True)
    exact = split_spec_examples(rows, seed=SEED, max_eval=5)
    assert (len(exact.eval), exact.eval_truncated) == (5, False)


# -- dataset rows -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "ratios", "expected_sizes", "split", "overlaps", "test_total"),
    [
        (10, (0.8, 0.1, 0.1), (8, 1, 1), "dataset_validation", False, 1),
        (10, (0.7, 0.3, 0.0), (7, 3, 0), "dataset_validation", False, 0),
        (10, (0.8, 0.0, 0.2), (8, 2, 0), "dataset_test", False, 0),
        (10, (1.0, 0.0, 0.0), (10, 10, 0), "dataset_training", True, 0),
        # Rounding halves up on the written decimal: 2.5 → 3, 3.5 → 4 (0.35 × 10 is 3.4999… in binary).
        (25, (0.8, 0.1, 0.1), (19, 3, 3), "dataset_validation", False, 3),
        (10, (0.65, 0.35, 0.0), (6, 4, 0), "dataset_validation", False, 0),
        (5, (0.9, 0.1, 0.0), (4, 1, 0), "dataset_validation", False, 0),
        (7, (0.8, 0.1, 0.1), (5, 1, 1), "dataset_validation", False, 1),
        (3, (0.4, 0.3, 0.3), (1, 1, 1), "dataset_validation", False, 1),
        # Shares that round to no rows count as absent.
        (4, (0.9, 0.0, 0.1), (4, 4, 0), "dataset_training", True, 0),
        (4, (0.8, 0.1, 0.1), (4, 4, 0), "dataset_training", True, 0),
        (6, (0.8, 0.05, 0.15), (5, 1, 0), "dataset_test", False, 0),
    ],
)
def test_dataset_split_table(
    rows: int,
    ratios: tuple[float, float, float],
    expected_sizes: tuple[int, int, int],
    split: str,
    overlaps: bool,
    test_total: int,
) -> None:
    plan = dataset_split(rows, *ratios)
    assert sizes(plan) == expected_sizes
    assert (plan.eval_split, plan.eval_overlaps_training) == (split, overlaps)
    assert (plan.eval_examples_total, plan.test_examples_total) == (expected_sizes[1], test_total)
    assert not plan.eval_truncated and not plan.test_truncated
    everything = set(examples(rows))
    if overlaps:
        assert set(plan.train) == set(plan.eval) == everything
    else:
        assert set(plan.train) | set(plan.eval) | set(plan.test) == everything
        assert len(plan.train) + len(plan.eval) + len(plan.test) == rows


@pytest.mark.parametrize(
    ("rows", "ratios"),
    [(2, (0.5, 0.25, 0.25)), (1, (0.5, 0.5, 0.0)), (0, (1.0, 0.0, 0.0)), (10, (0.01, 0.5, 0.49))],
)
def test_dataset_split_without_training_rows_is_refused(
    rows: int, ratios: tuple[float, float, float]
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        dataset_split(rows, *ratios)
    assert raised.value.http_status == 400
    assert raised.value.details is not None
    assert raised.value.details[0].field == "split_ratios"
    assert "no training rows" in raised.value.details[0].message


def test_dataset_split_is_reproducible_and_seeded() -> None:
    first = dataset_split(50, 0.6, 0.2, 0.2)
    assert dataset_split(50, 0.6, 0.2, 0.2) == first
    other = split_dataset_rows(
        examples(50), train=0.6, validation=0.2, test=0.2, seed="another-dataset", max_eval=100, max_test=100
    )
    assert other.eval != first.eval
    rows = examples(50)
    assert first.train == [row for row in rows if row in set(first.train)]  # source order kept


def test_dataset_caps_keep_the_first_rows_of_each_split() -> None:
    full = dataset_split(100, 0.5, 0.3, 0.2)
    capped = dataset_split(100, 0.5, 0.3, 0.2, max_eval=10, max_test=5)
    assert capped.eval == full.eval[:10] and capped.test == full.test[:5]
    assert capped.train == full.train and len(capped.train) == 50
    assert (capped.eval_examples_total, capped.eval_truncated) == (30, True)
    assert (capped.test_examples_total, capped.test_truncated) == (20, True)
    test_only = dataset_split(100, 0.8, 0.0, 0.2, max_eval=7, max_test=1)
    assert (len(test_only.eval), test_only.eval_split, test_only.eval_truncated) == (7, "dataset_test", True)
    assert (test_only.test, test_only.test_examples_total, test_only.test_truncated) == ([], 0, False)
    overlapping = dataset_split(100, 1.0, 0.0, 0.0, max_eval=50)
    assert (len(overlapping.train), len(overlapping.eval), overlapping.eval_truncated) == (100, 50, True)


# -- JSONL --------------------------------------------------------------------------------------------------

ROWS = [Example("Say “hi”", "Hi! café"), Example('a "quoted"\nline', "out\n2")]


def test_training_jsonl_exact_lines() -> None:
    data = training_jsonl(ROWS, "Be brief.")
    assert data.endswith(b"\n") and "café".encode() in data
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 3
    assert json.loads(lines[0]) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say “hi”"},
            {"role": "assistant", "content": "Hi! café"},
        ]
    }
    assert json.loads(lines[1])["messages"][1:] == [
        {"role": "user", "content": 'a "quoted"\nline'},
        {"role": "assistant", "content": "out\n2"},
    ]
    assert lines[0] == (
        '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say “hi”"}, '
        '{"role": "assistant", "content": "Hi! café"}]}'
    )


def test_training_jsonl_without_system_prompt() -> None:
    assert training_jsonl([Example("q", "a")], "") == (
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    assert training_jsonl([], "sys") == b""


def test_eval_jsonl_rows() -> None:
    data = eval_jsonl(ROWS, "Be brief.", split="spec_holdout", id_prefix="eval")
    lines = data.decode("utf-8").splitlines()
    assert data.endswith(b"\n") and len(lines) == 2
    assert [json.loads(line) for line in lines] == [
        {
            "id": "eval-1",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say “hi”"}],
            "expected": "Hi! café",
            "split": "spec_holdout",
        },
        {
            "id": "eval-2",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": 'a "quoted"\nline'},
            ],
            "expected": "out\n2",
            "split": "spec_holdout",
        },
    ]
    assert json.loads(eval_jsonl([Example("q", "a")], "", split="dataset_test", id_prefix="test")) == {
        "id": "test-1",
        "messages": [{"role": "user", "content": "q"}],
        "expected": "a",
        "split": "dataset_test",
    }


# -- stable selection and duplicates (§9.3) -------------------------------------------------------------

SPEC_ID = "5d0c7a34-2f7e-4c1b-9a57-3e1f0b8d6c21"


def test_an_unchanged_spec_holds_out_the_same_examples_and_an_added_one_moves_at_most_one() -> None:
    rows = examples(20)
    first = split_spec_examples(rows, seed=SPEC_ID, max_eval=50)
    # The selection follows the examples themselves, not their position in the spec.
    reordered = split_spec_examples(list(reversed(rows)), seed=SPEC_ID, max_eval=50)
    assert reordered.eval == first.eval and set(reordered.train) == set(first.train)
    # A new example may take one held-out place; the other held-out examples stay.
    grown = split_spec_examples([*rows, Example("input 20", "output 20")], seed=SPEC_ID, max_eval=50)
    assert len(grown.eval) == 4 and len(set(first.eval) - set(grown.eval)) <= 1
    # Normalisation (§10.2) does not move an example: case and spacing are not part of its identity.
    respaced = [Example(f"  INPUT   {i} ", f"output {i}") for i in range(20)]
    assert [row.output for row in split_spec_examples(respaced, seed=SPEC_ID, max_eval=50).eval] == [
        row.output for row in first.eval
    ]


def test_duplicate_inputs_are_dropped_before_splitting_so_no_evaluated_input_is_trained_on() -> None:
    distinct = examples(80)
    # 20 more rows repeat earlier inputs, respaced and recased (§10.2 normalisation), with other outputs.
    repeats = [Example(f" INPUT  {i}\n", f"another output {i}") for i in range(0, 80, 4)]
    rows = [*distinct[:40], *repeats, *distinct[40:]]
    assert len(rows) == 100
    plan = split_dataset_rows(
        rows, train=0.6, validation=0.2, test=0.2, seed=SPEC_ID, max_eval=100, max_test=100
    )
    trained = {normalise(row.input) for row in plan.train}
    assert not trained & {normalise(row.input) for row in (*plan.eval, *plan.test)}
    assert plan.duplicates_dropped == 20 and not plan.eval_overlaps_training
    assert sizes(plan) == (48, 16, 16)  # the shares apply to the 80 rows left
    first: dict[str, Example] = {}
    for row in rows:
        first.setdefault(normalise(row.input), row)
    assert set(plan.train) | set(plan.eval) | set(plan.test) == set(first.values())  # the earlier row stays
    spec = split_spec_examples([*distinct[:10], *repeats[:3]], seed=SPEC_ID, max_eval=50)
    assert (len(spec.train), len(spec.eval), spec.duplicates_dropped) == (8, 2, 3)
