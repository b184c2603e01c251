"""Request and response helpers shared by the routers: principal, envelopes, headers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from pydantic import BaseModel

from tt_core.envelope import data_envelope, fit_response
from tt_core.errors import ErrorDetail, InvalidRequestError, UnauthorizedError
from tt_core.models.api_keys import Principal
from tt_core.models.common import ListMeta, PageQuery, format_timestamp, parse_timestamp
from tt_core.observability import logger

JSON = "application/json"


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


def idempotency_key(router: BaseRouter) -> str | None:
    """`Idempotency-Key`: 1–255 printable ASCII characters (PRODUCT.md §2.5)."""
    key = header(router, "Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(32 <= ord(ch) < 127 for ch in key):
        raise InvalidRequestError(
            "Request header Idempotency-Key is invalid: use 1–255 printable ASCII characters",
            details=[_header_detail("Idempotency-Key", "must be 1–255 printable ASCII characters")],
        )
    return key
