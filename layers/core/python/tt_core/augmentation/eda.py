"""Training-row augmentation (PRODUCT.md §9.4): the target count, the offline EDA augmenter, dedup."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tt_core.language.text import normalise
from tt_core.ports import Augmenter
from tt_core.runs.compiler import Example, seeded_random

MAX_TRAINING_ROWS_TARGET = 500
MIN_TRAINING_ROWS_TARGET = 30
TARGET_MULTIPLIER = 6
# Dedup may drop rows; the augmenter is asked for the shortfall this many times in all, then we stop.
MAX_AUGMENT_ROUNDS = 3
# EDA gives up on a batch after this many perturbations per requested row (short inputs have few variants).
EDA_ATTEMPTS_PER_ROW = 20
_WORD = re.compile(r"\S+")


def augmentation_target(training_rows: int) -> int:
    """How many rows to add: T = min(500, max(30, 6 × n)) minus the n rows there are (0 without rows)."""
    if training_rows <= 0:
        return 0  # generated rows come only from training rows
    target = min(MAX_TRAINING_ROWS_TARGET, max(MIN_TRAINING_ROWS_TARGET, TARGET_MULTIPLIER * training_rows))
    return max(0, target - training_rows)


class _Words:
    """A text as words and the whitespace around them, so edits keep the input's line breaks."""

    def __init__(self, text: str) -> None:
        self.words = _WORD.findall(text)
        self.gaps = _WORD.split(text)  # len(words) + 1: before the first word, between words, after the last

    def render(self) -> str:
        return "".join(gap + word for gap, word in zip(self.gaps, self.words, strict=False)) + self.gaps[-1]

    def swap(self, rng: random.Random) -> None:
        first, second = rng.sample(range(len(self.words)), 2)
        self.words[first], self.words[second] = self.words[second], self.words[first]

    def delete(self, rng: random.Random) -> None:
        # "A word or a few words": up to a quarter of them (at most 3); at least one word stays.
        most = max(1, min(3, len(self.words) // 4))
        for index in sorted(rng.sample(range(len(self.words)), rng.randint(1, most)), reverse=True):
            before, after = self.gaps[index], self.gaps[index + 1]
            if index == 0:
                kept = before  # the text's leading whitespace
            elif index == len(self.words) - 1:
                kept = after  # its trailing whitespace
            else:
                kept = max(before, after, key=lambda gap: gap.count("\n"))  # keep a line break
            self.gaps[index : index + 2] = [kept]
            del self.words[index]

    def insert(self, rng: random.Random) -> None:
        word = rng.choice(self.words)
        position = rng.randint(0, len(self.words))
        self.words.insert(position, word)
        self.gaps.insert(min(position + 1, len(self.words) - 1), " ")


def perturb(text: str, rng: random.Random) -> str | None:
    """One EDA edit of `text` (one-word texts can only get a duplicate inserted); None for an empty text."""
    words = _Words(text)
    if not words.words:
        return None
    operation = "insert" if len(words.words) == 1 else rng.choice(["swap", "delete", "insert"])
    getattr(words, operation)(rng)
    return words.render()


class EdaAugmenter:
    """The offline augmenter: perturbs inputs (swap, delete, insert words), copies outputs; seeded."""

    method = "eda"

    def augment(
        self, rows: list[tuple[str, str]], count: int, *, seed: str, context: dict[str, Any]
    ) -> list[tuple[str, str]]:
        rng = seeded_random(seed)
        sources = [source for source in rows if _WORD.search(source[0])]
        seen = {normalise(text) for text, _ in sources}
        generated: list[tuple[str, str]] = []
        attempts = 0
        while sources and len(generated) < count and attempts < count * EDA_ATTEMPTS_PER_ROW:
            text, output = sources[attempts % len(sources)]  # cycle so every row contributes
            attempts += 1
            variant = perturb(text, rng)
            # Never the source itself nor a repeat (a swap of equal words changes nothing).
            if variant is None or normalise(variant) in seen:
                continue
            seen.add(normalise(variant))
            generated.append((variant, output))
        return generated


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
