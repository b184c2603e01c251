"""The local stack's API and authorizer functions in a pool of worker processes.

On AWS each concurrent invocation gets its own execution environment; here each worker process is one.
Requests are answered side by side on several cores (one process is bound to one by the GIL), and no
request can see another's state. The emulated services stay in the stack's process; workers reach them
over HTTP with the stack's credentials, which they inherit from its environment.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tt_local.gateway import GatewayResponse, LocalGateway, error_response
from tt_trainer.parent_watch import STACK_PID_VARIABLE, watch_parent

# Two per core would only queue inside the workers; at least two, so one slow request never blocks all.
DEFAULT_WORKERS = max(2, min(4, os.cpu_count() or 1))

_gateway: LocalGateway | None = None


def _start_worker(log_path: str | None) -> None:
    global _gateway
    # Ctrl-C reaches the whole process group: the stack stops its workers itself. A stack killed with -9
    # cannot: then a worker ends once the stack's process is gone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent({STACK_PID_VARIABLE: str(os.getppid())}, lambda: os._exit(0), grace=0)
    if log_path is not None:
        from tt_local.stack import route_logs

        route_logs(Path(log_path))
    from functions.api.handler import lambda_handler as api
    from functions.authorizer.handler import lambda_handler as authorizer
    from tt_local import adapters

    adapters.install()  # the playground's generator, and the launcher a cancel stops trainers with
    _gateway = LocalGateway(api, authorizer)


def _handle(method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> GatewayResponse:
    assert _gateway is not None, "the worker's initializer did not run"
    return _gateway.handle(method, raw_path, query, headers, body)


def _ready() -> int:
    return os.getpid()


class WorkerGateway:
    """LocalGateway.handle, answered by a pool of worker processes."""

    def __init__(self, workers: int = DEFAULT_WORKERS, log_path: Path | None = None) -> None:
        self._workers = workers
        self._log_path = None if log_path is None else str(log_path)
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self._workers,
            # Not fork: the stack's process runs threads (moto's server, the workflow) a fork would copy
            # mid-step.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._log_path,),
        )

    def warm(self) -> None:
        """Starts every worker now, so the first requests do not wait for their imports."""
        for future in [self._pool.submit(_ready) for _ in range(self._workers)]:
            future.result()

    def handle(
        self, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> GatewayResponse:
        pool = self._pool
        try:
            return pool.submit(_handle, method, raw_path, query, dict(headers), body).result()
        except BrokenProcessPool:  # a worker died (killed, out of memory): answer 502, start afresh
            with self._lock:
                if self._pool is pool:
                    self._pool = self._new_pool()
            return error_response(502, "internal_error", "The API worker process ended unexpectedly.")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
