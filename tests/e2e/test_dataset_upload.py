"""Seed document 001's three-step upload against a real `tt local up`, from Python with requests."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.e2e.conftest import RunningStack

ROWS = (
    b'{"input": "How do I reset my password?", "output": "Go to Settings > Security."}\n'
    b'{"input": "Where can I see invoices?", "output": "Open Billing > Invoices from the dashboard."}\n'
)


def api(stack: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    return requests.request(method, f"{stack.base_url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def test_seed_001_upload_flow(local_stack: RunningStack) -> None:
    # 1. Request an upload URL from the app API.
    upload_url = api(
        local_stack,
        "POST",
        "/datasets/upload-url",
        json={
            "name": "my-training-data",
            "description": "Custom training dataset",
            "filename": "training.jsonl",
            "size": len(ROWS),
            "contentType": "application/octet-stream",
        },
    ).json()
    # 2. Upload the file directly to storage with the returned method and headers.
    put = requests.request(
        upload_url["data"]["method"], upload_url["data"]["upload_url"], headers=upload_url["data"]["headers"],
        data=ROWS, timeout=30,
    )  # fmt: skip
    assert put.status_code == 200, put.text
    # 3. Finalize and validate the uploaded dataset.
    finalized = api(
        local_stack,
        "POST",
        "/datasets/finalize",
        json={
            "path": upload_url["data"]["path"],
            "name": "my-training-data",
            "description": "Custom training dataset",
        },
    )
    assert finalized.status_code == 200
    dataset = finalized.json()["data"]
    deadline = time.monotonic() + 30
    while dataset["status"] not in ("validated", "invalid") and time.monotonic() < deadline:
        time.sleep(0.2)
        dataset = api(local_stack, "GET", f"/datasets/{dataset['id']}").json()["data"]
    assert dataset["status"] == "validated"
    assert dataset["row_count"] == 2 and dataset["file_size_bytes"] == len(ROWS)
    assert dataset["name"] == "my-training-data" and dataset["format"] == "jsonl"
    listed = api(local_stack, "GET", "/datasets").json()
    assert dataset["id"] in [d["id"] for d in listed["data"]]
    assert api(local_stack, "DELETE", f"/datasets/{dataset['id']}").status_code == 204
    assert api(local_stack, "GET", f"/datasets/{dataset['id']}").status_code == 404
