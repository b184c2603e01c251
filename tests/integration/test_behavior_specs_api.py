"""Behaviour specs through the in-process gateway: shapes, validation, concurrency, idempotency, isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest

SPEC_FIELDS = {
    "id",
    "name",
    "description",
    "system_prompt",
    "guidelines",
    "constraints",
    "examples",
    "base_model",
    "eval_cases",
    "created_at",
    "updated_at",
}


def create(client: Any, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = client.post("/behavior-specs", body, **kwargs)
    assert response.status == 201, response.json()
    return response.json()["data"]


def test_create_returns_the_spec_with_defaults_and_etag(client: Any, spec_body: dict[str, Any]) -> None:
    del spec_body["base_model"]
    response = client.post("/behavior-specs", spec_body)
    assert response.status == 201
    spec = response.json()["data"]
    assert set(spec) == SPEC_FIELDS
    assert spec["description"] == "" and spec["eval_cases"] == []
    assert spec["base_model"] == "tunedtensor/tiny-chat"  # the local stack's default_base_model
    assert spec["id"] == spec["id"].lower() and len(spec["id"]) == 36
    assert spec["created_at"].endswith("Z") and len(spec["created_at"]) == 24
    assert response.header("ETag") == f'"{spec["updated_at"]}"'
    assert response.header("X-Request-Id")


def test_list_is_paginated_newest_first_with_run_fields(client: Any, spec_body: dict[str, Any]) -> None:
    ids = [create(client, {**spec_body, "name": f"spec {i}"})["id"] for i in range(3)]
    page = client.get("/behavior-specs", query="page=1&per_page=2").json()
    assert page["meta"] == {"page": 1, "per_page": 2, "total": 3}
    assert [s["id"] for s in page["data"]] == ids[::-1][:2]
    first = page["data"][0]
    assert first["_example_count"] == 1
    assert first["_run_count"] == 0
    assert first["_latest_run_status"] is None and first["_latest_run_score"] is None
    second = client.get("/behavior-specs", query="page=2&per_page=2").json()
    assert [s["id"] for s in second["data"]] == [ids[0]]
    past_end = client.get("/behavior-specs", query="page=9").json()
    assert past_end["data"] == [] and past_end["meta"]["total"] == 3


def test_get_has_runs_and_run_count(client: Any, spec_body: dict[str, Any]) -> None:
    spec = create(client, spec_body)
    response = client.get(f"/behavior-specs/{spec['id'].upper()}")  # ids match case-insensitively
    assert response.status == 200
    data = response.json()["data"]
    assert data["_runs"] == [] and data["_run_count"] == 0
    assert data["examples"] == spec_body["examples"]
    assert response.header("ETag") == f'"{spec["updated_at"]}"'


def test_put_is_partial_and_moves_updated_at(client: Any, spec_body: dict[str, Any]) -> None:
    spec = create(client, spec_body)
    examples = [*spec_body["examples"], {"input": "New question", "output": "New answer"}]
    response = client.put(f"/behavior-specs/{spec['id']}", {"examples": examples})
    assert response.status == 200
    updated = response.json()["data"]
    assert updated["examples"] == examples
    assert updated["name"] == spec["name"] and updated["guidelines"] == spec["guidelines"]
    assert updated["updated_at"] > spec["updated_at"]
    assert updated["created_at"] == spec["created_at"]
    again = client.put(f"/behavior-specs/{spec['id']}", {"name": "Renamed"}).json()["data"]
    assert again["updated_at"] > updated["updated_at"]
    assert client.get(f"/behavior-specs/{spec['id']}").json()["data"]["name"] == "Renamed"


def test_put_accepts_the_object_it_returned(client: Any, spec_body: dict[str, Any]) -> None:
    spec = client.get(f"/behavior-specs/{create(client, spec_body)['id']}").json()["data"]
    spec["name"] = "Round trip"
    response = client.put(f"/behavior-specs/{spec['id']}", spec)
    assert response.status == 200, response.json()
    assert response.json()["data"]["name"] == "Round trip"


@pytest.mark.parametrize("header", ["If-Match", "X-Tuned-Tensor-Expected-Updated-At"])
def test_put_with_a_stale_precondition_is_409_and_changes_nothing(
    client: Any, spec_body: dict[str, Any], header: str
) -> None:
    spec = create(client, spec_body)
    fresh = client.put(
        f"/behavior-specs/{spec['id']}", {"name": "v2"}, headers={header: f'"{spec["updated_at"]}"'}
    )
    assert fresh.status == 200
    stale = client.put(f"/behavior-specs/{spec['id']}", {"name": "v3"}, headers={header: spec["updated_at"]})
    assert stale.status == 409
    assert stale.json()["error"]["code"] == "spec_modified"
    assert client.get(f"/behavior-specs/{spec['id']}").json()["data"]["name"] == "v2"
    star = client.put(f"/behavior-specs/{spec['id']}", {"name": "v4"}, headers={"If-Match": "*"})
    assert star.status == 200


def test_delete_is_204_then_404(client: Any, spec_body: dict[str, Any]) -> None:
    spec = create(client, spec_body)
    response = client.delete(f"/behavior-specs/{spec['id']}")
    assert response.status == 204 and response.body == b""
    assert client.get(f"/behavior-specs/{spec['id']}").status == 404
    assert client.delete(f"/behavior-specs/{spec['id']}").status == 404
    assert client.get("/behavior-specs").json()["meta"]["total"] == 0


@pytest.mark.parametrize("path_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000"])
def test_unknown_or_malformed_ids_are_404(client: Any, path_id: str) -> None:
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/behavior-specs/{path_id}")
        assert response.status == 404
        assert response.json() == {"error": {"code": "not_found", "message": "Behaviour spec not found"}}
    assert client.put(f"/behavior-specs/{path_id}", {"name": "x"}).status == 404


def test_idempotency_key_replays_and_guards(client: Any, spec_body: dict[str, Any]) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = client.post("/behavior-specs", spec_body, headers=headers)
    replay = client.post("/behavior-specs", dict(reversed(list(spec_body.items()))), headers=headers)
    assert first.status == replay.status == 201
    assert replay.json() == first.json()
    assert replay.header("Idempotent-Replayed") == "true"
    assert first.header("Idempotent-Replayed") is None
    assert client.get("/behavior-specs").json()["meta"]["total"] == 1
    reused = client.post("/behavior-specs", {**spec_body, "name": "other"}, headers=headers)
    assert reused.status == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    # Only 2xx responses are remembered: a failed request may be retried with the same key.
    bad = client.post("/behavior-specs", {"name": "x"}, headers={"Idempotency-Key": "k2"})
    assert bad.status == 400
    assert client.post("/behavior-specs", spec_body, headers={"Idempotency-Key": "k2"}).status == 201


def test_idempotency_key_in_progress_is_409(client: Any, spec_body: dict[str, Any]) -> None:
    from tt_core import wiring

    principal = wiring.api_key_service().authenticate(f"Bearer {client.key}")
    seen: dict[str, Any] = {}

    def first_request_still_running() -> tuple[int, Any]:
        seen["second"] = client.post("/behavior-specs", spec_body, headers={"Idempotency-Key": "busy"})
        return 201, {}

    wiring.idempotency_service().run(
        account_id=principal.account_id,
        scope="POST /behavior-specs",
        key="busy",
        body=spec_body,
        action=first_request_still_running,
    )
    assert seen["second"].status == 409
    assert seen["second"].json()["error"]["code"] == "idempotency_key_in_progress"


def test_tenant_isolation(client: Any, other_client: Any, spec_body: dict[str, Any]) -> None:
    spec = create(client, spec_body)
    path = f"/behavior-specs/{spec['id']}"
    assert other_client.get(path).status == 404
    assert other_client.put(path, {"name": "stolen"}).status == 404
    assert other_client.delete(path).status == 404
    assert other_client.get("/behavior-specs").json() == {
        "data": [],
        "meta": {"page": 1, "per_page": 20, "total": 0},
    }
    assert client.get(path).json()["data"]["name"] == spec_body["name"]


def test_large_specs_are_stored_whole(client: Any, aws: dict[str, Any], spec_body: dict[str, Any]) -> None:
    import boto3

    def stored_documents() -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=aws["bucket"], Prefix="accounts/")
        return [o["Key"] for o in listing.get("Contents", []) if "/specs/" in o["Key"]]

    import random
    import string

    rng = random.Random(7)
    # ~2.4 MB of incompressible text: more than a DynamoDB item holds, so it is stored as an object.
    text = "".join(rng.choice(string.ascii_letters) for _ in range(80_000))
    spec_body["examples"] = [{"input": f"{i} {text}", "output": text[::-1]} for i in range(15)]
    spec = create(client, spec_body)
    stored = client.get(f"/behavior-specs/{spec['id']}").json()["data"]
    assert stored["examples"] == spec_body["examples"]
    assert [key.rsplit("/", 1)[1] for key in stored_documents()] == ["v1.json.gz"]
    spec_body["examples"][0]["output"] = "short"
    assert client.put(f"/behavior-specs/{spec['id']}", {"examples": spec_body["examples"]}).status == 200
    assert client.get(f"/behavior-specs/{spec['id']}").json()["data"]["examples"][0]["output"] == "short"
    assert [key.rsplit("/", 1)[1] for key in stored_documents()] == ["v2.json.gz"]  # v1 is removed
    assert client.delete(f"/behavior-specs/{spec['id']}").status == 204
    assert stored_documents() == []


def test_request_body_over_6_mb_is_413(client: Any) -> None:
    response = client.post("/behavior-specs", raw=b'{"name": "' + b"x" * (6 * 1024 * 1024) + b'"}')
    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_body_under_6_mb_whose_escaped_event_is_over_lambdas_limit_is_413(client: Any) -> None:
    """Lambda counts the event, where the body is a JSON-escaped string: 4 MB of quotes is 8 MB there."""
    body = json.dumps({"name": "n", "description": '"' * (2 * 1024 * 1024)}).encode()  # 4 MB: \" each
    assert len(body) < 6 * 1024 * 1024 < len(json.dumps(body.decode()))
    response = client.post("/behavior-specs", raw=body)
    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unexpected_failures_are_500_without_internals(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tt_core import wiring

    def broken() -> Any:
        raise RuntimeError("secret table name tt-local-xyz exploded")

    with monkeypatch.context() as patch:
        patch.setattr(wiring, "spec_service", broken)
        response = client.get("/behavior-specs")
    assert response.status == 500
    request_id = response.header("X-Request-Id")
    assert response.json() == {
        "error": {"code": "internal_error", "message": f"Internal error (request {request_id})"}
    }


def test_large_replays_belong_to_their_own_key(client: Any, spec_body: dict[str, Any]) -> None:
    import random
    import string

    rng = random.Random(3)
    # Responses too large for an item are kept as objects: two keys with one body must not collide.
    text = "".join(rng.choice(string.ascii_letters) for _ in range(60_000))
    spec_body["examples"] = [{"input": f"{i} {text}", "output": text} for i in range(8)]
    first = client.post("/behavior-specs", spec_body, headers={"Idempotency-Key": "a"}).json()["data"]["id"]
    second = client.post("/behavior-specs", spec_body, headers={"Idempotency-Key": "b"}).json()["data"]["id"]
    assert first != second
    replay = client.post("/behavior-specs", spec_body, headers={"Idempotency-Key": "a"})
    assert replay.header("Idempotent-Replayed") == "true"
    assert replay.json()["data"]["id"] == first
