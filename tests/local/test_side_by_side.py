"""The API function runs side by side in one process (the threaded local gateway): no request may see
another's event, however their steps interleave (Powertools keeps the current event process-wide)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.api_client import new_account


def test_a_request_that_waits_inside_its_handler_still_acts_for_its_own_account(
    gateway: Any, spec_body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.api import http
    from functions.api.routers import behavior_specs

    alice, bob = new_account(gateway, "alice"), new_account(gateway, "bob")
    assert alice.post("/behavior-specs", {**spec_body, "name": "Alice's"}).status == 201
    bob_resolving = threading.Event()
    real_principal = http.principal

    def principal(router: Any) -> Any:
        if threading.current_thread().name == "alice":
            # Alice's handler pauses before it reads who is calling; Bob's request arrives meanwhile. A
            # handler that is not safe side by side lets Bob's event replace Alice's during the pause.
            bob_resolving.wait(timeout=2)
        else:
            bob_resolving.set()
        return real_principal(router)

    monkeypatch.setattr(behavior_specs, "principal", principal)
    answers: dict[str, Any] = {}
    alice_thread = threading.Thread(
        target=lambda: answers.update(alice=alice.get("/behavior-specs")), name="alice"
    )
    alice_thread.start()
    bob_thread = threading.Thread(target=lambda: answers.update(bob=bob.get("/behavior-specs")), name="bob")
    bob_thread.start()
    alice_thread.join(30)
    bob_thread.join(30)
    assert [spec["name"] for spec in answers["alice"].json()["data"]] == ["Alice's"]
    assert answers["bob"].json()["data"] == []
