"""The local gateway over real sockets: malformed framing, unknown methods, bursts and stalled clients."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_client import new_account
from tt_local.http_server import make_server, serve_in_thread

READ_TIMEOUT = 1.0


@pytest.fixture
def server(gateway: Any) -> Iterator[tuple[str, int]]:
    http = make_server(gateway, port=0, read_timeout=READ_TIMEOUT)
    serve_in_thread(http)
    try:
        yield "127.0.0.1", http.server_address[1]
    finally:
        http.shutdown()
        http.server_close()


def exchange(address: tuple[str, int], raw: bytes, timeout: float = 10) -> bytes:
    """Sends raw bytes and reads until the server closes the connection."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse(response: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_a_body_that_is_not_utf8_is_a_400(server: tuple[str, int], gateway: Any) -> None:
    key = new_account(gateway).key
    body = b'{"name": "\xff\xfe", "examples": []}'
    raw = request(
        "POST",
        "/api/v1/behavior-specs",
        {"Authorization": f"Bearer {key}", "Content-Length": str(len(body))},
        body,
    )
    status, headers, payload = parse(exchange(server, raw))
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert payload["error"] == {
        "code": "validation_error",
        "message": "Request body is invalid: body is not valid UTF-8",
        "details": [{"field": "body", "message": "is not valid UTF-8"}],
    }


@pytest.mark.parametrize("length", ["abc", "-5", "5, 6", "0x10", ""])
def test_a_content_length_that_is_no_length_is_a_400(server: tuple[str, int], length: str) -> None:
    raw = request("POST", "/api/v1/behavior-specs", {"Content-Length": length}, b"{}")
    status, headers, payload = parse(exchange(server, raw))
    assert status == 400 and headers["Connection"] == "close"
    assert payload["error"]["code"] == "validation_error"
    assert payload["error"]["details"] == [
        {"field": "header.Content-Length", "message": "Content-Length must be a non-negative integer"}
    ]


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW", "propfind"])
def test_unknown_methods_are_405_in_the_envelope(server: tuple[str, int], method: str) -> None:
    status, headers, payload = parse(exchange(server, request(method, "/api/v1/version", {})))
    assert status == 405
    assert headers["Allow"] == "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
    assert payload["error"] == {"code": "method_not_allowed", "message": f"Method {method} is not allowed."}


def test_a_malformed_request_line_is_answered_in_the_envelope(server: tuple[str, int]) -> None:
    status, headers, payload = parse(exchange(server, b"THIS IS NOT HTTP AT ALL\r\n\r\n"))
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert payload["error"]["code"] == "validation_error"


def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(server: tuple[str, int]) -> None:
    started = time.monotonic()
    raw = request("POST", "/api/v1/behavior-specs", {"Content-Length": str(100 * 1024 * 1024)}, b"{")
    status, headers, payload = parse(exchange(server, raw))  # answered and closed: nothing else is read
    assert time.monotonic() - started < READ_TIMEOUT  # at once, not after waiting for the body
    assert status == 413 and headers["Connection"] == "close"
    assert payload["error"]["code"] == "payload_too_large"


def test_expect_100_continue_over_the_cap_gets_a_413_not_a_continue(server: tuple[str, int]) -> None:
    headers = {"Content-Length": str(50 * 1024 * 1024), "Expect": "100-continue"}
    status, _, payload = parse(exchange(server, request("PUT", "/api/v1/behavior-specs/x", headers)))
    assert status == 413 and payload["error"]["code"] == "payload_too_large"


def test_a_stalled_client_is_disconnected_and_others_are_served(server: tuple[str, int]) -> None:
    stalled = socket.create_connection(server, timeout=10)
    try:
        stalled.sendall(request("POST", "/api/v1/behavior-specs", {"Content-Length": "1000"}, b"{"))
        started = time.monotonic()
        assert stalled.recv(65536) == b""  # closed by the server, without an answer
        assert READ_TIMEOUT * 0.8 <= time.monotonic() - started < READ_TIMEOUT + 5
    finally:
        stalled.close()
    status, _, payload = parse(exchange(server, request("GET", "/api/v1/version", {})))
    assert status == 200 and payload["data"]["api_version"] == "v1"


def test_a_chunked_body_is_read(server: tuple[str, int], gateway: Any, spec_body: dict[str, Any]) -> None:
    key = new_account(gateway).key
    body = json.dumps(spec_body).encode()
    chunked = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:10], body[10:]))
    raw = request(
        "POST",
        "/api/v1/behavior-specs",
        {"Authorization": f"Bearer {key}", "Transfer-Encoding": "chunked"},
        chunked + b"0\r\n\r\n",
    )
    status, _, payload = parse(exchange(server, raw))
    assert status == 201 and payload["data"]["name"] == spec_body["name"]


def test_two_hundred_parallel_requests_are_all_answered(server: tuple[str, int]) -> None:
    """All connect at the same instant: none may be refused or reset (a backlog of 5 dropped some)."""
    count = 200
    ready = threading.Barrier(count)
    outcomes: list[int | str] = []

    def client() -> None:
        ready.wait()
        try:
            status, _, _ = parse(exchange(server, request("GET", "/api/v1/version", {}), timeout=30))
            outcomes.append(status)
        except OSError as error:
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == [200] * count


def test_answers_do_not_wait_for_the_clients_delayed_ack(gateway: Any) -> None:
    """Headers and body leave in two writes: with Nagle's algorithm on, every keep-alive answer's body
    waited for the client's delayed ACK (40 ms a request, measured in bench/local_concurrency.py)."""
    from tt_local.snapshot import journaled_moto_server

    http = make_server(gateway, port=0)
    http.server_close()
    assert http.RequestHandlerClass.disable_nagle_algorithm
    moto, _ = journaled_moto_server()
    assert moto.request_handler.disable_nagle_algorithm
