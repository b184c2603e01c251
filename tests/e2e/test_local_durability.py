"""`kill -9` of a real `tt local up` right after a burst of writes: every acknowledged write survives it."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import RunningStack, free_port, start_stack, stop_stack

ROWS = b'{"input": "Where are invoices?", "output": "Billing > Invoices."}\n'


def call(stack: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.api_key}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{stack.base_url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def spec(index: int) -> dict[str, Any]:
    return {
        "name": f"spec {index}",
        "examples": [{"input": f"question {index}", "output": f"answer {index}"}],
        "eval_cases": [{"case": index}],
    }


def burst_of_writes(stack: RunningStack) -> dict[str, Any]:
    """Creates, updates and deletes in parallel; returns what the API acknowledged."""

    def create(index: int) -> dict[str, Any]:
        response = call(stack, "POST", "/behavior-specs", json=spec(index))
        assert response.status_code == 201, response.text
        return dict(response.json()["data"])

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, range(40)))
        updates = list(
            pool.map(
                lambda s: call(stack, "PUT", f"/behavior-specs/{s['id']}", json={"name": "renamed"}),
                created[:10],
            )
        )
        deletes = list(
            pool.map(lambda s: call(stack, "DELETE", f"/behavior-specs/{s['id']}"), created[10:15])
        )
    assert [r.status_code for r in updates] == [200] * 10 and [r.status_code for r in deletes] == [204] * 5
    key = call(stack, "POST", "/api-keys", json={"name": "second"})
    assert key.status_code == 201
    upload = call(
        stack,
        "POST",
        "/datasets/upload-url",
        json={"name": "rows", "filename": "rows.jsonl", "size": len(ROWS)},
    ).json()["data"]
    put = requests.put(upload["upload_url"], headers=upload["headers"], data=ROWS, timeout=30)
    assert put.status_code == 200
    names = {s["id"]: ("renamed" if i < 10 else s["name"]) for i, s in enumerate(created) if not 10 <= i < 15}
    return {
        "specs": names,
        "deleted": {s["id"] for s in created[10:15]},
        "key": key.json()["data"],
        "dataset": upload,
    }


def listed(stack: RunningStack, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = call(stack, "GET", path, params={"page": page, "per_page": 100}).json()
        items += body["data"]
        if len(items) >= body["meta"]["total"] or not body["data"]:
            return items
        page += 1


def test_kill_9_after_a_burst_of_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / ".tt-local"
    stack = start_stack(data_dir, free_port(), tmp_path)
    try:
        acknowledged = burst_of_writes(stack)
    finally:
        os.kill(stack.process.pid, signal.SIGKILL)  # no clean stop, no last snapshot
        stack.process.wait(timeout=30)
    started = time.monotonic()
    stack = start_stack(data_dir, free_port(), tmp_path)
    try:
        restart_s = time.monotonic() - started
        specs = {s["id"]: s for s in listed(stack, "/behavior-specs")}
        assert {spec_id: s["name"] for spec_id, s in specs.items()} == acknowledged["specs"]
        assert not acknowledged["deleted"] & set(specs)
        assert all(s["eval_cases"] and s["examples"] for s in specs.values())
        assert acknowledged["key"]["id"] in {k["id"] for k in listed(stack, "/api-keys")}
        dataset = call(stack, "GET", f"/datasets/{acknowledged['dataset']['dataset_id']}")
        assert dataset.status_code == 200
        # The uploaded bytes were kept too (objects are written through to the data dir).
        key = acknowledged["dataset"]["path"].split("/", 3)[3]
        blobs = list((data_dir / "state" / "blobs").glob(f"*/{hashlib.sha256(key.encode()).hexdigest()}"))
        assert [blob.read_bytes() for blob in blobs] == [ROWS]
        # The restart folded the journal into the snapshot: nothing left to replay.
        assert (data_dir / "state" / "journal.jsonl").stat().st_size < 10_000
        assert restart_s < 60
    finally:
        stop_stack(stack)
