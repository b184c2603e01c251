"""The CLI's one error type: an API error envelope or a client-side failure, printed in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Client-side codes (PRODUCT.md §14.2); their status is 0 except where the code implies one.
NO_API_KEY = "no_api_key"
CONNECTION_ERROR = "connection_error"
INVALID_RESPONSE = "invalid_response"
AMBIGUOUS_ID = "ambiguous_id"
CLI_ERROR = "cli_error"
NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Detail:
    field: str
    message: str


@dataclass
class CliError(Exception):
    """Anything that makes a command exit 1; `envelope` is the server's body when there was one."""

    status: int
    code: str
    message: str
    details: list[Detail] = field(default_factory=list)
    envelope: dict[str, Any] | None = None
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @classmethod
    def local(cls, message: str, *, details: list[Detail] | None = None, hint: str | None = None) -> CliError:
        """A failure found without the API: missing file, bad JSON, lint failure (`cli_error` [0])."""
        return cls(0, CLI_ERROR, message, details or [], hint=hint)

    @classmethod
    def from_envelope(cls, status: int, envelope: dict[str, Any]) -> CliError:
        error = envelope["error"]
        details = [
            Detail(str(d.get("field", "")), str(d.get("message", "")))
            for d in error.get("details") or []
            if isinstance(d, dict)
        ]
        return cls(status, str(error.get("code")), str(error.get("message", "")), details, envelope)

    def to_envelope(self) -> dict[str, Any]:
        """What `--json` prints: the server's envelope as received, else the same shape built here."""
        if self.envelope is not None:
            return self.envelope
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = [{"field": d.field, "message": d.message} for d in self.details]
        return {"error": body}
