"""Seed document 000's curl examples against a real `tt local up`, with only the host and key changed."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import requests

from tests.e2e.conftest import RunningStack, free_port, start_stack, stop_stack

# Verbatim from ../shared/seeds/000 (the customer's docs); the host, key and id are substituted.
CREATE = """curl -X POST https://api.tunedtensor.com/v1/behavior-specs \\
-H "Authorization: Bearer tt_your_api_key" \\
-H "Content-Type: application/json" \\
-d '{
"name": "Customer Support Bot",
"system_prompt": "You are a helpful support agent...",
"guidelines": ["Be concise"],
"constraints": ["Never promise refunds"],
"examples": [
{"input": "How do I cancel?", "output": "Go to Settings > Billing..."}
],
"base_model": "meta-llama/Llama-3.2-3B-Instruct"
}'"""
LIST = """curl https://api.tunedtensor.com/v1/behavior-specs \\
-H "Authorization: Bearer tt_your_api_key\""""
GET = """curl https://api.tunedtensor.com/v1/behavior-specs/cafd8799-... \\
-H "Authorization: Bearer tt_your_api_key\""""
UPDATE = """curl -X PUT https://api.tunedtensor.com/v1/behavior-specs/cafd8799-... \\
-H "Authorization: Bearer tt_your_api_key" \\
-H "Content-Type: application/json" \\
-d '{
"examples": [
...existing examples...,
{"input": "New question", "output": "New answer"}
]
}'"""
DELETE = """curl -X DELETE https://api.tunedtensor.com/v1/behavior-specs/cafd8799-... \\
-H "Authorization: Bearer tt_your_api_key\""""


def curl(stack: RunningStack, command: str, spec_id: str = "", **placeholders: str) -> tuple[int, Any]:
    command = command.replace("https://api.tunedtensor.com", stack.base_url)
    command = command.replace("tt_your_api_key", stack.api_key).replace("cafd8799-...", spec_id)
    for placeholder, value in placeholders.items():
        command = command.replace(placeholder, value)
    command = command.replace("curl ", "curl -sS -w '\\n%{http_code}' ", 1)
    output = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True).stdout
    body, _, status = output.rpartition("\n")
    return int(status), json.loads(body) if body else None


def test_seed_000_curl_examples(local_stack: RunningStack) -> None:
    status, created = curl(local_stack, CREATE)
    assert status == 201
    spec = created["data"]
    assert spec["name"] == "Customer Support Bot" and spec["base_model"] == "meta-llama/Llama-3.2-3B-Instruct"
    assert {"id", "description", "examples", "created_at", "updated_at"} <= set(spec)

    status, listed = curl(local_stack, LIST)
    assert status == 200
    assert listed["meta"]["total"] >= 1
    row = next(s for s in listed["data"] if s["id"] == spec["id"])
    assert {"_run_count", "_latest_run_status", "_latest_run_score"} <= set(row)

    status, got = curl(local_stack, GET, spec["id"])
    assert status == 200
    assert got["data"]["_runs"] == [] and got["data"]["_run_count"] == 0

    existing = json.dumps(got["data"]["examples"])[1:-1]
    status, updated = curl(local_stack, UPDATE, spec["id"], **{"...existing examples...": existing})
    assert status == 200
    assert updated["data"]["examples"][-1] == {"input": "New question", "output": "New answer"}
    assert len(updated["data"]["examples"]) == 2

    status, deleted = curl(local_stack, DELETE, spec["id"])
    assert status == 204 and deleted is None
    assert curl(local_stack, GET, spec["id"])[0] == 404


def test_stage_paths_errors_and_docs_over_http(local_stack: RunningStack) -> None:
    api = f"{local_stack.base_url}/api/v1"
    auth = {"Authorization": f"Bearer {local_stack.api_key}"}
    assert requests.get(f"{api}/behavior-specs", headers=auth, timeout=10).status_code == 200
    missing = requests.get(f"{api}/behavior-specs", timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["X-Request-Id"]
    assert requests.get(f"{api}/version", timeout=10).json()["data"]["mode"] == "local"
    assert requests.get(f"{api}/docs", timeout=10).headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{api}/openapi.json", timeout=10).json()["openapi"].startswith("3.1")


def test_specs_survive_a_restart_and_a_busy_port_is_refused(tmp_path: Any) -> None:
    port = free_port()
    stack = start_stack(tmp_path / "data", port, tmp_path)
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    body = {"name": "Persistent", "examples": [{"input": "a", "output": "b"}]}
    try:
        created = requests.post(
            f"{stack.base_url}/api/v1/behavior-specs", json=body, headers=auth, timeout=10
        )
        assert created.status_code == 201
        with pytest.raises(AssertionError, match="exited with 1"):
            start_stack(tmp_path / "other", port, tmp_path)
    finally:
        assert stop_stack(stack) == 0
    again = start_stack(tmp_path / "data", free_port(), tmp_path)
    try:
        assert again.api_key == stack.api_key
        got = requests.get(
            f"{again.base_url}/api/v1/behavior-specs/{created.json()['data']['id']}", headers=auth, timeout=10
        )
        assert got.status_code == 200 and got.json()["data"]["name"] == "Persistent"
    finally:
        stop_stack(again)


def test_local_status_reports_the_running_stack(local_stack: RunningStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tt_cli.main", "local", "status", "--data-dir", str(local_stack.data_dir)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["base_url"] == local_stack.base_url and status["version"] == "0.1.0"


def test_local_status_exits_1_when_nothing_runs(tmp_path: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tt_cli.main", "local", "status", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["running"] is False
