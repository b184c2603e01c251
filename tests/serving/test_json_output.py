"""The JSON reply helpers of response_format (PRODUCT.md §15.4)."""

from __future__ import annotations

from typing import Any

import pytest

from tt_serve.json_output import check_reply, first_json_value, validate


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2] trailing words", [1, 2]),
        ('Sure! Here it is: {"a": {"b": [1]}} and {"c": 2}', {"a": {"b": [1]}}),
        ('"just a string"', "just a string"),
        ("42", 42),
        ('broken { "a": } then {"ok": true}', {"ok": True}),
        ('```json\n{"x": null}\n```', {"x": None}),
    ],
)
def test_the_first_complete_json_value(text: str, value: Any) -> None:
    assert first_json_value(text) == (True, value)


def test_no_json_value() -> None:
    assert first_json_value("no json here {") == (False, None)
    assert check_reply("nothing", None) == (None, ["the reply holds no complete JSON value"])


SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["positive", "negative"]},
        "score": {"type": "number"},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"type": ["string", "null"]},
    },
    "required": ["label", "score"],
    "additionalProperties": False,
}


def test_the_supported_keywords() -> None:
    assert (
        validate({"label": "positive", "score": 0.5, "count": 3, "tags": ["a"], "note": None}, SCHEMA) == []
    )
    assert validate({"label": "meh", "score": 1}, SCHEMA) == [
        '$.label must be one of ["positive", "negative"]'
    ]
    assert validate({"label": "negative"}, SCHEMA) == ["$.score is required"]
    assert validate({"label": "negative", "score": True}, SCHEMA) == ["$.score must be of type number"]
    assert validate({"label": "negative", "score": 1, "count": 2.0}, SCHEMA) == []
    assert validate({"label": "negative", "score": 1, "count": 2.5}, SCHEMA) == [
        "$.count must be of type integer"
    ]
    assert validate({"label": "negative", "score": 1, "tags": ["a", 3]}, SCHEMA) == [
        "$.tags[1] must be of type string"
    ]
    assert validate({"label": "negative", "score": 1, "extra": 1}, SCHEMA) == ["$.extra is not allowed"]
    assert validate([1], SCHEMA) == ["$ must be of type object"]
    assert validate({"anything": 1}, {"type": "object"}) == []


def test_replies_come_back_compact_or_with_their_errors() -> None:
    assert check_reply('Result: {"label": "positive", "score": 1}', SCHEMA) == (
        '{"label":"positive","score":1}',
        [],
    )
    assert check_reply('{"é": "ü"}', None) == ('{"é":"ü"}', [])
    assert check_reply("[1, 2]", None) == (None, ["$ must be of type object"])  # json_object needs an object
