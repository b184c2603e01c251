"""Request and response helpers shared by the routers: principal, envelopes, headers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from pydantic import BaseModel

from tt_core.envelope import data_envelope, fit_response
from tt_core.errors import ErrorDetail, InvalidRequestError, TtError, UnauthorizedError
from tt_core.models.api_keys import Principal
from tt_core.models.common import ListMeta, PageQuery, format_timestamp, parse_timestamp
from tt_core.observability import logger

JSON = "application/json"
IDEMPOTENCY_KEY = "Idempotency-Key"
ACTION_ID = "X-Tuned-Tensor-Action-Id"
OPERATION = "X-Tuned-Tensor-Operation"
# Spec writes an agent-driven client announces (PRODUCT.md §2.5): method → (path, operation name).
_SPEC_WRITES = {
    "POST": (re.compile(r"^/behavior-specs/?$"), "create_spec"),
    "PUT": (re.compile(r"^/behavior-specs/[^/]+/?$"), "update_spec"),
}
_VERSION_PREFIX = re.compile(r"^(?:/api)?/v1(?=/)")
# What a cross-origin page (the deployed dashboard) may read besides the body: request id, ETag for
# If-Match, the idempotent replay flag and Retry-After.
CORS_EXPOSED_HEADERS = "X-Request-Id, ETag, Idempotent-Replayed, Retry-After"


def cors_headers(headers: Mapping[str, str] | None, allowed_origins: Sequence[str]) -> dict[str, list[str]]:
    """CORS response headers for a request from an allowed origin (the dashboard's), else none."""
    origin = next((v for k, v in (headers or {}).items() if k.lower() == "origin"), None)
    if not origin or origin not in allowed_origins:
        return {}
    return {
        "Access-Control-Allow-Origin": [origin],
        "Access-Control-Expose-Headers": [CORS_EXPOSED_HEADERS],
        "Vary": ["Origin"],
    }


def principal(router: BaseRouter) -> Principal:
    """The account the authorizer resolved; API Gateway puts its context on the request."""
    context = (router.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    account_id = context.get("account_id")
    if not account_id:
        raise UnauthorizedError("Missing or malformed API key: send 'Authorization: Bearer tt_…'.")
    return Principal(account_id=account_id, api_key_id=context.get("api_key_id", ""))


def header(router: BaseRouter, name: str) -> str | None:
    value: str | None = router.current_event.headers.get(name)  # Powertools matches names case-insensitively
    return value


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def respond(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=fit_response(payload), headers=headers or {})


def ok(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return respond(status, data_envelope(data), headers)


def ok_list(items: Sequence[BaseModel], total: int, page: PageQuery) -> Response[Any]:
    meta = ListMeta(page=page.page, per_page=page.per_page, total=total).model_dump()
    return respond(200, data_envelope(_dumpable(items), meta))


def _dumpable(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """Every item that serialises; one that cannot (stored before a rule existed) is logged and left out."""
    dumped = []
    for item in items:
        try:
            dumped.append(dump(item))
        except Exception:  # e.g. pydantic's depth limit on a document stored before the nesting rule
            logger.exception(
                "Item left out of a list: it cannot be serialised", extra={"id": getattr(item, "id", None)}
            )
    return dumped


def no_content() -> Response[Any]:
    return Response(status_code=204, body=None, headers={})


def etag(updated_at: datetime | str) -> dict[str, str]:
    value = updated_at if isinstance(updated_at, str) else format_timestamp(updated_at)
    return {"ETag": f'"{value}"'}


def expected_updated_at(router: BaseRouter) -> datetime | None:
    """The `updated_at` a PUT was based on, from If-Match or X-Tuned-Tensor-Expected-Updated-At."""
    for name in ("If-Match", "X-Tuned-Tensor-Expected-Updated-At"):
        raw = header(router, name)
        if raw is None:
            continue
        value = raw.strip().removeprefix("W/").strip('"').strip()
        if value == "*":
            return None
        try:
            return parse_timestamp(value)
        except ValueError:
            raise InvalidRequestError(
                f"Request header {name} is invalid: expected the spec's updated_at timestamp",
                details=[_header_detail(name, "must be the spec's updated_at timestamp")],
            ) from None
    return None


def _header_detail(name: str, message: str) -> ErrorDetail:
    return ErrorDetail(f"header.{name}", message)


def _printable_ascii(value: str) -> bool:
    return 1 <= len(value) <= 255 and all(32 <= ord(ch) < 127 for ch in value)


def idempotency_key(router: BaseRouter) -> str | None:
    """`Idempotency-Key`: 1–255 printable ASCII characters (PRODUCT.md §2.5)."""
    key = header(router, IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not _printable_ascii(key):
        raise InvalidRequestError(
            "Request header Idempotency-Key is invalid: use 1–255 printable ASCII characters",
            details=[_header_detail(IDEMPOTENCY_KEY, "must be 1–255 printable ASCII characters")],
        )
    return key


def _header_value(headers: Mapping[str, Any], name: str) -> str | None:
    return next((str(v) for k, v in headers.items() if k.lower() == name.lower()), None)


def with_action_id(event: dict[str, Any]) -> dict[str, Any] | TtError:
    """Agent headers on spec writes (PRODUCT.md §2.5), applied to the event before routing.

    `X-Tuned-Tensor-Operation` must name the write the request is; `X-Tuned-Tensor-Action-Id` is
    logged and, on a create without its own `Idempotency-Key`, becomes that key, so a retried
    action never creates a second spec.
    """
    write = _SPEC_WRITES.get(event.get("httpMethod", ""))
    path = _VERSION_PREFIX.sub("", event.get("path") or "")
    if write is None or not write[0].match(path):
        return event
    headers = event.get("headers") or {}
    operation, action_id = _header_value(headers, OPERATION), _header_value(headers, ACTION_ID)
    if operation is not None and operation.strip() != write[1]:
        return InvalidRequestError(
            f"Request header {OPERATION} is invalid: this request is {write[1]}",
            details=[_header_detail(OPERATION, f"must be {write[1]} on this request")],
        )
    if action_id is None:
        return event
    if not _printable_ascii(action_id):
        return InvalidRequestError(
            f"Request header {ACTION_ID} is invalid: use 1–255 printable ASCII characters",
            details=[_header_detail(ACTION_ID, "must be 1–255 printable ASCII characters")],
        )
    logger.append_keys(action_id=action_id)
    if write[1] != "create_spec" or _header_value(headers, IDEMPOTENCY_KEY) is not None:
        return event
    return {
        **event,
        "headers": {**headers, IDEMPOTENCY_KEY: action_id},
        "multiValueHeaders": {**(event.get("multiValueHeaders") or {}), IDEMPOTENCY_KEY: [action_id]},
    }


def _no_constant(token: str) -> NoReturn:
    raise ValueError(f"{token} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def parse_json(text: str | bytes) -> Any:
    """A request body as JSON has it: NaN, Infinity and numbers that overflow to infinity are
    invalid JSON (Python's reader takes them), and so is an integer too long to read (4,300+ digits).

    Failures are JSONDecodeError, which the router reports as a 400 `validation_error` on `body`.
    """
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # a hook's refusal or the integer digit limit
        document = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
        raise json.JSONDecodeError(str(error), document, 0) from None


# Request bodies may nest objects and arrays at most this deep (PRODUCT.md §2.5): deeper documents
# cannot be serialised back (pydantic's depth limit) or parsed at all (RecursionError).
MAX_BODY_NESTING = 32
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def nesting_exceeds(text: str, limit: int = MAX_BODY_NESTING) -> bool:
    """Whether the JSON text nests objects and arrays deeper than `limit`, found without parsing it.

    Strings are removed first (their brackets do not count); text that is not JSON is measured the
    same way and reported as unparseable later if it is not too deep.
    """
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    if len(brackets) <= limit:
        return False
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False
