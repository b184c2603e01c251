"""The OpenAPI 3.1 document and the offline Swagger UI page, built once per container."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

from tt_core.schema import PUBLIC_PATHS

_SWAGGER_ASSETS = Path(generate_swagger_html.__code__.co_filename).parent


def _without_framework_422(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools documents a 422 for validated routes; this API answers 400 validation_error instead."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    return document


@cache
def openapi_document(app: APIGatewayRestResolver, base_path: str) -> str:
    schema = app.get_openapi_json_schema(
        title="Tuned Tensor API",
        version="v1",
        description="Turn a behaviour spec into a fine-tuned small language model.",
        servers=[Server(url=base_path)],
        security_schemes={"apiKey": HTTPBearer(description="Authorization: Bearer tt_…")},
        security=[{"apiKey": []}],
    )
    document = _without_framework_422(json.loads(schema))
    for path in PUBLIC_PATHS:
        for operation in document["paths"].get(f"/{path}", {}).values():
            operation["security"] = []
    return json.dumps(document)


@cache
def swagger_page(app: APIGatewayRestResolver, base_path: str) -> str:
    # The Swagger UI script and styles ship inside Powertools and are inlined: the page works offline.
    return generate_swagger_html(
        openapi_document(app, base_path).replace("</", "<\\/"),
        (_SWAGGER_ASSETS / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (_SWAGGER_ASSETS / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
