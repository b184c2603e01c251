"""The OpenAPI 3.1 document and the offline Swagger UI page, built once per container."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tt_core.schema import PUBLIC_PATHS

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver


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
    document = _without_framework_422(json.loads(schema))
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
