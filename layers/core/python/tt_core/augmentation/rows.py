"""Generated training rows (PRODUCT.md §9.4): how many to add, and dedup against every known input."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tt_core.language.text import normalise
from tt_core.ports import Augmenter
from tt_core.runs.compiler import Example

MAX_TRAINING_ROWS_TARGET = 500
MIN_TRAINING_ROWS_TARGET = 30
TARGET_MULTIPLIER = 6
# Dedup may drop rows; the augmenter is asked for the shortfall this many times in all, then we stop.
MAX_AUGMENT_ROUNDS = 3


def augmentation_target(training_rows: int) -> int:
    """How many rows to add: T = min(500, max(30, 6 × n)) minus the n rows there are (0 without rows)."""
    if training_rows <= 0:
        return 0  # generated rows come only from training rows
    target = min(MAX_TRAINING_ROWS_TARGET, max(MIN_TRAINING_ROWS_TARGET, TARGET_MULTIPLIER * training_rows))
    return max(0, target - training_rows)


def augment_rows(
    rows: Sequence[Example],
    *,
    exclude_inputs: Iterable[str],
    augmenter: Augmenter,
    seed: str,
    context: dict[str, Any],
) -> list[Example]:
    """Only generated rows (≤ the target); none repeats a training, excluded or earlier generated input."""
    target = augmentation_target(len(rows))
    sources = [(row.input, row.output) for row in rows]
    seen = {normalise(row.input) for row in rows} | {normalise(text) for text in exclude_inputs}
    generated: list[Example] = []
    for round_number in range(MAX_AUGMENT_ROUNDS):
        shortfall = target - len(generated)
        if shortfall <= 0:
            break
        # A new seed per round: a seeded augmenter would otherwise repeat the rows just dropped.
        round_seed = seed if round_number == 0 else f"{seed}:{round_number}"
        pairs = augmenter.augment(sources, shortfall, seed=round_seed, context=context)
        if not pairs:
            break
        for text, output in pairs[:shortfall]:
            key = normalise(text)
            if key not in seen:
                seen.add(key)
                generated.append(Example(input=text, output=output))
    return generated
