"""The one error hierarchy: each TtError carries its HTTP status and the product's error code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorDetail:
    """One `{field, message}` entry of a validation error."""

    field: str
    message: str


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
