"""Managed mode (PRODUCT.md §15.5): a wrapper that starts the model server on demand, stops it when idle,
restarts it after N requests or a failed health check, and logs one JSON line per request."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from tt_serve.server import CORS_HEADERS, MAX_BODY_BYTES, FifoTurns, serve

STARTUP_TIMEOUT_S = 120.0
STOP_GRACE_S = 5.0
HEALTH_TIMEOUT_S = 5.0
FORWARD_TIMEOUT_S = 600.0
KEPT_RESPONSE_BYTES = 2 * 1024 * 1024  # what the log reads usage and the gate field from
# Hop-by-hop headers are the wrapper's own business, never forwarded.
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
class ManagedConfig:
    command: list[str]  # the model server's command, without --host/--port
    env: dict[str, str]
    model_name: str
    model_path: str
    idle_timeout: float = 300.0
    restart_after_requests: int = 100  # 0 = never
    gate_field: str = "should_process"
    startup_timeout: float = STARTUP_TIMEOUT_S


class ModelServerError(Exception):
    pass


class ModelProcess:
    """The model server child on a random loopback port."""

    def __init__(self, config: ManagedConfig) -> None:
        self._config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.port = free_port()
        command = [*self._config.command, "--host", "127.0.0.1", "--port", str(self.port), "--quiet"]
        self.process = subprocess.Popen(
            command, env=self._config.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self._config.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ModelServerError(f"The model server exited with code {code} while starting.")
            if self.healthy():
                return
            time.sleep(0.2)
        self.stop()
        raise ModelServerError(f"The model server was not healthy within {self._config.startup_timeout:g} s.")

    def healthy(self) -> bool:
        if not self.running:
            return False
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HEALTH_TIMEOUT_S)
            try:
                connection.request("GET", "/health")
                response = connection.getresponse()
                response.read()
                return response.status == 200
            finally:
                connection.close()
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class _Exchange:
    """What one forwarded request produced, for the log."""

    status: int = 0
    kept: bytearray = field(default_factory=bytearray)
    streamed: bool = False
    error: str | None = None


class ManagedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: ManagedConfig, log: IO[str]) -> None:
        super().__init__(address, ManagedHandler)
        self.config = config
        self.child = ModelProcess(config)
        self.turns = FifoTurns()
        self.log = log
        self._log_lock = threading.Lock()
        self.restart_count = 0
        self.served_since_start = 0
        self.busy = False
        self.just_restarted = False
        self.last_activity = time.monotonic()
        self._closing = threading.Event()
        self._reaper = threading.Thread(target=self._stop_when_idle, name="tt-managed-idle", daemon=True)
        self._reaper.start()

    # --- the child's life ----------------------------------------------------------------------
    @property
    def model_status(self) -> str:
        if self.busy:
            return "busy"
        if not self.child.running:
            return "cold"
        return "restarted" if self.just_restarted else "warm"

    def restart(self) -> None:
        self.child.stop()
        self.restart_count += 1
        self.served_since_start = 0
        self.child.start()
        self.just_restarted = True

    def ensure_child(self) -> None:
        """Called inside a turn: start a cold model, restart one that fails its health check."""
        if not self.child.running and self.child.process is None:
            self.child.start()
            self.served_since_start = 0
        elif not self.child.healthy():
            self.restart()

    def after_request(self) -> None:
        self.served_since_start += 1
        self.just_restarted = False
        limit = self.config.restart_after_requests
        if limit and self.served_since_start >= limit:
            self.restart()

    def _stop_when_idle(self) -> None:
        while not self._closing.wait(min(1.0, max(self.config.idle_timeout / 4, 0.05))):
            idle = time.monotonic() - self.last_activity
            if idle >= self.config.idle_timeout and self.child.running and not self.busy:
                with self.turns.turn():
                    if time.monotonic() - self.last_activity >= self.config.idle_timeout and not self.busy:
                        self.child.stop()

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()
        self.child.stop()

    # --- the log -------------------------------------------------------------------------------
    def write_log(self, record: dict[str, Any]) -> None:
        with self._log_lock:
            self.log.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.log.flush()


def _gate(content: str | None, path: str) -> Any:
    """The gate field's value in a JSON reply (dotted path), or None."""
    if not content or not path:
        return None
    try:
        value: Any = json.loads(content)
    except ValueError:
        return None
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _summarise(exchange: _Exchange) -> tuple[dict[str, Any] | None, str | None]:
    """(usage, reply content) from a JSON body or an SSE stream."""
    text = exchange.kept.decode("utf-8", errors="replace")
    if not exchange.streamed:
        try:
            body = json.loads(text)
        except ValueError:
            return None, None
        if not isinstance(body, dict):
            return None, None
        choices = body.get("choices") or [{}]
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        return body.get("usage"), content
    usage, pieces = None, []
    for line in text.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        try:
            event = json.loads(line[6:])
        except ValueError:
            continue
        usage = event.get("usage") or usage
        for choice in event.get("choices") or []:
            pieces.append((choice.get("delta") or {}).get("content") or "")
    return usage, "".join(pieces)


class ManagedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ManagedServer
    timeout = 300
    # Stream chunks are small writes: without TCP_NODELAY each may wait for the previous one's ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the JSONL record is the log

    def _send(self, status: int, payload: Any, request_id: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in CORS_HEADERS.items():
            self.send_header(name, value)
        if request_id:
            self.send_header("X-Request-Id", request_id)
        self.end_headers()
        self.wfile.write(data)

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        for name, value in CORS_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/health":
            server = self.server
            self._send(
                200,
                {
                    "status": "ok",
                    "wrapper": True,
                    "model_status": server.model_status,
                    "restart_count": server.restart_count,
                },
            )
            return
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        server = self.server
        request_id = f"ttreq-{uuid.uuid4()}"
        arrived = time.monotonic()
        server.last_activity = arrived
        route = urlsplit(self.path).path
        body = self._body()
        exchange = _Exchange()
        queued_ms = 0.0
        try:
            if body is None:
                self.close_connection = True
                exchange.status, exchange.error = (
                    413,
                    "The request body is missing a valid length or is too large.",
                )
                self._send(
                    413, {"error": {"message": exchange.error, "type": "invalid_request_error"}}, request_id
                )
            else:
                with server.turns.turn():
                    queued_ms = (time.monotonic() - arrived) * 1000
                    server.busy = True
                    try:
                        self._relay(body, request_id, exchange)
                    finally:
                        server.busy = False
                        server.last_activity = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
            exchange.error = exchange.error or "The client went away."
        finally:
            self._record(request_id, route, body, exchange, arrived, queued_ms)

    def _relay(self, body: bytes, request_id: str, exchange: _Exchange) -> None:
        server = self.server
        try:
            server.ensure_child()
        except Exception as error:  # not even started: the request cannot be served
            exchange.status, exchange.error = 502, f"The model server could not start: {error}"
            self._send(502, {"error": {"message": exchange.error}}, request_id)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        connection = http.client.HTTPConnection("127.0.0.1", server.child.port, timeout=FORWARD_TIMEOUT_S)
        try:
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                exchange.status, exchange.error = 502, f"The model server did not answer: {error}"
                self._send(502, {"error": {"message": exchange.error}}, request_id)
                return
            exchange.status = response.status
            exchange.streamed = "text/event-stream" in (response.getheader("Content-Type") or "")
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("X-Request-Id", request_id)
            length = response.getheader("Content-Length")
            if length is not None and not exchange.streamed:
                self.send_header("Content-Length", length)
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            while True:
                piece = response.read1(64 * 1024) if exchange.streamed else response.read(64 * 1024)
                if not piece:
                    break
                self.wfile.write(piece)
                self.wfile.flush()
                if len(exchange.kept) < KEPT_RESPONSE_BYTES:
                    exchange.kept += piece
        finally:
            connection.close()
        server.after_request()

    def _record(
        self,
        request_id: str,
        route: str,
        body: bytes | None,
        exchange: _Exchange,
        arrived: float,
        queued_ms: float,
    ) -> None:
        server = self.server
        usage, content = _summarise(exchange) if exchange.kept else (None, None)
        usage = usage if isinstance(usage, dict) else {}
        status = exchange.status
        if status >= 400 and exchange.error is None:
            try:
                exchange.error = str(json.loads(exchange.kept.decode())["error"]["message"])
            except (ValueError, KeyError, TypeError):
                exchange.error = f"HTTP {status}"
        validity = True if 0 < status < 400 else False if status == 422 else None
        gate_field = server.config.gate_field
        server.write_log(
            {
                "timestamp": _timestamp(),
                "request_id": request_id,
                "route": route,
                "model_target": {"name": server.config.model_name, "path": server.config.model_path},
                "request_bytes": len(body or b""),
                "response_status": status,
                "latency_ms": round((time.monotonic() - arrived) * 1000, 1),
                "queued_ms": round(queued_ms, 1),
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "total_tokens": usage.get("total_tokens"),
                "schema_validity": validity,
                "gate_field": gate_field,
                "gate_result": _gate(content, gate_field) if status < 400 else None,
                "restart_count": server.restart_count,
                "error_summary": exchange.error if status >= 400 or exchange.error else None,
            }
        )


def run_managed(
    config: ManagedConfig,
    host: str,
    port: int,
    *,
    log_file: Path | None = None,
    announce: Callable[[str], None] = print,
) -> int:
    """Serves in the foreground until Ctrl-C or SIGTERM; the model server never outlives it."""
    log: IO[str] = open(log_file, "a", encoding="utf-8") if log_file else sys.stderr  # noqa: SIM115
    server = ManagedServer((host, port), config, log)
    announce(
        f"Managed server for {config.model_name} at http://{host}:{server.server_address[1]}/v1 "
        f"(the model starts with the first request); Ctrl-C stops it."
    )

    try:
        serve(server)
    finally:
        if log is not sys.stderr:
            log.close()
    return 0


def environment(python: str) -> dict[str, str]:
    from tt_serve.targets import runtime_environment

    env = runtime_environment(python)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
