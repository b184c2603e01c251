"""Seed document 001's three-step upload against a real `tt local up`, from Python with requests."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

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


def test_storage_answers_only_the_urls_the_api_signed(local_stack: RunningStack) -> None:
    """Another upload URL moved onto a stored dataset's key, a forged one, an unsigned read: all 403."""
    granted = [
        api(
            local_stack,
            "POST",
            "/datasets/upload-url",
            json={
                "name": f"d{i}",
                "filename": "d.jsonl",
                "size": len(ROWS),
                "contentType": "application/jsonl",
            },
        ).json()["data"]
        for i in range(2)
    ]
    first, second = granted
    assert (
        requests.put(first["upload_url"], headers=first["headers"], data=ROWS, timeout=30).status_code == 200
    )
    storage = urlsplit(first["upload_url"])
    retargeted = urlsplit(second["upload_url"])._replace(path=storage.path).geturl()
    forged = second["upload_url"][:-1] + ("0" if not second["upload_url"].endswith("0") else "1")
    for url in (retargeted, forged):
        answer = requests.put(
            url, headers=second["headers"], data=b'{"input": "x", "output": "y"}\n', timeout=30
        )
        assert answer.status_code == 403, answer.text
    origin = f"{storage.scheme}://{storage.netloc}"
    for method, url in (
        ("GET", origin + storage.path),
        ("GET", origin + "/"),
        ("POST", origin + "/moto-api/reset"),
    ):
        answer = requests.request(method, url, headers={"Origin": "http://evil.example"}, timeout=30)
        assert answer.status_code == 403
        assert "Access-Control-Allow-Origin" not in answer.headers
