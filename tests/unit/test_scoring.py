"""Similarity scoring, rates and comparisons (PRODUCT.md §10.1, §10.2, §10.5) with hand-computed numbers."""

from __future__ import annotations

import random

import pytest

from tt_core.evaluation.scoring import (
    CHANGE_THRESHOLD,
    EXACT_THRESHOLD,
    PASS_THRESHOLD,
    compare,
    first_json_value,
    lcs_length,
    parse_json,
    rates,
    rouge_l_f1,
    score_by_similarity,
    similarity_score,
)
from tt_core.models.evaluation import EvalResult


def result(prompt: str, score: float, *, latency_ms: float | None = None) -> EvalResult:
    return EvalResult(
        id=prompt,
        prompt=prompt,
        expected="e",
        actual="a",
        passed=score >= PASS_THRESHOLD,
        score=score,
        latency_ms=latency_ms,
        scored_by="similarity",
    )


def test_thresholds() -> None:
    assert (PASS_THRESHOLD, EXACT_THRESHOLD, CHANGE_THRESHOLD) == (0.7, 0.95, 0.1)


# -- rule 1: normalised equality ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ("Hello World", "hello world"),
        ("  Hello \n\t World  ", "hello world"),
        ("Straße", "STRASSE"),  # case-fold, not lower(): ß folds to ss
        ("", "   \n"),
        ('{"a": 1}', '  {"A":   1}  '),  # equal once normalised, before any JSON reading
    ],
)
def test_normalised_equality_scores_one(expected: str, actual: str) -> None:
    assert similarity_score(expected, actual) == 1.0


@pytest.mark.parametrize(
    ("actual", "score"),
    [
        ("\n</think>\n\nParis", 1.0),  # Qwen3.5 trained with thinking on: the prompt opened the block
        ("<think>\n\n</think>\n\nParis", 1.0),
        ("  <think>\nThe capital of France.\n</think>\nParis", 1.0),
        ("<think>\nParis, or is it Lyon", 0.2857),  # still thinking when the budget ran out: no block
        ("Paris </think>", 0.6667),  # only a leading block goes; the rest scores as written
    ],
)
def test_a_leading_think_block_is_removed_before_scoring(actual: str, score: float) -> None:
    assert similarity_score("Paris", actual) == score


# -- rule 3: ROUGE-L F1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "score"),
    [
        # LCS "the cat on the mat" = 5 of 6 and 6: P = R = 5/6 → 0.8333
        ("the cat sat on the mat", "the cat lay on the mat", 0.8333),
        # LCS "a c" = 2: P = 2/3, R = 2/4, F1 = 2·(1/3)/(7/6) = 4/7 = 0.571428… → 0.5714
        ("a b c d", "a c e", 0.5714),
        # LCS 1 of 3 and 3 → 1/3
        ("one two three", "three two one", 0.3333),
        # LCS 2 of 3 and 3 → 2/3 = 0.6666… → 0.6667 (rounded up)
        ("a b c", "a b d", 0.6667),
        # LCS "a b" = 2: P = 2/2, R = 2/3, F1 = 2·(2/3)/(5/3) = 0.8
        ("a b c", "a b", 0.8),
        # punctuation is not a token and case folds: same tokens → 1.0 though the texts differ
        ("Hello, World!", "hello world", 1.0),
        ("Grüße aus Köln", "GRÜSSE aus köln.", 1.0),
        ("alpha beta", "gamma delta", 0.0),
        # an expected JSON array is not an object: ROUGE-L over tokens 1 2 / 1 3 → 0.5
        ("[1, 2]", "[1, 3]", 0.5),
    ],
)
def test_rouge_l(expected: str, actual: str, score: float) -> None:
    assert similarity_score(expected, actual) == score


@pytest.mark.parametrize(
    ("expected", "actual"), [("", "something"), ("something", ""), ("...", "!!"), ("words here", "?!")]
)
def test_one_side_without_tokens_scores_zero(expected: str, actual: str) -> None:
    assert similarity_score(expected, actual) == 0.0


