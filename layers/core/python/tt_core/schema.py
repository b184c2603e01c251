"""Storage layout constants shared by the runtime, the CDK stack and the local stack."""

from __future__ import annotations

# DynamoDB: one table, tenant-first keys (every partition key starts with ACCOUNT#<id>).
PARTITION_KEY = "pk"
SORT_KEY = "sk"
# GSI1 answers "which account owns this API key hash" (the only lookup that starts without an account).
GSI1_NAME = "gsi1"
GSI1_PARTITION_KEY = "gsi1pk"
GSI1_SORT_KEY = "gsi1sk"
# DynamoDB deletes items whose TTL attribute (epoch seconds) has passed: only garbage carries it.
TTL_ATTRIBUTE = "expires_at"

# S3: one bucket, every object under accounts/<account_id>/.
ACCOUNTS_PREFIX = "accounts/"

AWS_DEFAULT_BASE_MODEL = "meta-llama/Llama-3.2-3B-Instruct"
LOCAL_DEFAULT_BASE_MODEL = "tunedtensor/tiny-chat"

API_STAGE_NAME = "api"
API_VERSION_PATH = "v1"
# Paths under /api/v1 that answer without an API key.
PUBLIC_PATHS = ("version", "openapi.json", "docs")

# API Gateway's own responses, templated into the product's error envelope on AWS and reproduced by
# the local stack: response type → (HTTP status, product code, message).
GATEWAY_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNAUTHORIZED": (401, "unauthorized", "Missing or invalid API key: send 'Authorization: Bearer tt_…'."),
    "ACCESS_DENIED": (403, "forbidden", "API key has been revoked."),
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found", "Route not found"),
    "RESOURCE_NOT_FOUND": (404, "not_found", "Route not found"),
    "REQUEST_TOO_LARGE": (413, "payload_too_large", "Request body exceeds the size limit."),
    "THROTTLED": (429, "rate_limited", "Too many requests: retry after the Retry-After delay."),
    "QUOTA_EXCEEDED": (429, "rate_limited", "Too many requests: retry after the Retry-After delay."),
    "AUTHORIZER_FAILURE": (500, "internal_error", "Internal error (request $context.requestId)"),
    "DEFAULT_5XX": (500, "internal_error", "Internal error (request $context.requestId)"),
}
