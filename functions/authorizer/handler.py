"""REQUEST authorizer: resolves `Authorization: Bearer tt_…` to an account for API Gateway.

API Gateway turns the exception message "Unauthorized" into its 401 response and a Deny policy into
its 403 response; both are templated into the product's error envelope by the stack.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tt_core import wiring
from tt_core.errors import ForbiddenError, UnauthorizedError
from tt_core.observability import logger, metrics, tracer

UNAUTHORIZED = "Unauthorized"  # the exact message API Gateway maps to 401


def _authorization_header(event: dict[str, Any]) -> str | None:
    headers = event.get("headers") or {}
    return next((v for k, v in headers.items() if k.lower() == "authorization"), None)


def _policy(principal_id: str, effect: str, method_arn: str, context: dict[str, str]) -> dict[str, Any]:
    # Allow the whole API (arn:…:api-id/stage/*): a cached decision then holds for every route.
    api_arn = "/".join(method_arn.split("/")[:2]) + "/*"
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": api_arn}],
        },
        "context": context,
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    method_arn = event.get("methodArn", "*")
    try:
        principal = wiring.api_key_service().authenticate(_authorization_header(event))
    except UnauthorizedError:
        raise Exception(UNAUTHORIZED) from None
    except ForbiddenError:
        return _policy("revoked", "Deny", method_arn, {"reason": "revoked"})
    logger.append_keys(account_id=principal.account_id)
    return _policy(
        principal.account_id,
        "Allow",
        method_arn,
        {"account_id": principal.account_id, "api_key_id": principal.api_key_id},
    )
