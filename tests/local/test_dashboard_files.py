"""The local stack serves the dashboard's static files at `/`: content types, the site's security headers,
404 in the product's envelope, and no path (encoded, dotted, linked) that leads out of web/."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tt_local.dashboard_files import WEB_ROOT, dashboard_response, is_dashboard_path
from tt_local.gateway import GatewayResponse, error_response
from tt_local.http_server import make_server, serve_in_thread

STORAGE = "http://127.0.0.1:45678"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    (web / "app").mkdir(parents=True)
    (web / "vendor").mkdir()
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    (web / "app" / "main.js").write_text("export {};")
    (web / "app" / "styles.css").write_text("body{}")
    (web / "app" / ".secret.js").write_text("hidden")
    (web / "app" / "notes.txt").write_text("not a served kind")
    (web / "vendor" / "preact.js").write_text("export {};")
    (tmp_path / "outside.js").write_text("outside")
    (web / "app" / "link.js").symlink_to(tmp_path / "outside.js")
    return web


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/app/main.js", "text/javascript; charset=utf-8"),
        ("/app/styles.css", "text/css; charset=utf-8"),
        ("/vendor/preact.js", "text/javascript; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_type_and_the_sites_headers(
    root: Path, path: str, content_type: str
) -> None:
    response = dashboard_response(path, root=root, connect_sources=(STORAGE,))
    assert response.status == 200
    assert response.header("Content-Type") == content_type
    policy = response.header("Content-Security-Policy") or ""
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert f"connect-src 'self' {STORAGE};" in policy
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("X-Frame-Options") == "DENY"


@pytest.mark.parametrize(
    "path",
    [
        "/app/../../outside.js",
        "/app/%2e%2e/%2e%2e/outside.js",
        "/app/..%2f..%2foutside.js",
        "/vendor/%2e%2e%2fapp%2fmain.js",
        "/app//main.js",
        "/app/./main.js",
        "/app/.secret.js",
        "/app/link.js",  # a link inside web/ that leads out of it
        "/app/notes.txt",
        "/app/main.js%00.css",
        "/app/..\\..\\outside.js",
        "/app",
        "/app/",
        "/index.html/",
        "/outside.js",
        "/web/index.html",
        "/config.json",
        "/app/missing.js",
    ],
)
def test_anything_else_is_404_in_the_envelope(root: Path, path: str) -> None:
    response = dashboard_response(path, root=root)
    assert response.status == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Route not found"}}
    assert response.header("Content-Security-Policy")


def test_only_get_and_head_outside_the_api_paths_are_the_dashboards() -> None:
    assert is_dashboard_path("GET", "/") and is_dashboard_path("HEAD", "/app/main.js")
    assert not is_dashboard_path("POST", "/")
    assert not is_dashboard_path("GET", "/api/v1/version") and not is_dashboard_path("GET", "/v1/version")


class _Gateway:
    def handle(self, method: str, raw_path: str, query: str, headers: Any, body: bytes) -> GatewayResponse:
        return error_response(404, "not_found", f"gateway {method} {raw_path}")


@pytest.fixture
def address(root: Path) -> Iterator[tuple[str, int]]:
    http = make_server(_Gateway(), port=0, dashboard=lambda path: dashboard_response(path, root=root))
    serve_in_thread(http)
    try:
        yield "127.0.0.1", http.server_address[1]
    finally:
        http.shutdown()
        http.server_close()


def _raw(address: tuple[str, int], request_line: str) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(f"{request_line}\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(line.split(": ", 1) for line in lines[1:]), body


def test_the_http_server_routes_static_paths_to_the_dashboard_and_the_rest_to_the_gateway(
    address: tuple[str, int],
) -> None:
    status, headers, body = _raw(address, "GET / HTTP/1.1")
    assert status == 200 and body.startswith(b"<!doctype html>") and "Content-Security-Policy" in headers
    status, headers, body = _raw(address, "HEAD /app/main.js HTTP/1.1")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len("export {};"))
    status, _, body = _raw(address, "GET /app/../../outside.js HTTP/1.1")  # sent as is, not normalised
    assert status == 404 and b"outside" not in body
    assert b"gateway GET /api/v1/version" in _raw(address, "GET /api/v1/version HTTP/1.1")[2]
    assert b"gateway POST /" in _raw(address, "POST / HTTP/1.1")[2]


def test_the_real_pages_modules_and_styles_all_exist() -> None:
    """index.html and every relative import of web/app resolve to a file the server serves."""
    if not (WEB_ROOT / "vendor" / "preact.js").exists():
        pytest.skip("web/vendor/ is filled by `make setup` (scripts/vendor_web.py)")
    assert dashboard_response("/").status == 200
    index = (WEB_ROOT / "index.html").read_text()
    assert "<script>" not in index and " style=" not in index  # nothing inline for the CSP to refuse
    references = re.findall(r'(?:src|href)="([^"#]+)"', index)
    modules = sorted((WEB_ROOT / "app").rglob("*.js"))
    for module in modules:
        text = module.read_text()
        assert "eval(" not in text and "new Function" not in text and " style=" not in text
        for target in re.findall(r'(?:from|import\()\s*"(\.[^"]+)"', text):
            references.append(str((module.parent / target).resolve().relative_to(WEB_ROOT)))
    for reference in references:
        response = dashboard_response("/" + reference.lstrip("./"))
        assert response.status == 200, reference
