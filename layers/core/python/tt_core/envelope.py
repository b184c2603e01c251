"""The response envelopes of PRODUCT.md §2.2 and the 6 MB caps of §2.1, sized as Lambda counts them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tt_core.errors import TtError

# Lambda's synchronous payload limits: the whole invocation event, and the whole response document (the
# proxy result with the body inside it as an escaped JSON string), each serialised as JSON.
LAMBDA_REQUEST_LIMIT = 6 * 1024 * 1024
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024 + 100
# Room left in the response document for statusCode, headers and the body's own quotes.
RESPONSE_DOCUMENT_RESERVE = 64 * 1024
# The cap on a body's escaped size (escaped_size): a body under it always fits Lambda's response limit.
MAX_RESPONSE_BYTES = LAMBDA_RESPONSE_LIMIT - RESPONSE_DOCUMENT_RESERVE
TRUNCATION_MARK = "…[truncated]"
# Strings that may be cut when a response would exceed the cap, in the order they are cut (§2.1).
_EVAL_ROW_KEYS = ("prompt", "expected", "actual", "reasoning")
_EXAMPLE_KEYS = ("input", "output")


def data_envelope(data: Any, meta: dict[str, int] | None = None) -> dict[str, Any]:
    return {"data": data} if meta is None else {"data": data, "meta": meta}


def error_envelope(error: TtError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = [{"field": d.field, "message": d.message} for d in error.details]
    return {"error": body}


def dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def escaped_size(text: str) -> int:
    """The bytes a string takes inside a JSON document, as Lambda counts a response body: quotes and
    backslashes doubled, control characters and (at worst, ASCII-escaping runtimes) every non-ASCII
    character six bytes. Never less than its UTF-8 size."""
    return max(len(json.dumps(text)), len(text.encode()))


def request_event_too_large(event: dict[str, Any], limit: int = LAMBDA_REQUEST_LIMIT) -> bool:
    """Whether the invocation event, serialised as Lambda counts it, is over its request limit (the body is
    in it as an escaped JSON string)."""
    body = event.get("body") or ""
    if 6 * len(body) + RESPONSE_DOCUMENT_RESERVE < limit:  # cannot exceed however it is escaped
        return False
    return len(json.dumps(event, ensure_ascii=False).encode()) > limit


def _size(payload: Any) -> int:
    return escaped_size(dumps(payload))


def _truncatable(node: Any, keys: tuple[str, ...]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (object, key) whose string value may be cut, found anywhere in the payload."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str):
                yield node, key
            else:
                yield from _truncatable(value, keys)
    elif isinstance(node, list):
        for item in node:
            yield from _truncatable(item, keys)


def _cap_strings(slots: list[tuple[dict[str, Any], str]], cap: int) -> None:
    for obj, key in slots:
        if len(obj[key]) > cap:
            obj[key] = obj[key][: max(0, cap - len(TRUNCATION_MARK))] + TRUNCATION_MARK


def fit_response(payload: Any, limit: int = MAX_RESPONSE_BYTES) -> str:
    """Serialise, cutting the longest eval-row strings, then spec examples, until the body fits.

    The caller's objects are never changed: stored data stays whole, only this response is cut.
    """
    text = dumps(payload)
    if escaped_size(text) <= limit:
        return text
    payload = json.loads(text)  # a private copy to cut
    for keys in (_EVAL_ROW_KEYS, _EXAMPLE_KEYS):
        slots = list(_truncatable(payload, keys))
        if not slots:
            continue
        # Binary-search the largest per-string cap that fits: cutting only the longest strings.
        longest = max(len(obj[key]) for obj, key in slots)
        low, high = len(TRUNCATION_MARK), longest
        originals = [obj[key] for obj, key in slots]
        while low < high:
            cap = (low + high + 1) // 2
            _cap_strings(slots, cap)
            fits = _size(payload) <= limit
            for (obj, key), original in zip(slots, originals, strict=True):
                obj[key] = original
            low, high = (cap, high) if fits else (low, cap - 1)
        _cap_strings(slots, low)
        text = dumps(payload)
        if escaped_size(text) <= limit:
            return text
    return text
