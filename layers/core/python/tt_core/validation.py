"""Request validation: pydantic errors as `{field, message}` details (§2.2) and body nesting (§2.5)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tt_core.errors import ErrorDetail


def _field_path(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if not parts:
        return "body"
    return ".".join(parts)


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "string_type":
        return "must be a string"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be an integer"
    if kind in ("float_type", "float_parsing"):
        return "must be a number"
    if kind in ("bool_type", "bool_parsing"):
        return "must be a boolean"
    if kind == "list_type":
        return "must be an array"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a JSON object"
    if kind == "json_invalid":
        return "is not valid JSON"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), None)
        words = {
            "greater_than_equal": "at least",
            "greater_than": "greater than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }
        return f"must be {words[kind]} {bound}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "value_error":
        # Our own validators raise ValueError("<sentence>"); pydantic prefixes "Value error, ".
        return str(error.get("msg", "")).removeprefix("Value error, ")
    return str(error.get("msg", "is invalid")).lower()


def details_from_errors(errors: Iterable[Mapping[str, Any]], *, drop_prefix: int = 0) -> list[ErrorDetail]:
    """One detail per error; `drop_prefix` removes leading loc parts such as Powertools' "body"."""
    details = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            loc = ["body"]
        elif drop_prefix and loc[:1] == ["body"]:
            loc = loc[drop_prefix:] or ["body"]
        details.append(ErrorDetail(_field_path(loc), _message(error)))
    return details


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
