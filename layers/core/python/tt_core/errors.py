"""The one error hierarchy: each TtError carries its HTTP status and the product's error code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorDetail:
    """One `{field, message}` entry of a validation error."""

    field: str
    message: str


# Pydantic's errors as `{field, message}` details (PRODUCT.md §2.2), for the API and the CLI's lint.
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


class TtError(Exception):
    """Base of every error the product reports to a client."""

    http_status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class InvalidRequestError(TtError):
    http_status = 400
    code = "validation_error"

    @classmethod
    def for_fields(cls, details: list[ErrorDetail]) -> InvalidRequestError:
        """The message names the first problem because many clients print only the message."""
        first = details[0]
        part = first.field.split(".", 1)[0] if first.field.startswith(("query.", "header.")) else "body"
        return cls(f"Request {part} is invalid: {first.field} {first.message}", details=details)

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidRequestError:
        return cls.for_fields([ErrorDetail(field, message)])


class UnauthorizedError(TtError):
    http_status = 401
    code = "unauthorized"


class ForbiddenError(TtError):
    http_status = 403
    code = "forbidden"


class NotFoundError(TtError):
    http_status = 404
    code = "not_found"


class SpecModifiedError(TtError):
    http_status = 409
    code = "spec_modified"


class IdempotencyKeyReusedError(TtError):
    http_status = 409
    code = "idempotency_key_reused"


class IdempotencyKeyInProgressError(TtError):
    http_status = 409
    code = "idempotency_key_in_progress"


class RunLimitReachedError(TtError):
    http_status = 409
    code = "run_limit_reached"


class RunNotCancellableError(TtError):
    http_status = 409
    code = "run_not_cancellable"


class DatasetInUseError(TtError):
    http_status = 409
    code = "dataset_in_use"


class ModelInUseError(TtError):
    http_status = 409
    code = "model_in_use"


class BaseModelUnavailableError(TtError):
    """The deployment has no weights for the base model: the message names the command that stages them."""

    http_status = 409
    code = "base_model_unavailable"


class PlaygroundUnavailableError(TtError):
    http_status = 501
    code = "playground_unavailable"


class RunStepError(TtError):
    """A workflow step failed for a reason the user can act on; its message becomes the run's `error`."""


class LastActiveKeyError(TtError):
    http_status = 409
    code = "last_active_key"


class PayloadTooLargeError(TtError):
    http_status = 413
    code = "payload_too_large"


class RateLimitedError(TtError):
    http_status = 429
    code = "rate_limited"


class InternalError(TtError):
    http_status = 500
    code = "internal_error"
