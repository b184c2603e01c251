"""Every validation rule of PRODUCT.md §2 and §6: status 400, code validation_error, the field named."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import SEED_SPEC

LONG = "x" * 1001


def spec(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED_SPEC)
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


def example(**changes: Any) -> dict[str, Any]:
    return {"input": "q", "output": "a", **changes}


CREATE_CASES = [
    ("name missing", spec(name=...), "name", "is required"),
    ("name empty", spec(name=""), "name", "must not be empty"),
    ("name too long", spec(name="n" * 256), "name", "must be at most 255 characters"),
    ("name not a string", spec(name=5), "name", "must be a string"),
    ("description too long", spec(description="d" * 5001), "description", "must be at most 5000 characters"),
    (
        "system prompt too long",
        spec(system_prompt="s" * 10_001),
        "system_prompt",
        "must be at most 10000 characters",
    ),
    ("too many guidelines", spec(guidelines=["g"] * 51), "guidelines", "must have at most 50 items"),
    ("empty guideline", spec(guidelines=[""]), "guidelines.0", "must not be empty"),
    ("guideline too long", spec(guidelines=["ok", LONG]), "guidelines.1", "must be at most 1000 characters"),
    ("guidelines not a list", spec(guidelines="be nice"), "guidelines", "must be an array"),
    ("too many constraints", spec(constraints=["c"] * 51), "constraints", "must have at most 50 items"),
    ("empty constraint", spec(constraints=[""]), "constraints.0", "must not be empty"),
    ("constraint too long", spec(constraints=[LONG]), "constraints.0", "must be at most 1000 characters"),
    ("examples missing", spec(examples=...), "examples", "is required"),
    ("no examples", spec(examples=[]), "examples", "must have at least 1 item(s)"),
    ("too many examples", spec(examples=[example()] * 501), "examples", "must have at most 500 items"),
    ("empty input", spec(examples=[example(input="")]), "examples.0.input", "must not be empty"),
    (
        "empty output",
        spec(examples=[example(), example(output="")]),
        "examples.1.output",
        "must not be empty",
    ),
    (
        "input too long",
        spec(examples=[example(input="i" * 100_001)]),
        "examples.0.input",
        "must be at most 100000 characters",
    ),
    ("output not a string", spec(examples=[example(output=3)]), "examples.0.output", "must be a string"),
    ("example without output", spec(examples=[{"input": "q"}]), "examples.0.output", "is required"),
    ("example extra key", spec(examples=[example(note="n")]), "examples.0.note", "unknown field"),
    ("example not an object", spec(examples=["q -> a"]), "examples.0", "must be a JSON object"),
    ("unknown base model", spec(base_model="gpt-4"), "base_model", None),
    ("too many eval cases", spec(eval_cases=[{}] * 501), "eval_cases", "must have at most 500 items"),
    ("eval case not an object", spec(eval_cases=[1]), "eval_cases.0", "must be a JSON object"),
    ("unknown field", spec(temperature=0.2), "temperature", "unknown field"),
]


@pytest.mark.parametrize(("case", "body", "field", "message"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_create_rules(client: Any, case: str, body: Any, field: str, message: str | None) -> None:
    response = client.post("/behavior-specs", body)
    assert response.status == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    if message:
        assert error["details"][0]["message"] == message
        assert error["message"] == f"Request body is invalid: {field} {message}"
    assert client.get("/behavior-specs").json()["meta"]["total"] == 0  # nothing stored


def test_unknown_base_model_message_lists_the_catalogue(client: Any) -> None:
    error = client.post("/behavior-specs", spec(base_model="gpt-4")).json()["error"]
    assert (
        "meta-llama/Llama-3.2-3B-Instruct" in error["message"] and "tunedtensor/tiny-chat" in error["message"]
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [(b"{not json", "body"), (b"[1, 2]", "body"), (b'"text"', "body")],
)
def test_unparseable_or_non_object_bodies(client: Any, raw: bytes, field: str) -> None:
    response = client.post("/behavior-specs", raw=raw)
    assert response.status == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"][0]["field"] == field


def test_empty_post_body_is_an_empty_object(client: Any) -> None:
    response = client.post("/behavior-specs", raw=b"", headers={"Content-Type": "text/plain"})
    assert response.status == 400
    assert [d["field"] for d in response.json()["error"]["details"]] == ["name", "examples"]


def test_read_only_fields_are_ignored_and_null_prose_is_empty(client: Any) -> None:
    body = spec(
        id="00000000-0000-4000-8000-000000000000",
        created_at="2020-01-01T00:00:00.000Z",
        updated_at="2020-01-01T00:00:00.000Z",
        _run_count=9,
        description=None,
        system_prompt=None,
    )
    response = client.post("/behavior-specs", body)
    assert response.status == 201, response.json()
    data = response.json()["data"]
    assert data["id"] != body["id"] and data["created_at"] != body["created_at"]
    assert data["description"] == "" and data["system_prompt"] == ""


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("META-LLAMA/LLAMA-3.2-3B-INSTRUCT", "meta-llama/Llama-3.2-3B-Instruct"),
        ("phi-4-mini-instruct", "microsoft/Phi-4-mini-instruct"),
        ("Qwen/Qwen3.5-2B-Base", "Qwen/Qwen3.5-2B"),
        ("google/gemma-4-E4B", "google/gemma-4-E4B-it"),
        ("meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.2-3B-Instruct"),
        ("tiny-chat", "tunedtensor/tiny-chat"),
    ],
)
def test_base_model_aliases_are_stored_canonical(client: Any, alias: str, canonical: str) -> None:
    assert client.post("/behavior-specs", spec(base_model=alias)).json()["data"]["base_model"] == canonical


UPDATE_CASES = [
    ("empty update", {}, "body"),
    ("name null", {"name": None}, "name"),
    ("examples null", {"examples": None}, "examples"),
    ("no examples", {"examples": []}, "examples"),
    ("guideline too long", {"guidelines": [LONG]}, "guidelines.0"),
    ("unknown field", {"colour": "red"}, "colour"),
    ("unknown base model", {"base_model": "gpt-4"}, "base_model"),
    ("id differs from path", {"id": "00000000-0000-4000-8000-000000000000", "name": "x"}, "id"),
]


@pytest.mark.parametrize(("case", "body", "field"), UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_update_rules(client: Any, case: str, body: dict[str, Any], field: str) -> None:
    created = client.post("/behavior-specs", spec()).json()["data"]
    response = client.put(f"/behavior-specs/{created['id']}", body)
    assert response.status == 400, response.json()
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"][0]["field"] == field
    assert (
        client.get(f"/behavior-specs/{created['id']}").json()["data"]["updated_at"] == created["updated_at"]
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "query.page"),
        ("per_page=0", "query.per_page"),
        ("per_page=101", "query.per_page"),
        ("page=abc", "query.page"),
    ],
)
def test_pagination_rules(client: Any, query: str, field: str) -> None:
    for path in ("/behavior-specs", "/api-keys"):
        response = client.get(path, query=query)
        assert response.status == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert response.json()["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"If-Match": "yesterday"}, "header.If-Match"),
        ({"X-Tuned-Tensor-Expected-Updated-At": "soon"}, "header.X-Tuned-Tensor-Expected-Updated-At"),
    ],
)
def test_precondition_header_rules(client: Any, headers: dict[str, str], field: str) -> None:
    created = client.post("/behavior-specs", spec()).json()["data"]
    response = client.put(f"/behavior-specs/{created['id']}", {"name": "x"}, headers=headers)
    assert response.status == 400
    assert response.json()["error"]["details"][0]["field"] == field


@pytest.mark.parametrize("key", ["", "k" * 256, "naïve"])
def test_idempotency_key_rules(client: Any, key: str) -> None:
    response = client.post("/behavior-specs", spec(), headers={"Idempotency-Key": key})
    assert response.status == 400
    assert response.json()["error"]["details"][0]["field"] == "header.Idempotency-Key"


@pytest.mark.parametrize(
    ("body", "field"), [({}, "name"), ({"name": ""}, "name"), ({"name": "k", "x": 1}, "x")]
)
def test_api_key_rules(client: Any, body: dict[str, Any], field: str) -> None:
    response = client.post("/api-keys", body)
    assert response.status == 400
    assert response.json()["error"]["details"][0]["field"] == field


def test_a_missing_spec_is_404_before_its_body_is_compared(client: Any) -> None:
    body = {"id": "00000000-0000-4000-8000-000000000001", "name": "x"}
    assert client.put("/behavior-specs/not-a-uuid", body).status == 404
    assert client.put("/behavior-specs/00000000-0000-4000-8000-000000000002", body).status == 404
