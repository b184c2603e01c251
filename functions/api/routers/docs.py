"""OpenAPI response documentation shared by the routers (bodies are built by hand, not validated twice)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tt_core.models.common import Envelope, ErrorEnvelope, ListEnvelope

_ERRORS = {
    400: "Invalid body, query or header (`validation_error`).",
    401: "Missing, malformed or unknown API key (`unauthorized`).",
    403: "The API key has been revoked (`forbidden`).",
    404: "Not found, or owned by another account (`not_found`).",
    409: "Conflict (see the error code).",
    413: "Request body over 6 MB (`payload_too_large`).",
    429: "Rate limited (`rate_limited`); `Retry-After` gives the seconds to wait.",
    500: "Internal error (`internal_error`).",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorEnvelope}}}


def documented(
    status: int,
    model: type[BaseModel] | Any,  # Any: a union of models, e.g. the full and summary rows of a list
    summary: str,
    *,
    paged: bool = False,
    public: bool = False,
    conflicts: str | None = None,
) -> dict[str, Any]:
    """Route decorator arguments: summary plus the success and error responses.

    `conflicts`: what the route's 409 means, naming its codes (else the generic description)."""
    responses: dict[int, Any] = {}
    if model is None:
        responses[status] = {"description": "No content."}
    else:
        envelope = ListEnvelope[model] if paged else Envelope[model]  # type: ignore[valid-type]
        responses[status] = {"description": "Success.", "content": {"application/json": {"model": envelope}}}
    # Public routes need no key and read no parameters: only the body cap, rate limits and failures apply.
    for code in (413, 429, 500) if public else _ERRORS:
        responses[code] = _error(_ERRORS[code])
    if conflicts is not None and not public:
        responses[409] = _error(conflicts)
    return {"summary": summary, "responses": responses}