def test_an_output_with_other_numbers_than_the_reference_never_passes() -> None:
    # The issue's example (reference worded as PRODUCT §10.2's "1 days"): ROUGE-L 7 of 9 tokens = 0.7778,
    # a pass by overlap alone, though the order number and the delay are both wrong.
    expected = "Order 110 shipped yesterday and arrives in 1 days."
    actual = "Order 101 shipped yesterday and arrives in 2 days."
    assert round(rouge_l_f1(expected, actual), 4) == 0.7778
    row = score_by_similarity(id="r1", prompt="p", expected=expected, actual=actual, latency_ms=None)
    assert (row.score, row.passed) == (0.5, False)


@pytest.mark.parametrize(
    ("expected", "actual", "score"),
    [
        # the same numbers in another order: a multiset, so no cap (LCS "ship then later" 3 of 5 → 0.6)
        ("ship 2 then 3 later", "ship 3 then 2 later", 0.6),
        # a number missing from the output is a difference: capped at 0.5
        ("call 555 0100 today", "call 555 today", 0.5),
        # a number repeated is a difference too (multiset, not set)
        ("room 7 floor 2", "room 7 floor 2 2", 0.5),
        # no numbers in the reference: the output's numbers are just words
        ("ships tomorrow morning", "ships tomorrow morning at 9", 0.75),
        # below the cap already: unchanged
        ("order 110 arrives", "order 101 left the depot long ago", 0.2),
    ],
)
def test_numbers_rule(expected: str, actual: str, score: float) -> None:
    assert similarity_score(expected, actual) == score


def test_seven_of_ten_tokens_pass_exactly_at_threshold() -> None:
    expected = "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10"
    actual = "w1 w2 w3 w4 w5 w6 w7 x8 x9 x10"  # P = R = 7/10 → F1 0.7
    row = score_by_similarity(id="r1", prompt="p", expected=expected, actual=actual, latency_ms=12.5)
    assert (row.score, row.passed) == (0.7, True)
    assert row.reasoning is None and row.scored_by == "similarity" and row.latency_ms == 12.5


def test_score_by_similarity_below_threshold_and_fallback_label() -> None:
    row = score_by_similarity(
        id="r2",
        prompt="p",
        expected="a b c",
        actual="a b d",
        latency_ms=None,
        scored_by="similarity_fallback",
    )
    assert (row.score, row.passed, row.scored_by) == (0.6667, False, "similarity_fallback")
    assert row.model_dump()["id"] == "r2"


def test_lcs_matches_dynamic_programming() -> None:
    def reference(a: list[str], b: list[str]) -> int:
        previous = [0] * (len(b) + 1)
        for x in a:
            current = [0]
            for j, y in enumerate(b):
                current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
            previous = current
        return previous[-1]

    rng = random.Random(7)
    for _ in range(2000):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        assert lcs_length(a, b) == reference(a, b)


# -- rule 2: JSON key share --------------------------------------------------------------------------------

PERSON = '{"name": "Ada", "age": 36, "city": "London"}'


