"""Serves a gateway (the local one, or its worker pool) over HTTP on the loopback interface.

Every answer is the product's JSON envelope, also for requests the gateway never sees: malformed
framing (a bad Content-Length, a body over the cap), unknown methods, unparseable request lines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tt_local.dashboard_files import is_dashboard_path
from tt_local.gateway import MAX_PAYLOAD_BYTES, Gateway, GatewayResponse, error_response

# The methods API Gateway's ANY method accepts; others are refused before the gateway.
GATEWAY_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
# A client that stops sending (mid-headers, mid-body, or idle between keep-alive requests) is
# disconnected after this long, so it cannot hold a thread forever.
READ_TIMEOUT_S = 30.0
# Connections the kernel queues while every accept is busy: bursts of parallel clients are held,
# not reset (the standard library's default is 5).
LISTEN_BACKLOG = 1024
_MAX_CHUNK_LINE = 1024

_ERROR_CODES = {
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
}


class _BadFraming(Exception):
    """The request's body cannot be read as declared: answer `response` and close the connection."""

    def __init__(self, response: GatewayResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _invalid(message: str, field: str) -> _BadFraming:
    return _BadFraming(error_response(400, "validation_error", message, details=[(field, message)]))


def _too_large() -> _BadFraming:
    return _BadFraming(error_response(413, "payload_too_large", "Request body exceeds the 6 MB limit."))


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG


def make_server(
    gateway: Gateway,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    read_timeout: float = READ_TIMEOUT_S,
    dashboard: Callable[[str], GatewayResponse] | None = None,
) -> LocalHTTPServer:
    """`dashboard` answers GET/HEAD outside the API's paths (the static site); without it the gateway does."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Also for a request line too broken to name a version: the answer still has a status line.
        default_request_version = "HTTP/1.1"
        timeout = read_timeout
        # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's
        # delayed ACK of the headers (40 ms on Linux) on every keep-alive response.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            try:
                body = self._read_body()
            except _BadFraming as refusal:
                self._send(refusal.response, close=True)
                return
            if body is None:  # the client went away mid-body
                self.close_connection = True
                return
            url = urlsplit(self.path)
            if dashboard is not None and is_dashboard_path(self.command, url.path):
                self._send(dashboard(url.path))
                return
            response = gateway.handle(self.command, url.path, url.query, dict(self.headers.items()), body)
            self._send(response)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def __getattr__(self, name: str) -> Any:
            # BaseHTTPRequestHandler answers a method without a do_<METHOD> with an HTML 501.
            if name.startswith("do_"):
                return self._not_allowed
            raise AttributeError(name)

        def _not_allowed(self) -> None:
            response = error_response(405, "method_not_allowed", f"Method {self.command} is not allowed.")
            response.headers.append(("Allow", ", ".join(GATEWAY_METHODS)))
            self._send(response, close=True)  # its body, if any, is never read

        def handle_expect_100(self) -> bool:
            try:
                self._declared_length()
            except _BadFraming as refusal:
                self._send(refusal.response, close=True)
                return False
            return super().handle_expect_100()

        def _declared_length(self) -> int | None:
            values = self.headers.get_all("Content-Length") or []
            if not values:
                return None
            if len(set(values)) > 1 or not values[0].strip().isdigit():
                raise _invalid("Content-Length must be a non-negative integer", "header.Content-Length")
            length = int(values[0])
            if length > MAX_PAYLOAD_BYTES:
                raise _too_large()  # refused before a byte of it is read
            return length

        def _read_body(self) -> bytes | None:
            encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
            if encoding:
                if encoding != "chunked":
                    raise _invalid("Transfer-Encoding must be chunked", "header.Transfer-Encoding")
                return self._read_chunked()
            length = self._declared_length()
            if not length:
                return b""
            body = self.rfile.read(length)
            return body if len(body) == length else None

        def _read_chunked(self) -> bytes | None:
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(_MAX_CHUNK_LINE)
                if not line:
                    return None
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _invalid("a chunk size is not hexadecimal", "body") from None
                if size == 0:
                    while self.rfile.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers are ignored
                    return b"".join(chunks)
                total += size
                if size < 0 or total > MAX_PAYLOAD_BYTES:
                    raise _too_large()
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    return None
                chunks.append(chunk)
                self.rfile.readline(_MAX_CHUNK_LINE)  # the CRLF after the chunk

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """Errors the standard library detects itself (bad request line, headers too long, …)."""
            status = HTTPStatus(code)
            default = "validation_error" if code < 500 else "internal_error"
            response = error_response(code, _ERROR_CODES.get(status, default), message or f"{status.phrase}.")
            self._send(response, close=True)

        def _send(self, response: GatewayResponse, *, close: bool = False) -> None:
            if close:
                self.close_connection = True
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", "") != "HEAD":
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the gateway's handlers log in JSON already

    return LocalHTTPServer((host, port), Handler)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    # A short poll interval: shutdown() waits up to one interval for the loop to notice.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="tt-local-http", daemon=True
    )
    thread.start()
    return thread
