"""Shared model pieces: timestamps, request bases, pagination."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

T = TypeVar("T")


class Model(BaseModel):
    """Base of every model: schemas are built on first use, not at import (Lambda cold start)."""

    model_config = ConfigDict(defer_build=True)


# Fields a client may send back from an object it received; they are ignored (PRODUCT.md §2.1).
READ_ONLY_FIELDS = frozenset({"id", "created_at", "updated_at"})


def format_timestamp(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds and Z: 2026-03-06T08:27:33.492Z."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Inverse of format_timestamp; raises ValueError on anything else ISO-8601 cannot read."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]

# C0 and C1 control characters (NUL, CR, LF, …): never part of a name or a header value.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NO_CONTROL_CHARACTERS = r"^[^\u0000-\u001f\u007f-\u009f]*$"  # the same rule, for the OpenAPI schema


def _without_control_characters(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters (such as NUL, CR or LF)")
    return value


# A name shown in lists and terminals: one line of 1–255 characters.
Name = Annotated[
    str,
    Field(min_length=1, max_length=255, json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}),
    AfterValidator(_without_control_characters),
]


# What a stored number can be (DynamoDB: magnitude 1e-130 to 9.99e125; no NaN, no Infinity). Every
# float a request may carry is held to it, so nothing accepted fails later in storage (a 500).
SMALLEST_STORABLE = 1e-130
LARGEST_STORABLE = 9.99e125


def _storable(value: float) -> float:
    if value != 0 and not SMALLEST_STORABLE <= abs(value) <= LARGEST_STORABLE:
        raise ValueError(
            "cannot be stored: a number other than 0 must lie between 1e-130 and 9.99e125 in magnitude"
        )
    return value


class _Storable:
    """Annotated marker, placed after a float's bounds: the number fits storage, and the schema says so."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_storable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["description"] = "0, or between 1e-130 and 9.99e125 in magnitude (what storage holds)."
        return json_schema


# Usage: Annotated[float, Field(ge=0, le=1), STORABLE] (after the bounds, so the schema keeps them).
STORABLE = _Storable()


def finite_json(value: Any) -> Any:
    """A free-form JSON value holds no NaN or Infinity: JSON cannot, and storing them would change them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must not contain NaN or Infinity: JSON numbers are finite")
    for item in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
        finite_json(item)
    return value


class RequestModel(Model):
    """A request body: unknown fields are refused, read-only fields are accepted and dropped.

    Strict types: a string is never read as a number or a boolean, nor a boolean as a number (an
    integer is still a valid float); NaN and Infinity are refused.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        own = cls.model_fields
        return {
            key: value
            for key, value in data.items()
            if key in own or not (key in READ_ONLY_FIELDS or str(key).startswith("_"))
        }


class PageQuery(Model):
    """`page` ≥ 1 and `per_page` 1–100 (PRODUCT.md §2.3)."""

    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=20, ge=1, le=100)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


class ListMeta(Model):
    page: int
    per_page: int
    total: int


def normalize_id(value: str) -> str | None:
    """The lower-case form of a UUID path id, or None when it is not a UUID (which reads as 404)."""
    import uuid

    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        return None


class Envelope(Model, Generic[T]):
    """`{"data": …}` as documented in the OpenAPI description."""

    data: T


class ListEnvelope(Model, Generic[T]):
    data: list[T]
    meta: ListMeta


class ErrorDetailBody(Model):
    field: str
    message: str


class ErrorBody(Model):
    code: str
    message: str
    details: list[ErrorDetailBody] | None = None


class ErrorEnvelope(Model):
    error: ErrorBody
