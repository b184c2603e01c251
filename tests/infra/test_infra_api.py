"""PublicApi: stage `api`, the /v1 resources, who needs the authorizer, and the gateway responses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.public_api import GATEWAY_RESPONSES
from tt_core.errors import TtError
from tt_core.schema import API_STAGE_NAME, API_VERSION_PATH, PUBLIC_PATHS

PROXY = "{proxy+}"


def _all_subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_all_subclasses(sub))]


# The product's error catalogue as the runtime defines it: code -> HTTP status.
CATALOGUE = {cls.code: cls.http_status for cls in (TtError, *_all_subclasses(TtError))}


def _resource_paths(synth) -> dict[str, str]:
    """Logical id of each AWS::ApiGateway::Resource -> its full path, e.g. /v1/{proxy+}."""
    resources = synth.resources("AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def _methods_by_route(synth) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _resource_paths(synth)
    return {
        (props["HttpMethod"], paths[props["ResourceId"]["Ref"]]): props
        for props in (m["Properties"] for m in synth.resources("AWS::ApiGateway::Method").values())
    }


def test_one_regional_rest_api(dev) -> None:
    _, api = dev.only("AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_stage_is_api_with_throttling_logging_tracing_and_metrics(prod) -> None:
    _, stage = prod.only("AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == API_STAGE_NAME == "api"
    assert props["TracingEnabled"] is True
    assert props["MethodSettings"] == [
        {
            "HttpMethod": "*",
            "ResourcePath": "/*",
            "ThrottlingRateLimit": 50,
            "ThrottlingBurstLimit": 100,
            "LoggingLevel": "ERROR",
            "DataTraceEnabled": False,
            "MetricsEnabled": True,
        }
    ]


def test_access_log_is_json_in_its_log_group(prod) -> None:
    _, stage = prod.only("AWS::ApiGateway::Stage")
    setting = stage["Properties"]["AccessLogSetting"]
    fields = json.loads(setting["Format"])
    assert {"requestId", "apiId", "status", "httpMethod", "resourcePath", "errorType"} <= set(fields)
    assert {"Ref": prod.logical_id(prod.stack.api.access_log_group)} in setting["DestinationArn"]["Fn::Join"][
        1
    ]


def test_routes_are_three_public_gets_and_an_authorized_proxy_under_v1(dev) -> None:
    v1 = f"/{API_VERSION_PATH}"
    assert set(_resource_paths(dev).values()) == {v1, f"{v1}/{PROXY}", *(f"{v1}/{p}" for p in PUBLIC_PATHS)}
    assert set(_methods_by_route(dev)) == {
        ("ANY", f"{v1}/{PROXY}"),
        *(("GET", f"{v1}/{p}") for p in PUBLIC_PATHS),
    }


def test_public_paths_need_no_authorization(dev) -> None:
    methods = _methods_by_route(dev)
    for path in PUBLIC_PATHS:
        method = methods[("GET", f"/{API_VERSION_PATH}/{path}")]
        assert method["AuthorizationType"] == "NONE"
        assert "AuthorizerId" not in method


def test_proxy_goes_through_the_request_authorizer(dev) -> None:
    authorizer_id, authorizer = dev.only("AWS::ApiGateway::Authorizer")
    method = _methods_by_route(dev)[("ANY", f"/{API_VERSION_PATH}/{PROXY}")]
    assert method["AuthorizationType"] == "CUSTOM"
    assert method["AuthorizerId"] == {"Ref": authorizer_id}
    props = authorizer["Properties"]
    assert props["Type"] == "REQUEST"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    # No caching: a revoked key must be refused on its next request.
    assert props["AuthorizerResultTtlInSeconds"] == 0
    function_id = dev.logical_id(dev.stack.api.authorizer_function)
    assert {"Fn::GetAtt": [function_id, "Arn"]} in props["AuthorizerUri"]["Fn::Join"][1]


def test_every_method_proxies_to_the_api_function_with_the_validator(dev) -> None:
    validator_id, validator = dev.only("AWS::ApiGateway::RequestValidator")
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    function_arn = {"Fn::GetAtt": [dev.logical_id(dev.stack.api.api_function), "Arn"]}
    for method in _methods_by_route(dev).values():
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert function_arn in method["Integration"]["Uri"]["Fn::Join"][1]
        assert method["RequestValidatorId"] == {"Ref": validator_id}


def _gateway_responses(synth) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.resources("AWS::ApiGateway::GatewayResponse").values()
    }


EXPECTED_RESPONSES = {
    "UNAUTHORIZED": (401, "unauthorized"),
    "ACCESS_DENIED": (403, "forbidden"),
    "WAF_FILTERED": (403, "forbidden"),
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found"),
    "INCOMPLETE_SIGNATURE": (404, "not_found"),
    "RESOURCE_NOT_FOUND": (404, "not_found"),
    "THROTTLED": (429, "rate_limited"),
    "QUOTA_EXCEEDED": (429, "rate_limited"),
    "REQUEST_TOO_LARGE": (413, "payload_too_large"),
    "BAD_REQUEST_PARAMETERS": (400, "validation_error"),
    "BAD_REQUEST_BODY": (400, "validation_error"),
    "DEFAULT_4XX": (400, "validation_error"),
    "AUTHORIZER_FAILURE": (500, "internal_error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "internal_error"),
    "INTEGRATION_FAILURE": (500, "internal_error"),
    "INTEGRATION_TIMEOUT": (500, "internal_error"),
    "DEFAULT_5XX": (500, "internal_error"),
}


def test_gateway_responses_cover_the_expected_types(dev) -> None:
    assert set(_gateway_responses(dev)) == set(EXPECTED_RESPONSES) == set(GATEWAY_RESPONSES)


@pytest.mark.parametrize("response_type", sorted(EXPECTED_RESPONSES))
def test_gateway_response_is_the_product_error_envelope(dev, response_type: str) -> None:
    status, code = EXPECTED_RESPONSES[response_type]
    response = _gateway_responses(dev)[response_type]
    assert response["StatusCode"] == str(status)
    # Same status and code as the runtime's error hierarchy (tt_core.errors).
    assert CATALOGUE[code] == status
    body = json.loads(response["ResponseTemplates"]["application/json"])
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert ("details" in body["error"]) == (code == "validation_error")
    headers = response["ResponseParameters"]
    assert headers["gatewayresponse.header.Content-Type"] == "'application/json'"
    assert headers["gatewayresponse.header.X-Request-Id"] == "context.requestId"


def test_rate_limited_responses_say_when_to_retry(dev) -> None:
    for response_type in ("THROTTLED", "QUOTA_EXCEEDED"):
        headers = _gateway_responses(dev)[response_type]["ResponseParameters"]
        assert headers["gatewayresponse.header.Retry-After"] == "'1'"


def test_internal_errors_quote_the_request_id(dev) -> None:
    for response_type, (status, _) in EXPECTED_RESPONSES.items():
        if status == 500:
            body = json.loads(_gateway_responses(dev)[response_type]["ResponseTemplates"]["application/json"])
            assert body["error"]["message"] == "Internal error (request $context.requestId)"


def test_revoked_key_message(dev) -> None:
    body = json.loads(_gateway_responses(dev)["ACCESS_DENIED"]["ResponseTemplates"]["application/json"])
    assert body["error"]["message"] == "API key has been revoked."


def test_api_gateway_may_invoke_both_functions(dev) -> None:
    permissions = [p["Properties"] for p in dev.resources("AWS::Lambda::Permission").values()]
    for function in (dev.stack.api.api_function, dev.stack.api.authorizer_function):
        arn = {"Fn::GetAtt": [dev.logical_id(function), "Arn"]}
        assert any(
            p["FunctionName"] == arn and p["Principal"] == "apigateway.amazonaws.com" for p in permissions
        )


def test_outputs_give_the_host_url_and_resource_names(dev) -> None:
    outputs = dev.json["Outputs"]
    assert {"ApiUrl", "TableName", "BucketName", "AlarmTopicArn"} <= set(outputs)
    url_parts = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url_parts[0] == "https://" and url_parts[-1] == {"Ref": "AWS::URLSuffix"}
