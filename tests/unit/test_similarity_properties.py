"""Property tests of the similarity scorer (PRODUCT.md §10.2) over seeded random texts and objects:
identical → 1.0, whitespace and case do not matter, JSON fields match by key, range 0–1, an empty
side → 0.0. Seeded, so a failure reproduces."""

from __future__ import annotations

import json
import random

from tt_core.evaluation.scoring import similarity_score

CASES = 300
WORDS = ["alpha", "Beta", "gamma", "DELTA", "straße", "Ünïcode", "42", "x", "settings", "billing", "ok"]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))


def _respaced(rng: random.Random, text: str) -> str:
    """The same words with other whitespace runs around them and other letter case."""
    gaps = [" ", "  ", "\t", "\n", " \n\t "]
    words = text.split()
    body = "".join(word + rng.choice(gaps) for word in words[:-1]) + words[-1]
    cased = body.upper() if rng.random() < 0.5 else body.lower()
    return rng.choice(["", " ", "\n"]) + cased + rng.choice(["", "  ", "\t\n"])


def test_identical_texts_score_one() -> None:
    rng = random.Random(1)
    for _ in range(CASES):
        text = _text(rng)
        assert similarity_score(text, text) == 1.0


def test_whitespace_and_case_do_not_matter() -> None:
    rng = random.Random(2)
    for _ in range(CASES):
        text = _text(rng)
        assert similarity_score(text, _respaced(rng, text)) == 1.0
        assert similarity_score(_respaced(rng, text), text) == 1.0


def test_scores_stay_between_zero_and_one() -> None:
    rng = random.Random(3)
    for _ in range(CASES):
        score = similarity_score(_text(rng), _text(rng))
        assert 0.0 <= score <= 1.0 and round(score, 4) == score


def test_an_empty_side_scores_zero() -> None:
    rng = random.Random(4)
    for _ in range(CASES):
        text = _text(rng)
        empty = rng.choice(["", " ", "\n\t", "...", "?!"])  # nothing to compare: no \w+ tokens
        assert similarity_score(text, empty) == 0.0
        assert similarity_score(empty, text) == 0.0


def test_json_objects_score_the_share_of_matching_fields() -> None:
    rng = random.Random(5)
    for _ in range(CASES):
        keys = rng.sample(["name", "city", "age", "tags", "ok", "note"], rng.randint(1, 6))
        expected = {key: rng.choice([_text(rng), rng.randint(0, 9), True, None, [1, "a"]]) for key in keys}
        matching = rng.sample(keys, rng.randint(0, len(keys)))
        actual = {}
        for key in rng.sample(keys, len(keys)):  # key order never matters
            value = expected[key]
            if key in matching:
                # Strings compare normalised: whitespace and case may differ.
                actual[key] = _respaced(rng, value) if isinstance(value, str) else value
            else:
                actual[key] = f"other {rng.random()}"
        actual["extra"] = "extra keys are ignored"
        text = json.dumps(actual, indent=rng.choice([None, 2]))
        if rng.random() < 0.3:
            text = f"Here is the JSON: {text} hope it helps"  # the first object inside the output
        assert similarity_score(json.dumps(expected), text) == round(len(matching) / len(keys), 4)
