"""Spec files other Tuned Tensor clients write (PRODUCT.md §7): local-only keys, ids from elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cli.conftest import Api, write

LOCAL_ONLY = {
    "hyperparameters": {"n_epochs": 3, "learning_rate": 0.0002},
    "dataset_prebuilt": "data/train.jsonl",
}


def test_eval_accepts_local_only_keys_without_complaint(run: Any, spec: dict[str, Any]) -> None:
    write("tunedtensor.json", {**spec, **LOCAL_ONLY})
    result = run("eval", "--json")
    assert result.code == 0
    checks = {check["name"]: check for check in result.json["checks"]}
    assert checks["unknown_keys"]["passed"] is True
    text = run("eval")
    assert text.code == 0 and "hyperparameters" not in text.out + text.err


def test_push_never_sends_local_only_keys_and_keeps_them_in_the_file(
    run: Any, authed: Api, spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
        if method in ("POST", "PUT"):
            sent.append(json.loads(kwargs["data"]) if kwargs.get("data") else kwargs.get("json"))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    write("tunedtensor.json", {**spec, **LOCAL_ONLY})
    created = run("push")
    assert created.code == 0, created.err
    assert "unknown_keys" not in created.err
    saved = json.loads(Path("tunedtensor.json").read_text())
    assert {key: saved[key] for key in LOCAL_ONLY} == LOCAL_ONLY
    assert run("push").code == 0  # the update too
    assert len(sent) == 2 and all(not set(LOCAL_ONLY) & set(body) for body in sent)


@pytest.mark.parametrize("stale_id", ["6f1c2a1e-0000-4000-8000-000000000000", "spec-from-another-server"])
def test_push_with_a_stale_id_creates_the_spec_and_writes_the_new_id(
    run: Any, authed: Api, spec: dict[str, Any], stale_id: str
) -> None:
    write("tunedtensor.json", {"id": stale_id, **spec})
    result = run("push")
    assert result.code == 0, result.err
    saved = json.loads(Path("tunedtensor.json").read_text())
    listed = requests.get(
        f"{authed.base_url}/api/v1/behavior-specs",
        headers={"Authorization": f"Bearer {authed.key}"},
        timeout=10,
    ).json()["data"]
    assert [s["id"] for s in listed] == [saved["id"]] and saved["id"] != stale_id
    assert list(saved) == ["id", *spec]  # the id replaced in place
    assert f"Behaviour spec {stale_id} no longer exists on this server" in result.err
    assert f"Created behaviour spec {saved['id']}" in result.out
    again = run("push", "--json")  # the new id is used from now on
    assert again.code == 0 and again.json["data"]["id"] == saved["id"]