@pytest.mark.parametrize(
    ("expected", "actual", "score"),
    [
        # object in prose: name equal once normalised, age equal, city not → 2/3
        (PERSON, 'Sure! Here it is: {"name": " ADA ", "age": 36, "city": "Paris"} Hope it helps.', 0.6667),
        (PERSON, '{"name":"ada","age":36,"city":"london","extra":true}', 1.0),  # extra keys do not matter
        (PERSON, '{"name": "Ada"}', 0.3333),  # missing keys count as unequal
        (PERSON, '{"name": "Ada", "age": "36", "city": "London"}', 0.6667),  # "36" is not 36
        (PERSON, "no json at all", 0.0),
        (PERSON, '{"name": "Ada", "age": 36', 0.0),  # incomplete object
        # a brace that is not JSON comes first; the scanner moves on to the object after it
        ('{"a": 1, "b": 2}', "Note {not json} then {\"a\": 1, 'b': 2}", 0.0),
        ('{"a": 1, "b": 2}', 'Note {not json} then {"a": 1, "b": 3}', 0.5),
        # braces and escaped quotes inside strings do not end the object
        ('{"a": "}{", "b": 2}', 'result: {"a": "}{", "b": 2}', 1.0),
        ('{"a": "say \\"hi\\" }", "b": 1}', 'x {"a": "say \\"hi\\" }", "b": 0} y', 0.5),
        # the first complete object wins, even if a later one matches better
        ('{"a": 1}', 'first {"a": 2} then {"a": 1}', 0.0),
        # an array around the object: the whole text is no object, so the first object inside is used
        ('{"a": 1}', '[{"a": 1}]', 1.0),
        # nested values compare structurally, strings inside them normalised
        ('{"a": {"b": [1, "X"]}, "c": 1}', '{"a":{"b":[1,"x "]},"c":1.0}', 1.0),
        ('{"a": {"b": [1, "X"]}}', '{"a":{"b":["X",1]}}', 0.0),  # list order matters
        ('{"a": {"b": 1}}', '{"a":{"b":1,"c":2}}', 0.0),  # nested objects must match whole
        ('{"a": true, "b": null}', '{"a":1,"b":null}', 0.5),  # true is not 1
        # NaN is not JSON, so this actual holds no object
        ('{"a": 1}', '{"a": NaN}', 0.0),
    ],
)
def test_json_key_share(expected: str, actual: str, score: float) -> None:
    assert similarity_score(expected, actual) == score


@pytest.mark.parametrize(
    ("actual", "score"),
    [('{"x": 1}', 1.0), ('ok: {"anything": [1]} done', 1.0), ("no object", 0.0), ("[]", 0.0)],
)
def test_expected_empty_object_scores_one_against_any_object(actual: str, score: float) -> None:
    assert similarity_score("{}", actual) == score


def test_parse_json_reads_the_whole_trimmed_text_only() -> None:
    assert parse_json('  {"a": [1, 2]} \n') == (True, {"a": [1, 2]})
    assert parse_json("null") == (True, None)
    assert parse_json('{"a": 1} extra') == (False, None)
    assert parse_json("Infinity") == (False, None)
    assert parse_json("") == (False, None)


def test_first_json_value() -> None:
    assert first_json_value('say [1, {"a": "]"}] and {"b": 2}') == [1, {"a": "]"}]
    assert first_json_value('say [1, {"a": "]"}] and {"b": 2}', ("{",)) == {"a": "]"}
    assert first_json_value("{ [ { no json") is None
    assert first_json_value("open " + "[" * 100_000) is None  # never closed: no value, and quickly
    # too deep to parse from the outer brackets (no crash): the innermost "[]" is the first value
    assert first_json_value("deep " + "[" * 3_000 + "]") == []
    assert first_json_value('x {"k": "v"}') == {"k": "v"}


# -- rates -------------------------------------------------------------------------------------------------


def test_rates() -> None:
    # mean 2.65 / 4; pass ≥ 0.7: 3 of 4; exact ≥ 0.95: 2 of 4
    assert rates([result(p, s) for p, s in [("a", 1.0), ("b", 0.95), ("c", 0.7), ("d", 0.0)]]) == (
        0.6625,
        0.75,
        0.5,
    )
    # mean 2.3498 / 3 = 0.78326… → 0.7833; 2 of 3 pass → 0.6667; none exact (0.9499 < 0.95)
    assert rates([result(p, s) for p, s in [("a", 0.9499), ("b", 0.7), ("c", 0.6999)]]) == (
        0.7833,
        0.6667,
        0.0,
    )


def test_rates_over_zero_rows_are_none() -> None:
    assert rates([]) == (None, None, None)


# -- compare -----------------------------------------------------------------------------------------------


