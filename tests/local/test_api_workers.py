"""The local stack's worker processes: they answer as the in-process gateway does, and survive a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import ends_within
from tt_local.api_workers import WorkerGateway, _ready


@pytest.fixture
def workers() -> Iterator[WorkerGateway]:
    gateway = WorkerGateway(workers=1)
    try:
        yield gateway
    finally:
        gateway.close()


def test_a_worker_answers_and_a_killed_one_is_replaced(workers: WorkerGateway) -> None:
    answer = workers.handle("GET", "/api/v1/version", "", {}, b"")
    assert answer.status == 200 and answer.json()["data"]["api_version"] == "v1"
    worker = workers._pool.submit(_ready).result()
    assert worker != os.getpid()  # answered in another process
    os.kill(worker, signal.SIGKILL)  # as the kernel's OOM killer would
    lost = workers.handle("GET", "/api/v1/version", "", {}, b"")
    assert lost.status == 502 and lost.json()["error"]["code"] == "internal_error"
    again = workers.handle("GET", "/api/v1/version", "", {}, b"")
    assert again.status == 200
    assert workers._pool.submit(_ready).result() != worker


def test_workers_end_when_their_stack_is_killed(tmp_path: Path) -> None:
    pids = tmp_path / "workers"
    stack = textwrap.dedent(
        f"""
        import os
        from tt_local.api_workers import WorkerGateway, _ready
        workers = WorkerGateway(workers=1)
        open({str(pids)!r}, "w").write(str(workers._pool.submit(_ready).result()))
        os.kill(os.getpid(), 9)
        """
    )
    subprocess.run([sys.executable, "-c", stack], check=False, timeout=120)
    worker = int(pids.read_text())
    assert ends_within(worker, 30)
