"""The request body reader and the storable-number rule, without the API around them."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from functions.api.http import parse_json
from tt_core.models.runs import HyperparametersRequest, SplitRatios


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e999", "-1e400", "9" * 4301])
def test_what_json_has_not_is_a_decode_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json(text)


def test_json_reads_as_before() -> None:
    text = '{"a": [1e308, 5e-324, -0.0, 12345678901234567890], "b": "NaN", "c": null, "d": true}'
    assert parse_json(text) == json.loads(text)
    assert math.copysign(1, parse_json("-0.0")) == -1
    with pytest.raises(json.JSONDecodeError):
        parse_json("{")


@pytest.mark.parametrize("value", [1e-131, -1e-131, 5e-324])
def test_a_number_too_close_to_zero_is_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="cannot be stored"):
        SplitRatios(train=1, validation=0, test=abs(value))
    with pytest.raises(ValidationError):
        HyperparametersRequest(lora_dropout=value)


def test_the_bounds_stay_in_the_schema_beside_the_storage_rule() -> None:
    properties = HyperparametersRequest.model_json_schema()["properties"]
    [rate, _] = properties["learning_rate"]["anyOf"]
    assert rate["exclusiveMinimum"] == 0 and rate["maximum"] == 1 and "1e-130" in rate["description"]
    assert SplitRatios.model_json_schema()["properties"]["test"]["minimum"] == 0
