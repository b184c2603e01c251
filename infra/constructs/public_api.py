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
    ENV_CORS_ALLOWED_ORIGINS,
    GATEWAY_ERRORS,
    PUBLIC_PATHS,
    RETRY_AFTER_SECONDS,
)

API_HANDLER = "functions.api.handler.lambda_handler"
AUTHORIZER_HANDLER = "functions.authorizer.handler.lambda_handler"
AUTHORIZATION_HEADER = "Authorization"
# What the dashboard sends cross-origin (web/app/api.js, pages): the preflight must allow each.
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match")
CORS_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")
CORS_MAX_AGE = Duration.minutes(10)

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

        # API Gateway logs need the account's API Gateway CloudWatch role (StageConfig.api_gateway_logging).
        self.access_log_group: logs.LogGroup | None = None
        logging: dict[str, object] = {}
        if config.api_gateway_logs:
            self.access_log_group = logs.LogGroup(
                self, "AccessLogs", retention=config.log_retention, removal_policy=config.removal_policy
            )
            logging = {
                "access_log_destination": apigateway.LogGroupLogDestination(self.access_log_group),
                "access_log_format": apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                "logging_level": apigateway.MethodLoggingLevel.ERROR,
            }
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{Stack.of(self).stack_name}-{config.stage}",
            description=f"Tuned Tensor public API ({config.stage})",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # Only on request: the role is account-wide, and setting it replaces whatever role other APIs
            # of the account use. CDK keeps it on stack deletion so they are not left without one.
            cloud_watch_role=config.api_gateway_logging == "create_role",
            deploy_options=apigateway.StageOptions(
                stage_name=API_STAGE_NAME,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                **logging,  # type: ignore[arg-type]
                # Never log request/response bodies: they hold API keys and dataset contents.
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        self.gateway_responses = [
            self.rest_api.add_gateway_response(
                "".join(word.title() for word in response_type.split("_")) + "Response",
                type=apigateway.ResponseType.of(response_type),
                status_code=str(response.status),
                response_headers=response.headers(),
                templates={"application/json": response.template()},
            )
            for response_type, response in GATEWAY_RESPONSES.items()
        ]

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
        self.resources = [method.resource for method in (*self.public_methods, self.proxy_method)]
        self._acknowledge_findings(config)

    def allow_origin(self, origin: str) -> None:
        """Let a browser page on `origin` (the deployed dashboard) call the API: CORS on every answer.

        Preflights are answered by API Gateway itself, without the authorizer (browsers send no credentials
        with them); the function's answers and API Gateway's own errors (401, 403, 429, 5xx) carry the
        header too, or the page could not read why a call failed.
        """
        self.api_function.add_environment(ENV_CORS_ALLOWED_ORIGINS, origin)
        for resource in self.resources:
            resource.add_cors_preflight(
                allow_origins=[origin],
                allow_methods=list(CORS_METHODS),
                allow_headers=list(CORS_REQUEST_HEADERS),
                max_age=CORS_MAX_AGE,
            )
        for gateway_response in self.gateway_responses:
            cfn = gateway_response.node.default_child
            assert isinstance(cfn, apigateway.CfnGatewayResponse)
            # A literal dot in an override path is escaped: the key is `gatewayresponse.header.<name>`.
            for name, value in (("Access-Control-Allow-Origin", f"'{origin}'"), ("Vary", "'Origin'")):
                cfn.add_property_override(f"ResponseParameters.gatewayresponse\\.header\\.{name}", value)
        # cdk-nag's APIG4/COG4 leave OPTIONS methods alone: preflights carry no credentials by design.

    def _acknowledge_findings(self, config: StageConfig) -> None:
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
        if not config.api_gateway_logs:
            for rule in ("AwsSolutions-APIG1", "AwsSolutions-APIG6"):
                nag.acknowledge(
                    self.rest_api.deployment_stage,
                    rule,
                    "API Gateway access and execution logs are off by default (api_gateway_logging=off): "
                    "they need the account-wide API Gateway CloudWatch role, which a fresh account lacks and "
                    "this stack sets only when asked (-c api_gateway_logging=create_role). Functions log.",
                )
        cloud_watch_role = self.rest_api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is None:
            return
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
