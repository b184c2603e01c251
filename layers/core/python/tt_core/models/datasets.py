"""Datasets (PRODUCT.md §8): upload requests, the stored record, the API object, validation results."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from tt_core.models.common import Model, Name, RequestModel, Timestamp

MAX_DATASET_BYTES = 104_857_600  # 100 MB
MAX_REPORTED_ISSUES = 20

DatasetStatus = Literal["pending_upload", "validating", "validated", "invalid"]
# A media type as an HTTP header carries it (`type/subtype; parameters`): printable ASCII on one
# line, or the signed upload URL would demand a Content-Type header no client can send.
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
MEDIA_TYPE = rf"^{_TOKEN}/{_TOKEN}(?:[ \t]*;[ -~]*)?$"  # `[ -~]`: printable ASCII
# Also a MEDIA_TYPE: checked by UploadUrlRequest, documented by _or_null.
ContentType = Annotated[str, Field(min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=5_000)]


class ValidationIssue(Model):
    """One problem found in an uploaded file: `line` is 1-based, null for whole-file problems."""

    line: int | None
    field: str | None
    code: str
    message: str


class ValidationReport(Model):
    """What validating a file found; `errors` holds the first 20, `error_count` all of them."""

    valid: bool
    row_count: int | None
    file_size_bytes: int
    estimated_tokens: int | None = None
    duplicate_rows: int | None = None
    errors: list[ValidationIssue] = []
    error_count: int = 0

    @classmethod
    def whole_file(cls, code: str, message: str, file_size_bytes: int) -> ValidationReport:
        """A file rejected before its lines are read (size_mismatch, file_too_large, …)."""
        issue = ValidationIssue(line=None, field=None, code=code, message=message)
        return cls(
            valid=False, row_count=None, file_size_bytes=file_size_bytes, errors=[issue], error_count=1
        )

    def dataset_fields(self) -> dict[str, Any]:
        """The dataset attributes this report sets; token and duplicate counts only when valid."""
        return {
            "row_count": self.row_count,
            "file_size_bytes": self.file_size_bytes,
            "estimated_tokens": self.estimated_tokens if self.valid else None,
            "duplicate_rows": self.duplicate_rows if self.valid else None,
            "validation_errors": [issue.model_dump() for issue in self.errors] if not self.valid else None,
            "validation_error_count": self.error_count,
        }


def _or_null(schema: dict[str, Any]) -> None:
    """The schema of a string field the server also takes as null (read as its default)."""
    string = {key: schema.pop(key) for key in list(schema) if key not in ("title", "default", "description")}
    schema["anyOf"] = [{**string, "pattern": MEDIA_TYPE}, {"type": "null"}]


class UploadUrlRequest(RequestModel):
    name: Name
    description: Description | None = None
    filename: Name
    size: int = Field(ge=1, description="Bytes; over 104,857,600 is refused with 413 payload_too_large.")
    contentType: ContentType = Field(default="application/octet-stream", json_schema_extra=_or_null)
    format: Literal["jsonl"] = "jsonl"

    @field_validator("contentType", mode="before")
    @classmethod
    def _default_content_type(cls, value: Any) -> Any:
        # null means the default; "" is refused like any other value that is no media type.
        return "application/octet-stream" if value is None else value

    @field_validator("contentType")
    @classmethod
    def _media_type(cls, value: str) -> str:
        if not re.fullmatch(MEDIA_TYPE, value):
            raise ValueError("must be a media type such as application/octet-stream, on one line")
        return value


class UploadUrl(Model):
    dataset_id: str
    path: str
    upload_url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expires_at: Timestamp


class FinalizeDatasetRequest(RequestModel):
    path: Annotated[str, Field(min_length=1, max_length=1024)]
    name: Name
    description: Description | None = None


class Dataset(Model):
    """The dataset object as the API returns it."""

    id: str
    name: str
    description: str | None = None
    format: Literal["jsonl"] = "jsonl"
    status: DatasetStatus
    row_count: int | None = None
    file_size_bytes: int | None = None
    estimated_tokens: int | None = None
    duplicate_rows: int | None = None
    storage_path: str
    validation_errors: list[ValidationIssue] | None = None
    validation_error_count: int = 0
    source: Literal["upload", "run"]
    run_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp


class DatasetRecord(Dataset):
    """The stored dataset: the object plus what the upload flow needs to remember."""

    account_id: str
    declared_size: int | None = None
    validation_started_at: Timestamp | None = None
    expires_at: Timestamp | None = None  # set while pending_upload: abandoned uploads expire

    def public(self) -> Dataset:
        return Dataset.model_validate(self.model_dump(include=set(Dataset.model_fields)))
