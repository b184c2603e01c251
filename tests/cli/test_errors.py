"""Error printing, exit codes, retries, invalid responses and colour."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Api
from tt_cli import __version__
from tt_cli.main import main
from tt_cli.output import color_enabled
from tt_core.schema import GATEWAY_ERRORS

KEY = "tt_" + "a" * 48


class Scripted:
    """A stub API answering each request with the next scripted (status, headers, body)."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[tuple[str, str]] = []
        self.url = ""


@pytest.fixture
def stub() -> Iterator[Scripted]:
    from tt_local.http_server import serve_in_thread

    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            script.requests.append((self.command, self.path))
            status, headers, body = script.replies.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield script
    server.shutdown()
    server.server_close()


def envelope(data: Any, status: int = 200, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


LIST = {"data": [], "meta": {"page": 1, "per_page": 20, "total": 0}}


def test_unknown_key_is_401_in_text_and_json(run: Any, api: Api) -> None:
    bad = "tt_" + "b" * 48
    text = run("-u", api.base_url, "-k", bad, "specs", "list")
    assert text.code == 1 and text.out == ""
    assert text.err.startswith("✗ [401] unauthorized: ")
    as_json = run("-u", api.base_url, "-k", bad, "specs", "list", "--json")
    assert as_json.code == 1 and as_json.err == ""
    _, code, message = GATEWAY_ERRORS["UNAUTHORIZED"]
    assert as_json.json == {"error": {"code": code, "message": message}}  # exactly as received


def test_closed_port_is_a_connection_error_after_retries(
    run: Any, closed_url: str, pauses: list[float]
) -> None:
    result = run("-u", closed_url, "-k", KEY, "specs", "list")
    assert result.code == 1
    assert result.err.startswith(f"✗ [0] connection_error: Cannot reach {closed_url}: connection refused")
    assert "hint: " in result.err
    assert pauses == [0.5, 1.0, 2.0]  # a GET: 3 retries with backoff
    as_json = run("-u", closed_url, "-k", KEY, "specs", "list", "--json")
    assert as_json.json["error"]["code"] == "connection_error"


def test_writes_without_an_idempotency_key_are_not_retried(
    run: Any, closed_url: str, pauses: list[float]
) -> None:
    spec_id = "abcd0000-0000-4000-8000-000000000000"  # a full id: no list request to resolve it
    result = run("-u", closed_url, "-k", KEY, "specs", "update", spec_id, "-n", "y")
    assert result.code == 1 and "connection_error" in result.err
    assert pauses == []


def test_gets_retry_on_429_and_5xx(run: Any, stub: Scripted, pauses: list[float]) -> None:
    stub.replies = [
        envelope({"error": {"code": "rate_limited", "message": "slow down"}}, 429, **{"Retry-After": "7"}),
        (503, {}, b"unavailable"),
        (502, {}, b""),
        envelope(LIST),
    ]
    result = run("-u", stub.url, "-k", KEY, "specs", "list", "--json")
    assert result.code == 0, result.err
    assert result.json == LIST
    assert pauses == [7.0, 1.0, 2.0]  # Retry-After first, then the backoff
    assert len(stub.requests) == 4 and stub.requests[0] == (
        "GET",
        "/api/v1/behavior-specs?page=1&per_page=20",
    )


def test_retries_give_up_with_the_last_error(run: Any, stub: Scripted) -> None:
    stub.replies = [envelope({"error": {"code": "rate_limited", "message": "slow down"}}, 429)] * 4
    result = run("-u", stub.url, "-k", KEY, "specs", "list")
    assert result.code == 1 and result.err.startswith("✗ [429] rate_limited: slow down")


@pytest.mark.parametrize(
    ("reply", "prefix"),
    [
        ((200, {"Content-Type": "text/html"}, b"<html>hi</html>"), "✗ [200] invalid_response: "),
        ((200, {}, b'{"no": "envelope"}'), "✗ [200] invalid_response: "),
        ((500, {}, b"Internal Server Error"), "✗ [500] invalid_response: HTTP 500 without an error envelope"),
    ],
)
def test_non_envelope_bodies_are_invalid_responses(run: Any, stub: Scripted, reply: Any, prefix: str) -> None:
    stub.replies = [reply]
    result = run("-u", stub.url, "-k", KEY, "specs", "list")
    assert result.code == 1 and result.err.startswith(prefix)


def test_usage_errors_exit_2(run: Any) -> None:
    assert run().code == 2
    assert run("frobnicate").code == 2
    assert run("specs", "get").code == 2
    assert run("admin", "create-account").code == 2  # --name is required
    assert run("--bogus", "specs", "list").code == 2


def test_help_and_version_exit_0(run: Any) -> None:
    version = run("-V")
    assert version.code == 0 and version.out.strip() == f"tt {__version__}"
    helped = run("-h")
    assert helped.code == 0 and "specs" in helped.out and "--no-color" in helped.out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    assert color_enabled(False, _Terminal()) is True
    assert color_enabled(True, _Terminal()) is False
    assert color_enabled(False, io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert color_enabled(False, _Terminal()) is False


def test_no_color_flag_keeps_escapes_out(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    Path("tunedtensor.json").write_text('{"name": "x"}')
    main(["eval", "--no-color"])
    assert "\033[" not in terminal.getvalue() and "✗ examples" in terminal.getvalue()
    terminal.truncate(0)
    main(["eval"])
    assert "\033[31m✗\033[0m examples" in terminal.getvalue()
