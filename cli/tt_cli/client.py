"""HTTP client of the API: envelopes, retries, idempotency keys and ID prefix resolution (§14.2)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from tt_cli import __version__
from tt_cli.config import check_api_key
from tt_cli.errors import (
    AMBIGUOUS_ID,
    CONNECTION_ERROR,
    INVALID_RESPONSE,
    NO_API_KEY,
    NOT_FOUND,
    CliError,
    Detail,
)
from tt_core.models.common import normalize_id

API_PREFIX = "/api/v1"
RETRIES = 3
BACKOFF_SECONDS = 0.5  # doubles per attempt: 0.5, 1, 2
MAX_RETRY_AFTER_SECONDS = 60.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TIMEOUT = (10.0, 120.0)  # connect, read
MIN_PREFIX = 4
CONNECTION_HINT = "Check -u/--base-url or TUNED_TENSOR_URL, or start the local stack with `tt local up`."
LIST_PAGE_SIZE = 100


def _pause(seconds: float) -> None:
    """Indirection so tests can skip the waits."""
    time.sleep(seconds)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    envelope: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def data(self) -> Any:
        return self.envelope.get("data")

    @property
    def meta(self) -> dict[str, Any]:
        return self.envelope.get("meta") or {}


def _retry_after(response: requests.Response, fallback: float) -> float:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), capped; else the backoff."""
    value = response.headers.get("Retry-After")
    if not value:
        return fallback
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return fallback
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class ApiClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._session = session or requests.Session()

    def _headers(self, auth: bool, idempotency_key: str | None, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"tt/{__version__}"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if auth:
            if not self.api_key:
                raise CliError(
                    401,
                    NO_API_KEY,
                    "No API key: run `tt auth login`, pass -k/--api-key or set TUNED_TENSOR_API_KEY",
                )
            headers["Authorization"] = f"Bearer {check_api_key(self.api_key)}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        auth: bool = True,
        idempotent: bool | None = None,
        retries: int = RETRIES,
        timeout: float | tuple[float, float] = TIMEOUT,
    ) -> ApiResponse:
        """One API call; raises CliError for any failure.

        GETs are retried by default. A POST passed `idempotent=True` carries an Idempotency-Key and is
        retried with the same key, so a retry can never create a second resource.
        """
        idempotency_key = str(uuid.uuid4()) if idempotent and method != "GET" else None
        retryable = method == "GET" if idempotent is None else idempotent
        headers = self._headers(auth, idempotency_key, body is not None)
        url = self.base_url + API_PREFIX + path
        attempts = 1 + (retries if retryable else 0)
        for attempt in range(attempts):
            backoff = BACKOFF_SECONDS * 2**attempt
            last = attempt == attempts - 1
            try:
                response = self._session.request(
                    method, url, params=params, json=body, headers=headers, timeout=timeout
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                if last:
                    raise CliError(
                        0,
                        CONNECTION_ERROR,
                        f"Cannot reach {self.base_url}: {_reason(error)}",
                        hint=CONNECTION_HINT,
                    ) from None
                _pause(backoff)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                _pause(_retry_after(response, backoff) if response.status_code == 429 else backoff)
                continue
            in_progress = response.status_code == 409 and _code(response) == "idempotency_key_in_progress"
            if in_progress and idempotency_key and not last:
                _pause(backoff)  # the first attempt is still executing on the server: wait for it
                continue
            return _parse(response)
        raise AssertionError("unreachable")  # the last attempt always returns or raises

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, body={} if body is None else body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> ApiResponse:
        return self.request("PUT", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)

    def iterate(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, all pages; `params` are extra query parameters (`view`)."""
        page = 1
        while True:
            response = self.get(path, params={**(params or {}), "page": page, "per_page": LIST_PAGE_SIZE})
            items = response.data or []
            yield from items
            total = int(response.meta.get("total", 0))
            if not items or page * LIST_PAGE_SIZE >= total:
                return
            page += 1

    def resolve_id(
        self,
        list_path: str,
        value: str,
        noun: str,
        *,
        params: Mapping[str, Any] | None = None,
        label: Callable[[dict[str, Any]], str] | None = None,
    ) -> str:
        """A full UUID as is; a prefix of ≥ 4 characters resolved through the list endpoint (§14.2).

        `params` narrow the list request (runs resolve through their light `view=summary` rows);
        `label` names each match of an ambiguous prefix (default: the item's `name`).
        """
        full = normalize_id(value)
        if full is not None:
            return full
        prefix = value.strip().lower()
        if len(prefix) < MIN_PREFIX:
            raise CliError.local(
                f"'{value}' is not a {noun} id or an id prefix of at least {MIN_PREFIX} characters"
            )
        matches = [
            item
            for item in self.iterate(list_path, params)
            if str(item.get("id", "")).lower().startswith(prefix)
        ]
        if not matches:
            raise CliError(404, NOT_FOUND, f"No {noun} id starts with '{value}'")
        if len(matches) > 1:
            raise CliError(
                0,
                AMBIGUOUS_ID,
                f"'{value}' matches {len(matches)} {noun}s; give more characters",
                [Detail(str(item["id"]), (label or _name)(item)) for item in matches],
            )
        return str(matches[0]["id"])


def _name(item: dict[str, Any]) -> str:
    return str(item.get("name", ""))


def _reason(error: Exception) -> str:
    """requests nests the socket error deep inside its message; the innermost reason reads best."""
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return text


def _code(response: requests.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _parse(response: requests.Response) -> ApiResponse:
    status = response.status_code
    if status == 204 or (not response.content and status < 400):
        return ApiResponse(status, {"data": None}, response.headers)
    try:
        envelope = response.json()
    except ValueError:
        envelope = None
    if status >= 400:
        if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
            raise CliError.from_envelope(status, envelope)
        raise CliError(
            status, INVALID_RESPONSE, f"HTTP {status} without an error envelope: {_snippet(response)}"
        )
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise CliError(status, INVALID_RESPONSE, f"Expected a JSON envelope, got: {_snippet(response)}")
    return ApiResponse(status, envelope, response.headers)


def _snippet(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return (text[:200] + "…") if len(text) > 200 else (text or "an empty body")
