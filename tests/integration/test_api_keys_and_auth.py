"""API keys and authentication: 401/403 in the envelope, revocation, last_used_at, public paths."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_client import ApiClient


def test_create_list_and_revoke_keys(client: Any) -> None:
    created = client.post("/api-keys", {"name": "ci"})
    assert created.status == 201
    key = created.json()["data"]
    assert set(key) == {"id", "name", "key_prefix", "last_used_at", "created_at", "revoked_at", "key"}
    assert key["key"].startswith("tt_") and len(key["key"]) == 51
    assert key["key_prefix"] == key["key"][:8]
    listed = client.get("/api-keys").json()
    assert listed["meta"]["total"] == 2
    assert all("key" not in item for item in listed["data"])
    assert listed["data"][0]["id"] == key["id"]  # newest first

    assert client.delete(f"/api-keys/{key['id']}").status == 204
    assert client.delete(f"/api-keys/{key['id']}").status == 204  # already revoked: still 204
    revoked = next(k for k in client.get("/api-keys").json()["data"] if k["id"] == key["id"])
    assert revoked["revoked_at"] is not None


def test_revoked_key_is_403(client: Any, gateway: Any) -> None:
    second = client.post("/api-keys", {"name": "temp"}).json()["data"]
    temp = ApiClient(gateway, second["key"])
    assert temp.get("/behavior-specs").status == 200
    assert client.delete(f"/api-keys/{second['id']}").status == 204
    response = temp.get("/behavior-specs")
    assert response.status == 403
    assert response.json() == {"error": {"code": "forbidden", "message": "API key has been revoked."}}


def test_the_last_active_key_cannot_be_revoked(client: Any) -> None:
    own = client.get("/api-keys").json()["data"][0]
    response = client.delete(f"/api-keys/{own['id']}")
    assert response.status == 409
    assert response.json()["error"]["code"] == "last_active_key"
    assert client.get("/behavior-specs").status == 200


def test_last_used_at_is_recorded(client: Any) -> None:
    keys = client.get("/api-keys").json()["data"]
    assert keys[0]["last_used_at"] is not None


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer tt_short",
        "Bearer sk_" + "a" * 48,
        "Bearer tt_" + "a" * 47 + "!",
        "Bearer tt_" + "a" * 48,  # well formed, unknown
    ],
)
def test_missing_malformed_or_unknown_keys_are_401(gateway: Any, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = ApiClient(gateway, None).get("/behavior-specs", headers=headers)
    assert response.status == 401
    body = response.json()
    assert body["error"]["code"] == "unauthorized" and body["error"]["message"]
    assert response.header("X-Request-Id")


def test_bearer_is_case_insensitive(client: Any, gateway: Any) -> None:
    response = ApiClient(gateway, None).get(
        "/behavior-specs", headers={"Authorization": f"bEaReR {client.key}"}
    )
    assert response.status == 200


def test_keys_of_another_account_are_404(client: Any, other_client: Any) -> None:
    key = client.post("/api-keys", {"name": "mine"}).json()["data"]
    assert other_client.delete(f"/api-keys/{key['id']}").status == 404
    assert all(k["id"] != key["id"] for k in other_client.get("/api-keys").json()["data"])


def test_public_paths_need_no_key(gateway: Any) -> None:
    anonymous = ApiClient(gateway, None)
    version = anonymous.get("/version")
    assert version.status == 200
    assert version.json()["data"] == {
        "version": "0.1.0",
        "api_version": "v1",
        "mode": "local",
        "default_base_model": "tunedtensor/tiny-chat",
        "capabilities": [
            "idempotency_keys",
            "spec_concurrency_guards",
            "local_agent_spec_mutation_guards_v1",
            "playground_inference",
        ],
    }
    document = anonymous.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert {
        "/behavior-specs",
        "/behavior-specs/{spec_id}",
        "/api-keys",
        "/api-keys/{key_id}",
        "/version",
    } <= set(document["paths"])
    assert "422" not in str(document["paths"])
    docs = anonymous.get("/docs")
    assert docs.status == 200 and docs.header("Content-Type").startswith("text/html")
    assert b"swagger-ui" in docs.body and b"https://" not in docs.body.split(b"<script>")[0]


def test_unknown_routes_are_404_in_the_envelope(client: Any, gateway: Any) -> None:
    assert client.get("/nothing-here").json()["error"]["code"] == "not_found"
    outside = gateway.handle("GET", "/elsewhere", "", {}, b"")
    assert outside.status == 404 and outside.json()["error"]["code"] == "not_found"
    assert client.request("PATCH", "/behavior-specs").status == 404
