"""Serves the dashboard's static files (web/) at `/`, beside the API, with the deployed site's headers."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from tt_local.gateway import GatewayResponse, error_response

# The repository's web/ folder: the local stack runs from a checkout (`make setup` copies the vendored
# libraries into web/vendor/).
WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
# Only these folders are served, and only these kinds of file in them.
SERVED_FOLDERS = ("app", "vendor")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# A path segment: no dot first (no `..`, no hidden files), no separators or encodings left to decode.
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


def is_dashboard_path(method: str, path: str) -> bool:
    """GET/HEAD outside the API's paths (/api/…, /v1/…) belong to the dashboard."""
    return method in ("GET", "HEAD") and not (path.startswith("/api/") or path.startswith("/v1/"))


def security_headers(connect_sources: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """As the deployed site sends them: scripts and styles only from the site itself, no framing."""
    connect = " ".join(("'self'", *connect_sources))
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        # Edits to web/ show on the next load; the files are small and served from loopback.
        ("Cache-Control", "no-cache"),
    ]


def _resolve(path: str, root: Path) -> Path | None:
    if path in ("/", "/index.html"):
        return root / "index.html"
    segments = unquote(path).split("/")[1:]
    if len(segments) < 2 or segments[0] not in SERVED_FOLDERS:
        return None
    if not all(_SEGMENT.match(segment) for segment in segments):
        return None
    candidate = root.joinpath(*segments).resolve()
    # A link inside web/ must not lead out of it either.
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    return candidate if candidate.suffix in CONTENT_TYPES else None


def dashboard_response(
    path: str, *, root: Path = WEB_ROOT, connect_sources: tuple[str, ...] = ()
) -> GatewayResponse:
    """The file at `path`, or 404 in the product's envelope (the dashboard routes with the URL fragment,
    so no other path is one of its pages)."""
    file = _resolve(path, root)
    if file is None:
        response = error_response(404, "not_found", "Route not found")
        response.headers.extend(security_headers(connect_sources))
        return response
    headers = [("Content-Type", CONTENT_TYPES[file.suffix]), *security_headers(connect_sources)]
    return GatewayResponse(200, headers, file.read_bytes())
