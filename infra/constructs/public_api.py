"""PublicApi: the REST API (stage `api`, resources under `/v1`), its authorizer and API functions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.config import StageConfig
from infra.constructs.lambda_defaults import FunctionDefaults, make_function
from tt_core.schema import (
    API_STAGE_NAME,
    API_VERSION_PATH,
    GATEWAY_ERRORS,
    PUBLIC_PATHS,
    RETRY_AFTER_SECONDS,
)

API_HANDLER = "functions.api.handler.lambda_handler"
AUTHORIZER_HANDLER = "functions.authorizer.handler.lambda_handler"
AUTHORIZATION_HEADER = "Authorization"

# Access-log line per request, JSON so that metric filters and Logs Insights can read fields.
# Every value is quoted: the line stays valid JSON whatever a variable holds ("-" when empty).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "apiId": "$context.apiId",
    "stage": "$context.stage",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "authorizerError": "$context.authorizer.error",
    "accountId": "$context.authorizer.account_id",
}


@dataclass(frozen=True)
class ErrorResponse:
    """How API Gateway's own error responses map onto the product's error catalogue (PRODUCT.md §2.4)."""

    status: int
    code: str
    message: str
    details: bool = False  # validation_error envelopes always carry a `details` list
    retry_after_seconds: int | None = None

    def template(self) -> str:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = []
        return json.dumps({"error": error})

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "'application/json'", "X-Request-Id": "context.requestId"}
        if self.retry_after_seconds is not None:
            headers["Retry-After"] = f"'{self.retry_after_seconds}'"
        return headers


# Keyed by API Gateway's response type names (ResponseType.of(name)); one table with the local stack.
GATEWAY_RESPONSES: Mapping[str, ErrorResponse] = {
    name: ErrorResponse(
        status,
        code,
        message,
        details=code == "validation_error",
        retry_after_seconds=RETRY_AFTER_SECONDS if status == 429 else None,
    )
    for name, (status, code, message) in GATEWAY_ERRORS.items()
}


class PublicApi(Construct):
    """`/api/v1/...`: three public GETs and `{proxy+}` behind the API-key authorizer, one API function."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        defaults: FunctionDefaults,
    ) -> None:
        super().__init__(scope, id)
        self.api_function = make_function(
            self,
            "ApiFunction",
            handler=API_HANDLER,
            defaults=defaults,
            memory_mb=config.api_memory_mb,
            timeout=Duration.seconds(config.api_timeout_seconds),
            description="Tuned Tensor API (every /api/v1 route)",
        )
        self.authorizer_function = make_function(
            self,
            "AuthorizerFunction",
            handler=AUTHORIZER_HANDLER,
            defaults=defaults,
            memory_mb=config.authorizer_memory_mb,
            timeout=Duration.seconds(config.authorizer_timeout_seconds),
            description="Tuned Tensor API-key authorizer",
        )

        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{Stack.of(self).stack_name}-{config.stage}",
            description=f"Tuned Tensor public API ({config.stage})",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # Execution logging (below) needs the account-wide API Gateway CloudWatch role; CDK keeps
            # the role on stack deletion so other APIs in the account are not left without it.
            cloud_watch_role=True,
            deploy_options=apigateway.StageOptions(
                stage_name=API_STAGE_NAME,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                # Never log request/response bodies: they hold API keys and dataset contents.
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        for response_type, response in GATEWAY_RESPONSES.items():
            self.rest_api.add_gateway_response(
                "".join(word.title() for word in response_type.split("_")) + "Response",
                type=apigateway.ResponseType.of(response_type),
                status_code=str(response.status),
                response_headers=response.headers(),
                templates={"application/json": response.template()},
            )

        # The API function validates bodies and parameters itself (pydantic), because only it can
        # produce the product's `details` field paths. This validator checks whatever a method
        # declares as required; no method declares anything today, so nothing is rejected here.
        validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        self.authorizer = apigateway.RequestAuthorizer(
            self,
            "ApiKeyAuthorizer",
            handler=self.authorizer_function,
            identity_sources=[apigateway.IdentitySource.header(AUTHORIZATION_HEADER)],
            results_cache_ttl=Duration.seconds(config.authorizer_cache_ttl_seconds),
        )

        integration = apigateway.LambdaIntegration(self.api_function, proxy=True, allow_test_invoke=False)
        v1 = self.rest_api.root.add_resource(API_VERSION_PATH)
        self.public_methods = [
            v1.add_resource(path).add_method(
                "GET",
                integration,
                authorization_type=apigateway.AuthorizationType.NONE,
                request_validator=validator,
            )
            for path in PUBLIC_PATHS
        ]
        self.proxy_method = v1.add_resource("{proxy+}").add_method(
            "ANY",
            integration,
            authorizer=self.authorizer,
            authorization_type=apigateway.AuthorizationType.CUSTOM,
            request_validator=validator,
        )
        self._acknowledge_findings()

    def _acknowledge_findings(self) -> None:
        for method in self.public_methods:
            nag.acknowledge(
                method,
                "AwsSolutions-APIG4",
                "Public by contract (PRODUCT.md §3, §13): the version, the OpenAPI document and the "
                "docs page answer without an API key, so clients can discover the API before holding one.",
            )
        for method in (*self.public_methods, self.proxy_method):
            nag.acknowledge(
                method,
                "AwsSolutions-COG4",
                "API keys (Authorization: Bearer tt_...) are the product's only credential (PRODUCT.md "
                "§4, §17), checked by the Lambda REQUEST authorizer; there are no Cognito users to pool.",
            )
        nag.acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAF web ACL in this release: the stage throttles at the deployment's rate limit, every "
            "route but three public GETs needs an API key, and a web ACL's fixed monthly cost is an "
            "operator's per-stage choice (associate one with the `api` stage when wanted).",
        )
        cloud_watch_role = self.rest_api.node.find_child("CloudWatchRole")
        nag.acknowledge(
            cloud_watch_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-wide API Gateway CloudWatch role must be able to create log groups named "
            "by API Gateway itself; AWS's managed policy is the documented policy for that role.",
        )

    @property
    def url(self) -> str:
        """The host URL clients are configured with; they append `/api/v1/...` themselves."""
        stack = Stack.of(self)
        return f"https://{self.rest_api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}"
