"""Similarity scoring, pass/exact rates and row-by-row comparison of results (PRODUCT.md §10.2, §10.5)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tt_core.evaluation.uncertainty import delta_interval, verdict
from tt_core.language.text import normalise, without_leading_think
from tt_core.models.evaluation import Comparison, EvalResult, ExampleDelta, ScoredBy

PASS_THRESHOLD = 0.7
EXACT_THRESHOLD = 0.95
CHANGE_THRESHOLD = 0.1
MAX_LISTED_EXAMPLES = 20
# Below PASS_THRESHOLD: an output whose numbers differ from the reference's never passes (§10.2).
NUMBER_MISMATCH_CAP = 0.5

# Scores carry 4 decimals, so 0.8 − 0.7 must count as a change of 0.1 despite binary floats.
_TOLERANCE = 1e-9
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+")
_CLOSERS = {"{": "}", "[": "]"}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Python's json reads NaN and Infinity; JSON does not, so they make a value invalid here.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) when the whole trimmed text is one JSON value, else (False, None)."""
    try:
        return True, _DECODER.decode(text.strip())
    except (ValueError, RecursionError):
        return False, None


def first_json_value(text: str, kinds: tuple[str, ...] = ("{", "[")) -> Any | None:
    """The first complete JSON object or array inside text (`kinds`: "{" and/or "["), or None.

    Tries each opening character in order and lets the JSON decoder read the value that starts
    there: a value starting at `{` ends exactly at its balancing `}`, strings and escapes
    included, so this is the first balanced span that parses.
    """
    # A value needs its closing character after its start; skipping starts without one keeps
    # long unterminated outputs ("[[[[…") from being re-read once per opening character.
    last_close = {kind: text.rfind(_CLOSERS[kind]) for kind in kinds}
    for start, char in enumerate(text):
        if char not in kinds or last_close[char] < start:
            continue
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        return value
    return None


def _as_json_object(text: str) -> dict[str, Any] | None:
    ok, value = parse_json(text)
    if ok and isinstance(value, dict):
        return value
    found = first_json_value(text, ("{",))
    return found if isinstance(found, dict) else None