def test_compare_joins_by_prompt_with_thresholds_at_exactly_one_tenth() -> None:
    old = [result(p, s) for p, s in [("p1", 0.8), ("p2", 0.5), ("p3", 0.3), ("p4", 1.0), ("p5", 0.9)]]
    new = [
        result(p, s)
        for p, s in [("p1", 0.7), ("p2", 0.6), ("p3", 0.35), ("p4", 0.2), ("p5", 0.81), ("p6", 1.0)]
    ]
    comparison = compare(old, new, seed="run-1")
    # p1 drops exactly 0.1 and p2 rises exactly 0.1 (0.6 − 0.5 is 0.0999… in floats); p5 drops 0.09
    assert comparison.regressions == 2 and comparison.improvements == 1
    assert [(d.prompt, d.old_score, d.new_score) for d in comparison.regressed_examples] == [
        ("p4", 1.0, 0.2),
        ("p1", 0.8, 0.7),
    ]
    assert [(d.prompt, d.old_score, d.new_score) for d in comparison.improved_examples] == [("p2", 0.5, 0.6)]
    # rates over each whole side: old avg 3.5/5 = 0.7, pass 3/5, exact 1/5;
    # new avg 3.66/6 = 0.61, pass 3/6, exact 1/6 = 0.1667
    assert comparison.avg_score_delta == -0.09
    assert comparison.pass_rate_delta == -0.1
    assert comparison.exact_match_rate_delta == -0.0333


def test_compare_uses_the_first_row_of_each_prompt() -> None:
    comparison = compare(
        [result("q", 0.9), result("q", 0.1)], [result("q", 0.5), result("q", 1.0)], seed="run-1"
    )
    assert (comparison.regressions, comparison.improvements) == (1, 0)
    assert comparison.regressed_examples[0].model_dump() == {
        "prompt": "q",
        "old_score": 0.9,
        "new_score": 0.5,
    }


def test_compare_orders_worst_and_best_first_and_lists_at_most_twenty() -> None:
    # 25 drops of 0.10, 0.11, …, 0.34 (in a shuffled order) and 22 rises of 0.10 … 0.31
    drops = [(f"d{i}", round(0.1 + i / 100, 2)) for i in range(25)]
    rises = [(f"r{i}", round(0.1 + i / 100, 2)) for i in range(22)]
    random.Random(3).shuffle(drops)
    random.Random(4).shuffle(rises)
    old = [result(p, 0.5) for p, _ in drops] + [result(p, 0.4) for p, _ in rises]
    new = [result(p, round(0.5 - d, 2)) for p, d in drops] + [result(p, round(0.4 + r, 2)) for p, r in rises]
    comparison = compare(old, new, seed="run-1")
    assert (comparison.regressions, comparison.improvements) == (25, 22)
    assert [d.prompt for d in comparison.regressed_examples] == [f"d{i}" for i in range(24, 4, -1)]
    assert [d.prompt for d in comparison.improved_examples] == [f"r{i}" for i in range(21, 1, -1)]


def test_compare_keeps_the_order_of_new_rows_on_equal_changes() -> None:
    old = [result("b", 0.9), result("a", 0.9)]
    new = [result("a", 0.5), result("b", 0.5)]
    assert [d.prompt for d in compare(old, new, seed="run-1").regressed_examples] == ["a", "b"]


def test_compare_with_an_empty_side() -> None:
    comparison = compare([], [result("a", 1.0)], seed="run-1")
    assert comparison.model_dump() == {
        "avg_score_delta": None,
        "avg_score_delta_ci95": None,  # no row joined
        "verdict": "inconclusive",
        "pass_rate_delta": None,
        "exact_match_rate_delta": None,
        "regressions": 0,
        "improvements": 0,
        "regressed_examples": [],
        "improved_examples": [],
    }


def test_compare_gives_the_delta_interval_and_verdict_over_the_joined_rows() -> None:
    old = [result(f"p{i}", 0.4) for i in range(12)]
    new = [result(f"p{i}", 0.9 if i % 4 else 0.5) for i in range(12)] + [result("only-new", 0.0)]
    comparison = compare(old, new, seed="run-1")
    # 12 joined rows (the new-only row is left out): deltas 0.5 × 9 and 0.1 × 3, every one above 0
    low, high = comparison.avg_score_delta_ci95 or (0.0, 0.0)
    assert 0.1 <= low < 0.4 < high <= 0.5 and comparison.verdict == "better"
    assert compare(old, new, seed="run-1") == comparison  # the same run id: the same interval
    assert compare(new, old, seed="run-1").verdict == "worse"
    assert compare(old[:9], new[:9], seed="run-1").verdict == "inconclusive"  # under 10 rows
