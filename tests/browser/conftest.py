"""One local stack and one Chromium (Debian's, not Playwright's download) shared by the dashboard's tests.

Every request the page makes is checked: only the page's own origin and the storage endpoint its CSP
names for presigned uploads may be reached; anything else fails the test that caused it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import RunningStack, free_port, start_stack, stop_stack

playwright_api = pytest.importorskip("playwright.sync_api")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "tmp" / "output" / "dashboard"
# Steps wait at most this long for the page (a run's end has its own, longer wait).
STEP_TIMEOUT_MS = 20_000


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    home = tmp_path_factory.mktemp("dashboard-home")
    running = start_stack(home / ".tt-local", free_port(), home)
    yield running
    stop_stack(running)


@pytest.fixture(scope="session")
def allowed_origins(stack: RunningStack) -> set[str]:
    """The page's origin and what its CSP lets it connect to: the API (same origin) and the storage
    endpoint of presigned uploads, which must be a loopback address on the local stack."""
    policy = requests.get(stack.base_url + "/", timeout=10).headers["Content-Security-Policy"]
    connect = re.search(r"connect-src ([^;]+)", policy)
    assert connect is not None
    extra = {source for source in connect.group(1).split() if source != "'self'"}
    assert all(urlsplit(source).hostname == "127.0.0.1" for source in extra), policy
    return {origin(stack.base_url), *extra}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


class RequestGuard:
    """Records every request outside `allowed` (data: and blob: URLs stay in the page)."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.violations: list[str] = []
        self.urls: list[str] = []

    def __call__(self, request: Any) -> None:
        self.urls.append(request.url)
        if request.url.startswith(("data:", "blob:")):
            return
        if origin(request.url) not in self.allowed:
            self.violations.append(f"{request.method} {request.url}")


@pytest.fixture(scope="session")
def guard(allowed_origins: set[str]) -> RequestGuard:
    return RequestGuard(allowed_origins)


@pytest.fixture(scope="session")
def context(browser: Any, guard: RequestGuard) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.on("request", guard)
    yield context
    context.close()


@pytest.fixture(scope="session")
def page(context: Any) -> Any:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    return page


@pytest.fixture(autouse=True)
def no_foreign_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test during which the page reached another host or threw an uncaught error."""
    if "page" not in request.fixturenames:
        yield
        return
    guard: RequestGuard = request.getfixturevalue("guard")
    page = request.getfixturevalue("page")
    before, errors_before = len(guard.violations), len(page.errors)
    yield
    assert guard.violations[before:] == [], "requests to other hosts"
    assert page.errors[errors_before:] == [], "uncaught errors in the page"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