def _json_equal(expected: Any, actual: Any) -> bool:
    """Structural equality where strings compare normalised and true ≠ 1 (Python says otherwise)."""
    if isinstance(expected, str) or isinstance(actual, str):
        return (
            isinstance(expected, str) and isinstance(actual, str) and normalise(expected) == normalise(actual)
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _json_equal(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            _json_equal(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, dict | list) or isinstance(actual, dict | list):
        return False
    return bool(expected == actual)  # numbers (1 = 1.0) and null


def _key_share(expected: dict[str, Any], actual_text: str) -> float:
    actual = _as_json_object(actual_text)
    if actual is None:
        return 0.0
    if not expected:
        return 1.0
    matching = sum(1 for key, value in expected.items() if key in actual and _json_equal(value, actual[key]))
    return matching / len(expected)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence length, bit-parallel (Crochemore et al. 2001).

    One big-int step per token of b instead of len(a) Python steps: 10,000 eval rows of a few
    hundred tokens each score in seconds, not minutes.
    """
    positions: dict[str, int] = {}
    for index, token in enumerate(a):
        positions[token] = positions.get(token, 0) | (1 << index)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matches = row & positions.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(a) - row.bit_count()


def rouge_l_f1(expected: str, actual: str) -> float:
    """ROUGE-L F1 over normalised `\\w+` tokens; 0.0 when either side has none."""
    reference = _WORD.findall(normalise(expected))
    candidate = _WORD.findall(normalise(actual))
    if not reference or not candidate:
        return 0.0
    common = lcs_length(reference, candidate)
    if common == 0:
        return 0.0
    precision = common / len(candidate)
    recall = common / len(reference)
    return 2 * precision * recall / (precision + recall)


def numbers_differ(expected: str, actual: str) -> bool:
    """Whether the reference holds numbers (digit runs) and the output's differ from them as a multiset."""
    reference = Counter(_NUMBER.findall(normalise(expected)))
    return bool(reference) and reference != Counter(_NUMBER.findall(normalise(actual)))


def similarity_score(expected: str, actual: str) -> float:
    """§10.2 similarity: normalised equality, else JSON key share, else ROUGE-L F1; 4 decimals.

    ROUGE-L is capped at 0.5 when the numbers differ: word overlap hides a wrong order number or
    date ("Order 101 … 2 days" vs "Order 110 … 1 days" overlaps 78 %).
    """
    actual = without_leading_think(actual)  # §9.4: the answer is scored, not the reasoning before it
    if normalise(expected) == normalise(actual):
        return 1.0
    ok, reference = parse_json(expected)
    if ok and isinstance(reference, dict):
        return round(_key_share(reference, actual), 4)
    score = rouge_l_f1(expected, actual)
    if numbers_differ(expected, actual):
        score = min(score, NUMBER_MISMATCH_CAP)
    return round(score, 4)


def score_by_similarity(
    *,
    id: str,
    prompt: str,
    expected: str,
    actual: str,
    latency_ms: float | None,
    scored_by: ScoredBy = "similarity",
) -> EvalResult:
    score = similarity_score(expected, actual)
    return EvalResult(
        id=id,
        prompt=prompt,
        expected=expected,
        actual=actual,
        passed=score >= PASS_THRESHOLD,
        score=score,
        reasoning=None,
        latency_ms=latency_ms,
        scored_by=scored_by,
    )


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def rates(results: Sequence[EvalResult]) -> tuple[float | None, float | None, float | None]:
    """(avg_score, pass_rate, exact_match_rate) with 4 decimals; None over zero rows."""
    if not results:
        return None, None, None
    scores = [result.score for result in results]
    return (
        round(sum(scores) / len(scores), 4),
        _share(sum(1 for score in scores if score >= PASS_THRESHOLD), len(scores)),
        _share(sum(1 for score in scores if score >= EXACT_THRESHOLD), len(scores)),
    )


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else round(new - old, 4)


def _first_by_prompt(results: Sequence[EvalResult]) -> dict[str, EvalResult]:
    by_prompt: dict[str, EvalResult] = {}
    for result in results:
        by_prompt.setdefault(result.prompt, result)
    return by_prompt


@dataclass(frozen=True)
class RowChanges:
    """New vs old joined by identical prompt: each joined row's score change, regressions, improvements."""

    deltas: list[float]
    regressed: list[ExampleDelta]
    improved: list[ExampleDelta]


def row_changes(old: Sequence[EvalResult], new: Sequence[EvalResult]) -> RowChanges:
    """Rows joined by prompt (first of each); a regression is ≥ 0.1 lower, an improvement ≥ 0.1 higher."""
    old_by_prompt = _first_by_prompt(old)
    deltas: list[float] = []
    regressed: list[ExampleDelta] = []
    improved: list[ExampleDelta] = []
    for prompt, result in _first_by_prompt(new).items():
        before = old_by_prompt.get(prompt)
        if before is None:
            continue
        change = result.score - before.score
        deltas.append(change)
        delta = ExampleDelta(prompt=prompt, old_score=before.score, new_score=result.score)
        if change <= -CHANGE_THRESHOLD + _TOLERANCE:
            regressed.append(delta)
        elif change >= CHANGE_THRESHOLD - _TOLERANCE:
            improved.append(delta)
    # sorted() is stable: equal changes keep the order of `new`.
    regressed.sort(key=lambda d: d.new_score - d.old_score)
    improved.sort(key=lambda d: d.old_score - d.new_score)
    return RowChanges(deltas=deltas, regressed=regressed, improved=improved)


def compare(old: Sequence[EvalResult], new: Sequence[EvalResult], *, seed: str) -> Comparison:
    """New vs old: rate deltas, the score delta's interval and verdict (bootstrap seeded by `seed`, the
    run id), regressions and improvements."""
    changes = row_changes(old, new)
    interval = delta_interval(changes.deltas, seed=seed)
    old_rates, new_rates = rates(old), rates(new)
    return Comparison(
        avg_score_delta=_delta(new_rates[0], old_rates[0]),
        avg_score_delta_ci95=interval,
        verdict=verdict(len(changes.deltas), interval),
        pass_rate_delta=_delta(new_rates[1], old_rates[1]),
        exact_match_rate_delta=_delta(new_rates[2], old_rates[2]),
        regressions=len(changes.regressed),
        improvements=len(changes.improved),
        regressed_examples=changes.regressed[:MAX_LISTED_EXAMPLES],
        improved_examples=changes.improved[:MAX_LISTED_EXAMPLES],
    )
