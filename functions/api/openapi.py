"""The OpenAPI 3.1 document and the offline Swagger UI page, built once per container.

Powertools derives paths, parameters and body schemas from the routes; what it cannot know is added
here, so the document describes exactly what the server does: 204 without content, the headers of
PRODUCT.md §2.5–§2.6 and §2.1, and operations grouped by resource.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tt_core.schema import PUBLIC_PATHS

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

_PRINTABLE_ASCII = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\u0020-\\u007e]+$"}


def _header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


_IDEMPOTENCY_KEY = _header(
    "Idempotency-Key",
    "Makes the request safe to retry for 24 h: the same key and body replay the first response "
    "(`Idempotent-Replayed: true`); the same key with another body → 409 `idempotency_key_reused`.",
    _PRINTABLE_ASCII,
)
_ACTION_ID = _header(
    "X-Tuned-Tensor-Action-Id",
    "An agent-driven client's action id (a UUID). On a create without `Idempotency-Key` it acts as "
    "that key; on an update it is logged.",
    _PRINTABLE_ASCII,
)
# `*` or a timestamp: an empty or blank value is no precondition the server can check (→ 400).
_PRECONDITION = {"type": "string", "minLength": 1, "pattern": "\\S"}
_IF_MATCH = _header(
    "If-Match",
    "The spec's `updated_at` this update is based on (quotes optional; `*` = no check); another "
    "timestamp → 409 `spec_modified`; a value that is no timestamp (empty, blank, …) → 400.",
    _PRECONDITION,
)
_EXPECTED_UPDATED_AT = _header(
    "X-Tuned-Tensor-Expected-Updated-At", "As `If-Match`, without quotes.", _PRECONDITION
)
# (method, path) of the operations whose body may be left out: an empty body reads as `{}` (§9.1).
_OPTIONAL_BODIES = {
    ("post", "/behavior-specs/{spec_id}/runs"),
    ("post", "/behavior-specs/{spec_id}/runs/estimate"),
}


def _operation_header(operation: str) -> dict[str, Any]:
    return _header(
        "X-Tuned-Tensor-Operation",
        f"Sent with `X-Tuned-Tensor-Action-Id`: must be `{operation}` here.",
        {"type": "string", "enum": [operation]},
    )


# (method, path) → the optional request headers the operation reads.
_REQUEST_HEADERS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("post", "/behavior-specs"): [_IDEMPOTENCY_KEY, _ACTION_ID, _operation_header("create_spec")],
    ("put", "/behavior-specs/{spec_id}"): [
        _IF_MATCH,
        _EXPECTED_UPDATED_AT,
        _ACTION_ID,
        _operation_header("update_spec"),
    ],
    ("post", "/behavior-specs/{spec_id}/runs"): [_IDEMPOTENCY_KEY],
}
_REQUEST_ID = {
    "description": "Identifies the request in the logs.",
    "required": True,
    "schema": {"type": "string"},
}
_ETAG = {
    "description": "The spec's `updated_at` in quotes: send it back as `If-Match`.",
    "required": True,
    "schema": {"type": "string"},
}
_REPLAYED = {
    "description": "`true` when this is the stored response to an earlier request with the same key.",
    "required": False,
    "schema": {"type": "string", "enum": ["true"]},
}
_RETRY_AFTER = {
    "description": "Seconds to wait.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
# (method, path) → headers of the success response besides X-Request-Id.
_SUCCESS_HEADERS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/behavior-specs"): {"ETag": _ETAG, "Idempotent-Replayed": _REPLAYED},
    ("get", "/behavior-specs/{spec_id}"): {"ETag": _ETAG},
    ("put", "/behavior-specs/{spec_id}"): {"ETag": _ETAG},
    ("post", "/behavior-specs/{spec_id}/runs"): {"Idempotent-Replayed": _REPLAYED},
}
# Path prefix → tag, most specific first.
_TAGS = (
    ("/behavior-specs/{spec_id}/runs", "Runs"),
    ("/behavior-specs", "Behaviour specs"),
    ("/runs", "Runs"),
    ("/datasets", "Datasets"),
    ("/models", "Models"),
    ("/playground", "Playground"),
    ("/api-keys", "API keys"),
    ("/version", "Service"),
)
_TAG_DESCRIPTIONS = {  # in the order Swagger UI shows them
    "Behaviour specs": "What the model should do: prompt, rules, examples (PRODUCT.md §6).",
    "Runs": "Fine-tuning runs of a spec: start, estimate, follow, cancel, report (§9, §10).",
    "Datasets": "Uploaded JSONL training rows (§8).",
    "Models": "The fine-tuned models completed runs registered (§11).",
    "Playground": "The model inventory; chat completions on the local stack (§12).",
    "API keys": "The account's API keys (§4).",
    "Service": "Version and capabilities (§13).",
}


def _without_framework_422(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools documents a 422 for validated routes; this API answers 400 validation_error instead."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    return document


def _tag(path: str) -> str:
    return next((tag for prefix, tag in _TAGS if path == prefix or path.startswith(prefix + "/")), "Service")


def _describe_server_behaviour(document: dict[str, Any]) -> dict[str, Any]:
    used: set[str] = set()
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            operation["tags"] = [_tag(path)]
            used.add(operation["tags"][0])
            if (method, path) in _OPTIONAL_BODIES:
                operation["requestBody"]["required"] = False
                operation["requestBody"]["description"] = "Optional: no body, or `{}`, means every default."
            parameters = operation.setdefault("parameters", [])
            parameters.extend(_REQUEST_HEADERS.get((method, path), []))
            if not parameters:
                del operation["parameters"]
            for status, response in operation.get("responses", {}).items():
                if status == "204":
                    response.pop("content", None)  # 204 has no body (PRODUCT.md §2.1)
                headers = {"X-Request-Id": _REQUEST_ID}
                if status.startswith("2"):
                    headers.update(_SUCCESS_HEADERS.get((method, path), {}))
                if status == "429":
                    headers["Retry-After"] = _RETRY_AFTER
                response["headers"] = headers
    document["tags"] = [
        {"name": tag, "description": description}
        for tag, description in _TAG_DESCRIPTIONS.items()
        if tag in used
    ]
    return document


@cache
def openapi_document(app: APIGatewayRestResolver, base_path: str) -> str:
    # Imported here: the OpenAPI models cost ~140 ms of cold start that only these two routes need.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

    schema = app.get_openapi_json_schema(
        title="Tuned Tensor API",
        version="v1",
        description="Turn a behaviour spec into a fine-tuned small language model.",
        servers=[Server(url=base_path)],
        security_schemes={"apiKey": HTTPBearer(description="Authorization: Bearer tt_…")},
        security=[{"apiKey": []}],
    )
    document = _describe_server_behaviour(_without_framework_422(json.loads(schema)))
    for path in PUBLIC_PATHS:
        for operation in document["paths"].get(f"/{path}", {}).values():
            operation["security"] = []
    return json.dumps(document)


@cache
def swagger_page(app: APIGatewayRestResolver, base_path: str) -> str:
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import html

    # The Swagger UI script and styles ship inside Powertools and are inlined: the page works offline.
    assets = Path(html.__file__).parent
    return html.generate_swagger_html(
        openapi_document(app, base_path).replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
