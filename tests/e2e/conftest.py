"""A real `tt local up` process on a free port, shared by the end-to-end tests of a module."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class RunningStack:
    base_url: str
    api_key: str
    data_dir: Path
    process: subprocess.Popen[str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_stack(data_dir: Path, port: int, home: Path) -> RunningStack:
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tt_cli.main",
            "local",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    local_json = data_dir / "local.json"
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "ready at" in line:
            info = json.loads(local_json.read_text())
            # Keep reading its output so a full pipe never blocks the stack.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return RunningStack(info["base_url"], info["api_key"], data_dir, process)
        if process.poll() is not None:
            raise AssertionError(f"tt local up exited with {process.returncode}: {process.stdout.read()}")
    process.kill()
    raise AssertionError("tt local up did not become ready in 120 s")


def stop_stack(stack: RunningStack) -> int:
    stack.process.send_signal(signal.SIGINT)
    try:
        return stack.process.wait(timeout=60)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    home = tmp_path_factory.mktemp("home")
    stack = start_stack(home / ".tt-local", free_port(), home)
    yield stack
    stop_stack(stack)
