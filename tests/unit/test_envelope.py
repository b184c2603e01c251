"""The 6 MB response cap: eval-row strings are cut first, then spec examples; stored data stays whole."""

from __future__ import annotations

import json

from tt_core.envelope import (
    LAMBDA_REQUEST_LIMIT,
    LAMBDA_RESPONSE_LIMIT,
    MAX_RESPONSE_BYTES,
    TRUNCATION_MARK,
    escaped_size,
    fit_response,
    request_event_too_large,
)


def test_small_payloads_are_unchanged() -> None:
    payload = {"data": {"examples": [{"input": "a", "output": "b"}]}}
    assert json.loads(fit_response(payload)) == payload


def test_longest_example_strings_are_cut_until_it_fits() -> None:
    payload = {"data": {"name": "n" * 100, "examples": [{"input": "i" * 5000, "output": "o" * 300}]}}
    text = fit_response(payload, limit=2000)
    assert len(text.encode()) <= 2000
    cut = json.loads(text)["data"]
    assert cut["examples"][0]["input"].endswith(TRUNCATION_MARK)
    assert cut["examples"][0]["output"] == "o" * 300  # short strings survive
    assert cut["name"] == "n" * 100  # only example and eval-row strings may be cut
    assert payload["data"]["examples"][0]["input"] == "i" * 5000  # the caller's object is untouched


def test_eval_rows_are_cut_before_examples() -> None:
    payload = {
        "data": {
            "examples": [{"input": "x" * 1500, "output": "y"}],
            "_evals": [{"prompt": "p" * 1500, "expected": "e", "actual": "a" * 1500, "reasoning": None}],
        }
    }
    cut = json.loads(fit_response(payload, limit=3400))["data"]
    assert cut["examples"][0]["input"] == "x" * 1500
    assert cut["_evals"][0]["prompt"].endswith(TRUNCATION_MARK)
    assert cut["_evals"][0]["actual"].endswith(TRUNCATION_MARK)


def test_multibyte_text_is_measured_in_bytes() -> None:
    payload = {"data": [{"input": "é" * 3000, "output": "ü" * 3000}]}
    assert len(fit_response(payload, limit=4000).encode()) <= 4000


def test_the_cap_counts_the_body_as_lambda_does_escaped_inside_the_response_document() -> None:
    """4 MB of quotes and non-ASCII text is far more once escaped: it is cut, never a 502 from the gateway."""
    rows = [
        {"prompt": '"' * 1_000_000, "expected": "é" * 500_000, "actual": "\n" * 1_000_000, "reasoning": "r"}
    ]
    payload = {"data": {"_evals": rows}}
    assert len(json.dumps(payload, ensure_ascii=False).encode()) < MAX_RESPONSE_BYTES
    text = fit_response(payload)
    document = json.dumps({"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": text})
    assert len(document) <= LAMBDA_RESPONSE_LIMIT
    assert json.loads(text)["data"]["_evals"][0]["prompt"].endswith(TRUNCATION_MARK)


def test_escaped_size() -> None:
    assert escaped_size("ab") == 4  # its quotes
    assert escaped_size('"') == 4
    assert escaped_size("é") == 8  # \u00e9 where a runtime escapes non-ASCII


def test_request_events_over_lambdas_limit() -> None:
    assert not request_event_too_large({"body": "x" * 1000})
    quotes = '"' * (LAMBDA_REQUEST_LIMIT // 2 + 10)
    assert len(quotes) < LAMBDA_REQUEST_LIMIT and request_event_too_large({"body": quotes})
