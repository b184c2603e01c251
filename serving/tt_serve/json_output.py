"""Structured replies (PRODUCT.md §15.4): the JSON instruction, a reply's first JSON value, validation."""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder()
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int,),
}
MAX_REPORTED = 10


def instruction(schema: dict[str, Any] | None) -> str:
    """What the system message gets appended: JSON only, matching the schema when there is one."""
    if schema is None:
        return "Reply with JSON only: a single JSON object and no other text."
    compact = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
    return f"Reply with JSON only, matching this JSON Schema, and no other text: {compact}"


def correction(errors: list[str], schema: dict[str, Any] | None) -> str:
    """The user turn of a repair attempt."""
    what = "matching the schema" if schema is not None else "a single JSON object"
    return (
        f"That reply is not valid: {'; '.join(errors)}. Reply again with JSON only ({what}), no other text."
    )


def first_json_value(text: str) -> tuple[bool, Any]:
    """The first complete JSON value of a reply: at its start, else at the first `{` or `[` that parses."""
    stripped = text.strip()
    starts = [0] + [i for i, ch in enumerate(stripped) if ch in "{[" and i > 0]
    for start in starts:
        try:
            value, _ = _DECODER.raw_decode(stripped, start)
        except ValueError:
            continue
        return True, value
    return False, None


def _type_ok(value: Any, expected: Any) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    for name in names:
        kinds = _TYPES.get(str(name))
        if kinds is None:
            return True  # an unknown type name is not ours to refuse
        if isinstance(value, bool) and name in ("number", "integer"):
            continue  # JSON booleans are not numbers, although Python's are
        if isinstance(value, kinds):
            return True
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return True
    return False


def validate(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Errors of `value` against the supported subset: type, enum, required, properties,
    additionalProperties: false, items. An empty list means valid."""
    if not isinstance(schema, dict):
        return []
    errors: list[str] = []
    if "type" in schema and not _type_ok(value, schema["type"]):
        return [f"{path} must be of type {schema['type']}"]
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        errors.append(f"{path} must be one of {json.dumps(schema['enum'], ensure_ascii=False)}")
    if isinstance(value, dict):
        for name in schema.get("required") or []:
            if name not in value:
                errors.append(f"{path}.{name} is required")
        declared = schema.get("properties")
        properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
        for name, item in value.items():
            if name in properties:
                errors.extend(validate(item, properties[name], f"{path}.{name}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}.{name} is not allowed")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors.extend(validate(item, schema["items"], f"{path}[{index}]"))
    return errors[:MAX_REPORTED]


def check_reply(text: str, schema: dict[str, Any] | None) -> tuple[str | None, list[str]]:
    """(the compact JSON, []) when the reply holds a valid value, else (None, errors).

    `schema` None is json_object mode: the value must be an object."""
    found, value = first_json_value(text)
    if not found:
        return None, ["the reply holds no complete JSON value"]
    errors = validate(value, schema if schema is not None else {"type": "object"})
    if errors:
        return None, errors
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False), []
