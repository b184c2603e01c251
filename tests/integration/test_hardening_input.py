"""Bodies that could poison an account: over-deep nesting, unreadable stored items, control characters."""

from __future__ import annotations

from typing import Any

import pytest

from functions.api.http import MAX_BODY_NESTING, nesting_exceeds
from tt_core import wiring
from tt_core.models.behavior_specs import BehaviorSpecRecord

NESTING_MESSAGE = "must not nest objects and arrays more than 32 levels deep"


def nested(levels: int) -> Any:
    """A JSON value that is `levels` objects deep."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def account_id(client: Any) -> str:
    record = wiring.api_key_service().find_key(client.key)
    assert record is not None
    return record.account_id


def assert_too_deep(response: Any) -> None:
    assert response.status == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [{"field": "body", "message": NESTING_MESSAGE}]
    assert error["message"] == f"Request body is invalid: body {NESTING_MESSAGE}"


def test_nesting_is_measured_without_parsing() -> None:
    assert not nesting_exceeds('{"a": [1, {"b": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}]}')
    assert not nesting_exceeds("[" * MAX_BODY_NESTING + "]" * MAX_BODY_NESTING)
    assert nesting_exceeds("[" * (MAX_BODY_NESTING + 1) + "]" * (MAX_BODY_NESTING + 1))
    assert not nesting_exceeds('["\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]')  # an escaped quote
    assert nesting_exceeds("[" * 10_000)  # not JSON at all, still measured


def test_an_over_deep_spec_is_refused_and_nothing_is_stored(client: Any, spec_body: dict[str, Any]) -> None:
    # Body, eval_cases array and the case object are 3 levels: 29 more reach the limit of 32.
    at_limit = client.post("/behavior-specs", {**spec_body, "eval_cases": [nested(MAX_BODY_NESTING - 2)]})
    assert at_limit.status == 201, at_limit.json()
    assert_too_deep(
        client.post("/behavior-specs", {**spec_body, "eval_cases": [nested(MAX_BODY_NESTING - 1)]})
    )
    assert_too_deep(client.post("/behavior-specs", {**spec_body, "eval_cases": [nested(300)]}))
    listed = client.get("/behavior-specs")
    assert listed.status == 200
    assert [spec["id"] for spec in listed.json()["data"]] == [at_limit.json()["data"]["id"]]


def test_a_ten_thousand_deep_body_is_a_400_not_a_recursion_error(client: Any) -> None:
    raw = ('{"name": "x", "eval_cases": [' + "[" * 10_000 + "]" * 10_000 + "]}").encode()
    assert_too_deep(client.post("/behavior-specs", raw=raw))
    assert_too_deep(client.post("/datasets/upload-url", raw=b"[" * 10_000))
    assert client.get("/behavior-specs").json()["meta"]["total"] == 0


def test_an_over_deep_put_leaves_the_spec_unchanged(client: Any, spec_body: dict[str, Any]) -> None:
    spec = client.post("/behavior-specs", spec_body).json()["data"]
    assert_too_deep(client.put(f"/behavior-specs/{spec['id']}", {"eval_cases": [nested(300)]}))
    after = client.get(f"/behavior-specs/{spec['id']}")
    assert after.status == 200 and after.json()["data"]["eval_cases"] == []
    assert after.json()["data"]["updated_at"] == spec["updated_at"]


def test_a_spec_stored_before_the_rule_cannot_take_the_list_down(
    client: Any, spec_body: dict[str, Any]
) -> None:
    good = client.post("/behavior-specs", spec_body).json()["data"]
    # As stored by a server without the nesting rule: valid, but too deep to serialise back.
    poisoned = BehaviorSpecRecord.model_validate(
        {
            **good,
            "id": "0f0e0d0c-0000-4000-8000-000000000001",
            "account_id": account_id(client),
            "eval_cases": [nested(300)],
        }
    )
    wiring.spec_service()._specs.create(poisoned)
    listed = client.get("/behavior-specs")
    assert listed.status == 200
    assert [spec["id"] for spec in listed.json()["data"]] == [good["id"]]
    assert client.delete(f"/behavior-specs/{poisoned.id}").status == 204  # and it can still be removed


@pytest.mark.parametrize(
    ("path", "partition", "sort_key"),
    [
        ("/behavior-specs", "SPECS", "SPEC#"),
        ("/datasets", "DATASETS", "DATASET#"),
        ("/runs", "RUNS", "RUN#"),
        ("/models", "MODELS", "MODEL#"),
    ],
)
def test_an_unreadable_item_is_left_out_of_its_list(
    client: Any, spec_body: dict[str, Any], path: str, partition: str, sort_key: str
) -> None:
    """A damaged item (here: missing every field) is skipped; the rest of the list still answers."""
    spec = client.post("/behavior-specs", spec_body).json()["data"]
    pk = f"ACCOUNT#{account_id(client)}"
    damaged_id = "0f0e0d0c-0000-4000-8000-000000000002"
    wiring._table().put(
        {
            "pk": pk,
            "sk": f"{sort_key}{damaged_id}",
            "gsi1pk": f"{pk}#{partition}",
            "gsi1sk": f"2099-01-01T00:00:00.000Z#{damaged_id}",
            "id": damaged_id,
        }
    )
    listed = client.get(path)
    assert listed.status == 200, listed.json()
    ids = [item["id"] for item in listed.json()["data"]]
    assert damaged_id not in ids
    if path == "/behavior-specs":
        assert ids == [spec["id"]]


@pytest.mark.parametrize("name", ["bad\x00name", "two\r\nlines", "tab\there", "bell\x07", "c1\x85"])
def test_control_characters_in_names_are_refused(client: Any, spec_body: dict[str, Any], name: str) -> None:
    message = "must not contain control characters (such as NUL, CR or LF)"
    spec = client.post("/behavior-specs", {**spec_body, "name": name})
    assert spec.status == 400
    assert spec.json()["error"]["details"] == [{"field": "name", "message": message}]
    upload = {"name": "ok", "filename": "rows.jsonl", "size": 10}
    for field in ("name", "filename"):
        response = client.post("/datasets/upload-url", {**upload, field: name})
        assert response.status == 400
        assert response.json()["error"]["message"] == f"Request body is invalid: {field} {message}"
    assert client.get("/behavior-specs").json()["data"] == []
    assert client.get("/datasets").json()["data"] == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain\r\nX-Evil: 1", "application/jsonl\n", "text\x00/plain", "no-slash", "tëxt/plain", "a/b\r"],
)
def test_a_content_type_that_is_no_header_value_is_refused(client: Any, content_type: str) -> None:
    body = {"name": "rows", "filename": "rows.jsonl", "size": 10, "contentType": content_type}
    response = client.post("/datasets/upload-url", body)
    assert response.status == 400
    assert response.json()["error"]["details"] == [
        {
            "field": "contentType",
            "message": "must be a media type such as application/octet-stream, on one line",
        }
    ]
    assert client.get("/datasets").json()["data"] == []


@pytest.mark.parametrize(
    "content_type", ["application/jsonl", "application/x-ndjson; charset=utf-8", None]
)  # "" is refused, as the document's minLength 1 says (test_hardening_openapi_fuzz)
def test_ordinary_content_types_still_sign_an_upload(client: Any, content_type: str | None) -> None:
    body = {"name": "Support – rows", "filename": "rows.jsonl", "size": 10, "contentType": content_type}
    response = client.post("/datasets/upload-url", body)
    assert response.status == 201, response.json()
    expected = content_type or "application/octet-stream"
    assert response.json()["data"]["headers"]["Content-Type"] == expected
