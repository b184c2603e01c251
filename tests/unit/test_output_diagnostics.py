"""Output diagnostics table D and its insights (PRODUCT.md §10.4) on small crafted sets."""

from __future__ import annotations

import pytest

from tt_core.evaluation.output_diagnostics import diagnose, output_insights
from tt_core.models.evaluation import DiagnosticsBlock, OutputDiagnostics

# (actual, expected, finished) and, per row, what it counts towards:
CRAFTED: list[tuple[str, str, bool]] = [
    # 1 starts, valid, strict; expected object, has its keys; finished
    ('{"a": 1, "b": 2}', '{"a": 0, "b": 0}', True),
    # 2 starts (after whitespace), valid, strict; expected not JSON; finished
    ("  [1, 2]", "plain", True),
    # 3 valid but not strict (a string); expected object, output no object; unfinished
    ('"just a string"', '{"a": 1}', False),
    # 4 non-JSON prefix (object later); expected object, whole output is no object; finished
    ('Here it is: {"a": 1}', '{"a": 1}', True),
    # 5 visible reasoning (case-insensitive); later object incomplete → no prefix count; unfinished
    ('<THINK>hmm</think> {"a": 1, "c": 3', '{"a": 1, "b": 2}', False),
    # 6 visible reasoning; "[yes]" is no JSON → no prefix count; expected not JSON; unfinished
    ("Let me think... the answer is [yes]", "yes", False),
    # 7 starts, but trailing text: not valid; expected object, keys not counted; starts → no prefix count
    ('{"a": 1} trailing', '{"a": 1}', True),
    # 8 valid, not strict (a number); expected {} is an object, output is none; finished
    ("42", "{}", True),
    # 9 starts, valid, strict; expected {} → any object has all its keys; finished
    ('{"x": 1}', "{}", True),
    # 10 empty output; expected an array (not an object); unfinished
    ("", "[1]", False),
]


def test_crafted_set() -> None:
    block = diagnose(CRAFTED)
    assert block.model_dump() == {
        "total": 10,
        "avg_output_chars": 15.5,  # lengths 16+8+15+20+34+35+17+2+8+0 = 155
        "max_output_chars": 35,
        "starts_json_count": 4,  # rows 1, 2, 7, 9
        "starts_json_rate": 0.4,
        "valid_json_count": 5,  # rows 1, 2, 3, 8, 9
        "valid_json_rate": 0.5,
        "strict_json_count": 3,  # rows 1, 2, 9
        "strict_json_rate": 0.3,
        "expected_json_total": 7,  # rows 1, 3, 4, 5, 7, 8, 9
        "expected_schema_keys_count": 2,  # rows 1, 9
        "expected_schema_keys_rate": 0.2857,  # 2 / 7 over expected_json_total
        "non_json_prefix_count": 1,  # row 4
        "non_json_prefix_rate": 0.1,
        "visible_reasoning_prefix_count": 2,  # rows 5, 6
        "visible_reasoning_prefix_rate": 0.2,
        "finished_count": 6,  # rows 1, 2, 4, 7, 8, 9
        "finished_rate": 0.6,
    }


@pytest.mark.parametrize(
    "output",
    [
        "<think>x</think>",
        "  <Reasoning>step</Reasoning>",
        "Thinking: first",
        "REASONING: first",
        "let me think about it",
        "Let's think step by step",
    ],
)
def test_visible_reasoning_prefixes(output: str) -> None:
    assert diagnose([(output, "x", True)]).visible_reasoning_prefix_count == 1


@pytest.mark.parametrize("output", ["I think so", "The reasoning: none", "<thought>", "Let us think"])
def test_not_visible_reasoning(output: str) -> None:
    assert diagnose([(output, "x", True)]).visible_reasoning_prefix_count == 0


def test_rates_round_to_four_decimals_and_schema_rate_is_null_without_json_expected() -> None:
    block = diagnose([('{"a": 1}', "x", True), ("no", "y", False), ("no", "z", False)])
    assert (block.starts_json_rate, block.finished_rate) == (0.3333, 0.3333)
    assert (block.expected_json_total, block.expected_schema_keys_rate) == (0, None)
    assert block.avg_output_chars == 4.0  # (8 + 2 + 2) / 3


def test_non_json_prefix_needs_a_complete_object_or_array() -> None:
    rows = [
        ("Answer: [1, 2] done", "x", True),  # array later
        ('Answer: {"a": ', "x", True),  # incomplete
        ("Answer: {'a': 1}", "x", True),  # not JSON
        ('  {"a": 1} then {"b": 2}', "x", True),  # starts with JSON: never a prefix
    ]
    assert diagnose(rows).non_json_prefix_count == 1


def test_nan_and_infinity_are_not_valid_json() -> None:
    block = diagnose([("NaN", "x", True), ("[Infinity]", "x", True)])
    assert (block.valid_json_count, block.strict_json_count, block.starts_json_count) == (0, 0, 1)


def test_empty_blocks() -> None:
    assert diagnose([]) == DiagnosticsBlock.empty()
    empty = DiagnosticsBlock.empty()
    assert (empty.total, empty.avg_output_chars, empty.max_output_chars, empty.finished_rate) == (
        0,
        0.0,
        0,
        None,
    )
    diagnostics = OutputDiagnostics.empty().model_dump()
    assert diagnostics["test"] is None and diagnostics["insights"] == []
    assert diagnostics["baseline"] == diagnostics["candidate"] == empty.model_dump()


# -- insights ----------------------------------------------------------------------------------------------


def test_insights_on_the_crafted_set() -> None:
    baseline = diagnose([("plain answer", "x", True)] * 4)
    assert output_insights(baseline, diagnose(CRAFTED), max_output_tokens=256) == [
        "40% of tuned outputs hit max_output_tokens (256).",
        "Tuned outputs finished within the token budget 60% of the time, base outputs 100%.",
        "20% of tuned outputs start with visible reasoning.",
        # 7 rows expected an object, 2 outputs had one with the keys: 5 / 7 = 71%
        "71% of tuned outputs where a JSON object was expected are not a JSON object with the expected keys.",
        "10% of tuned outputs put other text before their JSON.",
    ]


def test_no_insights_when_nothing_stands_out() -> None:
    clean = diagnose([('{"a": 1}', '{"a": 2}', True), ("text", "text", True)])
    assert output_insights(clean, clean, max_output_tokens=64) == []
    assert output_insights(DiagnosticsBlock.empty(), DiagnosticsBlock.empty(), max_output_tokens=64) == []


def test_finished_gap_below_a_tenth_is_not_mentioned() -> None:
    baseline = diagnose([("a", "a", True)] * 20)
    candidate = diagnose([("a", "a", True)] * 19 + [("a", "a", False)])  # 95% vs 100%
    assert output_insights(baseline, candidate, max_output_tokens=8) == [
        "5% of tuned outputs hit max_output_tokens (8)."
    ]


def test_small_shares_never_read_as_zero_or_all() -> None:
    one_unfinished = diagnose([("a", "a", True)] * 999 + [("a", "a", False)])
    assert output_insights(DiagnosticsBlock.empty(), one_unfinished, max_output_tokens=8) == [
        "<1% of tuned outputs hit max_output_tokens (8)."
    ]
    one_finished = diagnose([("a", "a", False)] * 999 + [("a", "a", True)])
    assert output_insights(DiagnosticsBlock.empty(), one_finished, max_output_tokens=8)[0] == (
        ">99% of tuned outputs hit max_output_tokens (8)."
    )
