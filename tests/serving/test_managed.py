"""Managed mode (PRODUCT.md §15.5) around a fast fake model server: start on demand, idle stop, restarts,
failed forwards, arrival order and the JSONL request log."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tt_serve.managed import ManagedConfig, ManagedServer

ROOT = Path(__file__).resolve().parents[2]


class Wrapper:
    def __init__(self, server: ManagedServer, log: io.StringIO) -> None:
        self.server = server
        self.log = log
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    def health(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/health", timeout=5).json())

    def chat(self, content: str, **body: Any) -> requests.Response:
        payload = {"messages": [{"role": "user", "content": content}], **body}
        return requests.post(f"{self.url}/v1/chat/completions", json=payload, timeout=60)

    def records(self, count: int = 0) -> list[dict[str, Any]]:
        """The log, once it has `count` lines: a request's line is written just after its answer is sent."""
        deadline = time.monotonic() + 10
        while len(lines := self.log.getvalue().splitlines()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [json.loads(line) for line in lines]


@pytest.fixture
def managed() -> Iterator[Any]:
    started: list[ManagedServer] = []

    def start(**settings: Any) -> Wrapper:
        paths = [ROOT, ROOT / "cli", ROOT / "layers/core/python", ROOT / "training_image"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
        config = ManagedConfig(
            command=[sys.executable, "-m", "tests.serving.fake_model_server"],
            env=env,
            model_name="support-bot",
            model_path="/models/support-bot/model",
            **settings,
        )
        log = io.StringIO()
        server = ManagedServer(("127.0.0.1", 0), config, log)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return Wrapper(server, log)

    yield start
    for server in started:
        server.shutdown()
        server.server_close()
        assert not server.child.running  # the model server never outlives the wrapper


def test_the_model_starts_with_the_first_request_and_every_request_is_logged(managed: Any) -> None:
    wrapper = managed()
    assert wrapper.health() == {"status": "ok", "wrapper": True, "model_status": "cold", "restart_count": 0}
    response = wrapper.chat("please process this")
    assert response.status_code == 200, response.text
    reply = json.loads(response.json()["choices"][0]["message"]["content"])
    assert reply == {"should_process": True, "echo": "please process this"}
    assert response.headers["X-Request-Id"].startswith("ttreq-")
    assert _settled(wrapper)["model_status"] == "warm"
    skipped = wrapper.chat("skip this one", stream=True, stream_options={"include_usage": True})
    assert skipped.status_code == 200 and skipped.text.endswith("data: [DONE]\n\n")
    assert wrapper.chat("x", max_tokens=0).status_code == 400
    assert wrapper.chat("x", response_format={"type": "json_schema", "json_schema": {"schema": {
        "type": "object", "required": ["missing"]}}}).status_code == 422  # fmt: skip
    assert requests.get(f"{wrapper.url}/v1/models", timeout=5).json()["data"][0]["id"] == "fake"

    first, streamed, bad, invalid, models = wrapper.records(5)
    assert set(first) == {
        "timestamp", "request_id", "route", "model_target", "request_bytes", "response_status", "latency_ms",
        "queued_ms", "prompt_tokens", "completion_tokens", "total_tokens", "schema_validity", "gate_field",
        "gate_result", "restart_count", "error_summary",
    }  # fmt: skip
    assert (
        first["request_id"] == response.headers["X-Request-Id"] and first["route"] == "/v1/chat/completions"
    )
    assert first["model_target"] == {"name": "support-bot", "path": "/models/support-bot/model"}
    assert first["timestamp"].endswith("Z") and first["response_status"] == 200
    assert first["request_bytes"] > 0 and first["latency_ms"] >= first["queued_ms"] >= 0
    assert first["total_tokens"] == first["prompt_tokens"] + first["completion_tokens"] > 0
    assert (first["schema_validity"], first["gate_field"], first["gate_result"]) == (
        True,
        "should_process",
        True,
    )
    assert first["error_summary"] is None and first["restart_count"] == 0
    assert streamed["gate_result"] is False and streamed["total_tokens"] > 0  # read from the stream
    assert (bad["response_status"], bad["schema_validity"], bad["gate_result"]) == (400, None, None)
    assert "max_tokens" in bad["error_summary"]
    assert (invalid["response_status"], invalid["schema_validity"]) == (422, False)
    assert models["route"] == "/v1/models" and models["prompt_tokens"] is None


def _settled(wrapper: Wrapper) -> dict[str, Any]:
    """The health once the wrapper is not busy (a restart happens right after a response is sent)."""
    deadline = time.monotonic() + 30
    while (health := wrapper.health())["model_status"] == "busy" and time.monotonic() < deadline:
        time.sleep(0.1)
    return health


def test_restarts_after_n_requests_and_stops_when_idle(managed: Any) -> None:
    wrapper = managed(restart_after_requests=2, idle_timeout=1.0)
    wrapper.chat("one")
    first_pid = wrapper.server.child.process.pid if wrapper.server.child.process else None
    wrapper.chat("two")  # the second request triggers the restart, right after its answer
    health = _settled(wrapper)
    assert (health["model_status"], health["restart_count"]) == ("restarted", 1)
    assert wrapper.server.child.process is not None and wrapper.server.child.process.pid != first_pid
    assert wrapper.chat("three").status_code == 200
    assert wrapper.records(3)[-1]["restart_count"] == 1 and _settled(wrapper)["model_status"] == "warm"
    deadline = time.monotonic() + 10
    while wrapper.health()["model_status"] != "cold" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert wrapper.health()["model_status"] == "cold"
    assert wrapper.chat("four").status_code == 200  # started again on demand
    assert wrapper.health()["restart_count"] == 1  # an idle stop is not a restart


def test_a_failed_forward_is_502_and_the_next_request_gets_a_fresh_model(managed: Any) -> None:
    wrapper = managed(restart_after_requests=0)
    assert wrapper.chat("hello").status_code == 200
    crashed = wrapper.chat("__crash__")
    assert crashed.status_code == 502 and "did not answer" in crashed.json()["error"]["message"]
    crash_record = wrapper.records(2)[-1]
    assert crash_record["response_status"] == 502 and crash_record["error_summary"]
    after = wrapper.chat("hello again")
    assert after.status_code == 200
    assert _settled(wrapper)["restart_count"] == 1  # the failed health check restarted it


def test_requests_are_forwarded_one_at_a_time_in_arrival_order(managed: Any) -> None:
    wrapper = managed()
    assert wrapper.chat("warm up").status_code == 200
    replies: dict[int, str] = {}

    def ask(i: int) -> None:
        content = wrapper.chat(f"q{i}").json()["choices"][0]["message"]["content"]
        replies[i] = json.loads(content)["echo"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for i, thread in enumerate(threads):
        thread.start()
        deadline = time.monotonic() + 20  # the next one starts once this one waits for its turn
        while wrapper.server.turns.asked < i + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=30)
    assert replies == {i: f"q{i}" for i in range(4)}
    logged = [r for r in wrapper.records(5) if r["route"] == "/v1/chat/completions"][1:]
    assert len(logged) == 4 and all(r["response_status"] == 200 for r in logged)


def test_a_model_that_cannot_start_is_a_502(managed: Any) -> None:
    wrapper = managed(startup_timeout=30)  # it exits at once: never waited for
    wrapper.server.config.command = [sys.executable, "-c", "import sys; sys.exit(7)"]
    response = wrapper.chat("hello")
    assert response.status_code == 502 and "exited with code 7" in response.json()["error"]["message"]
    assert _settled(wrapper)["model_status"] == "cold"  # busy until just after the answer is sent


def test_stop_seed_and_n_are_honoured_and_checked_through_the_wrapper(managed: Any) -> None:
    wrapper = managed()
    for stream in (False, True):
        response = wrapper.chat("cut me", stop=['"echo"'], seed=3, stream=stream)
        assert response.status_code == 200, response.text
        if stream:
            assert '"finish_reason": "stop"' in response.text and '"echo' not in response.text
        else:
            choice = response.json()["choices"][0]
            assert choice["message"]["content"] == '{"should_process": true, '
            assert choice["finish_reason"] == "stop"
    refused = wrapper.chat("two answers", n=2)
    assert refused.status_code == 400 and "'n'" in refused.json()["error"]["message"]
    assert wrapper.chat("too many", stop=["a", "b", "c", "d", "e"]).status_code == 400
    *_, last = wrapper.records(4)
    assert last["response_status"] == 400 and "'stop'" in last["error_summary"]
