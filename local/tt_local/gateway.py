"""An in-process stand-in for API Gateway: HTTP request → authorizer → REST proxy event → handler.

It reproduces what the stack configures on AWS: stage `api`, resources under `/v1`, the public
paths without authorizer, the REQUEST authorizer on everything else, and the gateway's own errors
in the product's envelope.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from tt_core.schema import API_STAGE_NAME, API_VERSION_PATH, GATEWAY_ERRORS, PUBLIC_PATHS, RETRY_AFTER_SECONDS

Handler = Callable[[dict[str, Any], Any], Any]
# API Gateway's own limit on a request payload.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
ACCOUNT = "000000000000"


@dataclass
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline_ms: float = field(default_factory=lambda: time.time() * 1000 + 29_000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[tuple[str, str]] | None = None,
    request_id: str | None = None,
) -> GatewayResponse:
    """A response in the product's error envelope; `validation_error` always has its details."""
    request_id = request_id or str(uuid.uuid4())
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None or code == "validation_error":
        error["details"] = [{"field": field, "message": text} for field, text in details or []]
    headers = [("Content-Type", "application/json"), ("X-Request-Id", request_id)]
    if status == 429:
        headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    return GatewayResponse(status, headers, json.dumps({"error": error}).encode())


def _gateway_error(kind: str, request_id: str) -> GatewayResponse:
    status, code, message = GATEWAY_ERRORS[kind]
    return error_response(
        status, code, message.replace("$context.requestId", request_id), request_id=request_id
    )


class Gateway(Protocol):
    """What the HTTP server calls: this module's LocalGateway, or the worker pool (api_workers.py)."""

    def handle(
        self, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> GatewayResponse: ...


class LocalGateway:
    def __init__(self, api: Handler, authorizer: Handler) -> None:
        self._api = api
        self._authorizer = authorizer

    def handle(
        self, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> GatewayResponse:
        request_id = str(uuid.uuid4())
        stage_prefix = f"/{API_STAGE_NAME}"
        resource_root = f"/{API_VERSION_PATH}"
        # /api/v1/… is the stage URL; /v1/… is what a custom domain mapped to the stage serves
        # (the customer's docs use https://api.<host>/v1/…), so both reach the same resources.
        path = raw_path[len(stage_prefix) :] if raw_path.startswith(stage_prefix + "/") else raw_path
        if not path.startswith(resource_root + "/"):
            return _gateway_error("MISSING_AUTHENTICATION_TOKEN", request_id)
        if len(body) > MAX_PAYLOAD_BYTES:
            return _gateway_error("REQUEST_TOO_LARGE", request_id)
        proxy = path[len(resource_root) + 1 :]
        public = method == "GET" and proxy in PUBLIC_PATHS
        resource = f"{resource_root}/{proxy}" if public else f"{resource_root}/{{proxy+}}"
        multi_query = parse_qs(query, keep_blank_values=True)
        single_query = {k: v[-1] for k, v in multi_query.items()}
        header_map = dict(headers)
        request_context: dict[str, Any] = {
            "resourcePath": resource,
            "httpMethod": method,
            "path": stage_prefix + path,
            "stage": API_STAGE_NAME,
            "requestId": request_id,
            "accountId": ACCOUNT,
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1"},
            "requestTimeEpoch": int(time.time() * 1000),
        }
        if not public:
            denied = self._authorize(method, path, header_map, single_query, request_context)
            if isinstance(denied, GatewayResponse):
                return denied
        try:
            text = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            return error_response(
                400,
                "validation_error",
                "Request body is invalid: body is not valid UTF-8",
                details=[("body", "is not valid UTF-8")],
                request_id=request_id,
            )
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": header_map,
            "multiValueHeaders": {k: [v] for k, v in header_map.items()},
            "queryStringParameters": single_query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": None if public else {"proxy": proxy},
            "stageVariables": None,
            "requestContext": request_context,
            "body": text,
            "isBase64Encoded": False,
        }
        try:
            result = self._api(event, LambdaContext("api"))
        except Exception:  # the function crashed: API Gateway answers 502 on AWS
            return _gateway_error("DEFAULT_5XX", request_id)
        return self._to_response(result, request_id)

    def _authorize(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        query: dict[str, str],
        request_context: dict[str, Any],
    ) -> GatewayResponse | None:
        request_id = request_context["requestId"]
        if not any(k.lower() == "authorization" for k in headers):
            # The identity source is missing: API Gateway refuses without calling the authorizer.
            return _gateway_error("UNAUTHORIZED", request_id)
        event = {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:local:{ACCOUNT}:local/{API_STAGE_NAME}/{method}{path}",
            "resource": request_context["resourcePath"],
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "queryStringParameters": query,
            "requestContext": request_context,
        }
        try:
            decision = self._authorizer(event, LambdaContext("authorizer"))
        except Exception as error:
            kind = "UNAUTHORIZED" if str(error) == "Unauthorized" else "AUTHORIZER_FAILURE"
            return _gateway_error(kind, request_id)
        statements = decision.get("policyDocument", {}).get("Statement", [])
        if not statements or any(s.get("Effect") != "Allow" for s in statements):
            return _gateway_error("ACCESS_DENIED", request_id)
        request_context["authorizer"] = {
            "principalId": decision.get("principalId"),
            **{k: str(v) for k, v in (decision.get("context") or {}).items()},
        }
        return None

    @staticmethod
    def _to_response(result: Mapping[str, Any], request_id: str) -> GatewayResponse:
        headers: list[tuple[str, str]] = []
        for name, value in (result.get("headers") or {}).items():
            headers.append((name, str(value)))
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(v)) for v in values)
        if not any(k.lower() == "x-request-id" for k, _ in headers):
            headers.append(("X-Request-Id", request_id))
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return GatewayResponse(int(result.get("statusCode", 502)), headers, data)
