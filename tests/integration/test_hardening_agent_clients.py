"""The hosted `tt` CLI 0.9 against this server: action ids, operation names and its capability (§2.5, §13)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api_client import ApiClient

CAPABILITY = "local_agent_spec_mutation_guards_v1"


def agent_headers(operation: str, action_id: str | None = None) -> dict[str, str]:
    return {"X-Tuned-Tensor-Action-Id": action_id or str(uuid.uuid4()), "X-Tuned-Tensor-Operation": operation}


@pytest.mark.parametrize("authorization", [None, "Bearer tt_not-a-key", "Basic abc"])
def test_version_lists_the_capability_whatever_the_authorization(
    gateway: Any, client: Any, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    anonymous = ApiClient(gateway, None)
    for caller in (anonymous, client):  # the hosted CLI asks with its bearer token
        response = caller.get("/version", headers=headers)
        assert response.status == 200
        assert CAPABILITY in response.json()["data"]["capabilities"]


def test_an_action_id_makes_a_create_idempotent(client: Any, spec_body: dict[str, Any]) -> None:
    headers = agent_headers("create_spec")
    first = client.post("/behavior-specs", spec_body, headers=headers)
    assert first.status == 201 and first.header("Idempotent-Replayed") is None
    again = client.post("/behavior-specs", spec_body, headers=headers)
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    changed = client.post("/behavior-specs", {**spec_body, "name": "Other"}, headers=headers)
    assert changed.status == 409 and changed.json()["error"]["code"] == "idempotency_key_reused"
    assert [s["id"] for s in client.get("/behavior-specs").json()["data"]] == [first.json()["data"]["id"]]


def test_an_idempotency_key_takes_precedence_over_the_action_id(
    client: Any, spec_body: dict[str, Any]
) -> None:
    headers = agent_headers("create_spec")
    for key in ("key-1", "key-2"):
        response = client.post("/behavior-specs", spec_body, headers={**headers, "Idempotency-Key": key})
        assert response.status == 201 and response.header("Idempotent-Replayed") is None
    assert client.get("/behavior-specs").json()["meta"]["total"] == 2


def test_an_action_id_on_put_is_accepted_and_the_guards_still_hold(
    client: Any, spec_body: dict[str, Any]
) -> None:
    created = client.post("/behavior-specs", spec_body, headers=agent_headers("create_spec")).json()["data"]
    path = f"/behavior-specs/{created['id']}"
    guard = {"X-Tuned-Tensor-Expected-Updated-At": created["updated_at"]}
    updated = client.put(path, {"name": "v2"}, headers={**agent_headers("update_spec"), **guard})
    assert updated.status == 200 and updated.json()["data"]["name"] == "v2"
    stale = client.put(path, {"name": "v3"}, headers={**agent_headers("update_spec"), **guard})
    assert stale.status == 409 and stale.json()["error"]["code"] == "spec_modified"


def test_an_operation_that_does_not_match_the_request_is_refused(
    client: Any, spec_body: dict[str, Any]
) -> None:
    wrong_create = client.post("/behavior-specs", spec_body, headers=agent_headers("update_spec"))
    assert wrong_create.status == 400
    assert wrong_create.json()["error"]["details"] == [
        {"field": "header.X-Tuned-Tensor-Operation", "message": "must be create_spec on this request"}
    ]
    assert client.get("/behavior-specs").json()["meta"]["total"] == 0
    spec_id = client.post("/behavior-specs", spec_body).json()["data"]["id"]
    wrong_update = client.put(
        f"/behavior-specs/{spec_id}", {"name": "v2"}, headers=agent_headers("create_spec")
    )
    assert wrong_update.status == 400
    assert wrong_update.json()["error"]["message"].startswith(
        "Request header X-Tuned-Tensor-Operation is invalid"
    )
    assert client.get(f"/behavior-specs/{spec_id}").json()["data"]["name"] == spec_body["name"]


def test_an_action_id_that_is_no_header_value_is_refused(client: Any, spec_body: dict[str, Any]) -> None:
    response = client.post("/behavior-specs", spec_body, headers=agent_headers("create_spec", "x" * 256))
    assert response.status == 400
    assert response.json()["error"]["details"][0]["field"] == "header.X-Tuned-Tensor-Action-Id"
