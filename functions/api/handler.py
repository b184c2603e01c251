"""The API function: the Powertools REST resolver with one router per resource."""

from __future__ import annotations

import base64
import threading
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api import openapi
from functions.api.http import (
    JSON,
    MAX_BODY_NESTING,
    cors_headers,
    nesting_exceeds,
    parse_json,
    respond,
    with_action_id,
)
from functions.api.routers import api_keys, behavior_specs, datasets, meta, playground, runs, tuned_models
from tt_core import wiring
from tt_core.envelope import dumps, error_envelope, request_event_too_large
from tt_core.errors import (
    InternalError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    TtError,
    details_from_errors,
)
from tt_core.observability import logger, metrics, tracer
from tt_core.schema import API_STAGE_NAME, API_VERSION_PATH

MAX_REQUEST_BYTES = 6 * 1024 * 1024
# Powertools keeps the event being resolved in process-wide state (BaseRouter.current_event), so two
# requests resolved side by side in one process (the local stack's threads) could swap accounts. On
# Lambda an environment runs one invocation at a time and this lock is never contended.
_resolving = threading.Lock()
BASE_PATH = f"/{API_STAGE_NAME}/{API_VERSION_PATH}"

# On AWS the event path is /v1/… (the stage is not part of it); behind a custom domain or the local
# stack it may carry /api/v1/…. Routes are written relative to both.
app = APIGatewayRestResolver(
    enable_validation=True,
    strip_prefixes=[BASE_PATH, f"/{API_VERSION_PATH}"],
    json_body_deserializer=parse_json,
)
app.include_router(behavior_specs.router)
app.include_router(api_keys.router)
app.include_router(datasets.router)
app.include_router(runs.router)
app.include_router(tuned_models.router)
app.include_router(playground.router)
app.include_router(meta.router)


def _error(error: TtError) -> Response[Any]:
    return respond(error.http_status, error_envelope(error), error.headers)


@app.get("/openapi.json", include_in_schema=False)
def openapi_json() -> Response[Any]:
    return Response(status_code=200, content_type=JSON, body=openapi.openapi_document(app, BASE_PATH))


@app.get("/docs", include_in_schema=False)
def swagger_ui() -> Response[Any]:
    return Response(status_code=200, content_type="text/html", body=openapi.swagger_page(app, BASE_PATH))


@app.exception_handler(TtError)
def handle_product_error(error: TtError) -> Response[Any]:
    return _error(error)


@app.exception_handler(RequestValidationError)
def handle_validation_error(error: RequestValidationError) -> Response[Any]:
    return _error(InvalidRequestError.for_fields(details_from_errors(error.errors(), drop_prefix=1)))


@app.not_found
def handle_unknown_route(_: RouteNotFoundError) -> Response[Any]:
    return _error(NotFoundError("Route not found"))


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response[Any]:
    logger.exception("Unhandled error")
    return _error(InternalError(f"Internal error (request {_request_id()})"))


def _request_id() -> str:
    return str((app.current_event.request_context.request_id if app.current_event else None) or "unknown")


def _normalise(event: dict[str, Any]) -> dict[str, Any] | TtError:
    """Body rules of PRODUCT.md §2.1 that hold before routing: size cap, empty POST body is {}."""
    body = event.get("body")
    if body and event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", errors="replace")
    # The body itself, and the event it arrives in as Lambda counts it (the body JSON-escaped inside):
    # an event over Lambda's limit never reaches a function on AWS, so the local stack refuses it too.
    if body and (len(body.encode()) > MAX_REQUEST_BYTES or request_event_too_large(event)):
        return PayloadTooLargeError("Request body exceeds the 6 MB limit.")
    method = event.get("httpMethod", "GET")
    if method in ("POST", "PUT", "PATCH") and not (body or "").strip():
        body = "{}"
    if method in ("POST", "PUT", "PATCH") and body and nesting_exceeds(body):
        return InvalidRequestError.for_field(
            "body", f"must not nest objects and arrays more than {MAX_BODY_NESTING} levels deep"
        )
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    if body is not None:
        # Bodies are JSON whatever Content-Type a client sent (curl -d defaults to a form type).
        headers["Content-Type"], multi["Content-Type"] = JSON, [JSON]
    event = {**event, "body": body, "isBase64Encoded": False, "headers": headers, "multiValueHeaders": multi}
    return with_action_id(event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # bodies hold specs, rows and new keys
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId") or getattr(
        context, "aws_request_id", ""
    )
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    if authorizer.get("account_id"):
        logger.append_keys(account_id=authorizer["account_id"])
    normalised = _normalise(event)
    result: dict[str, Any]
    if isinstance(normalised, TtError):
        result = {
            "statusCode": normalised.http_status,
            "body": dumps(error_envelope(normalised)),
            "isBase64Encoded": False,
            "multiValueHeaders": {"Content-Type": [JSON]},
        }
    else:
        with _resolving:
            result = app.resolve(normalised, context)
    headers = result.setdefault("multiValueHeaders", {})
    headers["X-Request-Id"] = [request_id]
    # Every answer, errors included, so that the dashboard on its own origin can read it.
    headers.update(cors_headers(event.get("headers"), wiring.settings().cors_allowed_origins))
    return result
