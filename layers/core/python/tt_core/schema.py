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
# Base-model weights the operator stages for training jobs on AWS (the trainer never downloads):
# base-models/<canonical id>/ holds a Hugging Face model directory (config.json, weights, tokenizer).
BASE_MODELS_PREFIX = "base-models/"
# Uploaded dataset files end in this suffix: the validator's S3 notification filters on it.
DATASET_OBJECT_SUFFIX = ".jsonl"
# Uploads carry this tag until validation starts; a lifecycle rule expires those never validated.
PENDING_UPLOAD_TAG = ("tt-upload", "pending")

AWS_DEFAULT_BASE_MODEL = "meta-llama/Llama-3.2-3B-Instruct"
LOCAL_DEFAULT_BASE_MODEL = "tunedtensor/tiny-chat"

API_STAGE_NAME = "api"
API_VERSION_PATH = "v1"
# Paths under /api/v1 that answer without an API key.
PUBLIC_PATHS = ("version", "openapi.json", "docs")

# API Gateway's own responses, templated into the product's error envelope on AWS and reproduced by
# the local stack: response type → (HTTP status, product code, message).
_NOT_FOUND = (404, "not_found", "Route not found")
_RATE_LIMITED = (429, "rate_limited", "Too many requests: retry later.")
_INTERNAL = (500, "internal_error", "Internal error (request $context.requestId)")
_INVALID = (400, "validation_error", "Request is invalid.")
GATEWAY_ERRORS: dict[str, tuple[int, str, str]] = {
    # The authorizer raised "Unauthorized", or the Authorization header is missing (API Gateway
    # refuses a request without its identity source before calling the authorizer).
    "UNAUTHORIZED": (401, "unauthorized", "Missing or invalid API key: send 'Authorization: Bearer tt_...'."),
    # The authorizer returns Deny only for a revoked key.
    "ACCESS_DENIED": (403, "forbidden", "API key has been revoked."),
    "WAF_FILTERED": (403, "forbidden", "Request blocked by the firewall."),
    # No method uses IAM authorization, so API Gateway sends these only for a path or method that
    # has no resource: "Missing Authentication Token" without an Authorization header, "incomplete
    # signature" (it tries to read a Bearer header as SigV4) with one. Both mean: unknown route.
    "MISSING_AUTHENTICATION_TOKEN": _NOT_FOUND,
    "INCOMPLETE_SIGNATURE": _NOT_FOUND,
    "RESOURCE_NOT_FOUND": _NOT_FOUND,
    "THROTTLED": _RATE_LIMITED,
    "QUOTA_EXCEEDED": _RATE_LIMITED,
    # API Gateway's own body cap (10 MB); the 6 MB product limit is enforced by the API function.
    "REQUEST_TOO_LARGE": (413, "payload_too_large", "Request body exceeds the 6 MB limit."),
    "BAD_REQUEST_PARAMETERS": _INVALID,
    "BAD_REQUEST_BODY": _INVALID,
    "DEFAULT_4XX": _INVALID,
    # The catalogue has one server error, 500 internal_error: timeouts and integration failures are
    # reported as it too, with the request id to quote to the operator.
    "AUTHORIZER_FAILURE": _INTERNAL,
    "AUTHORIZER_CONFIGURATION_ERROR": _INTERNAL,
    "INTEGRATION_FAILURE": _INTERNAL,
    "INTEGRATION_TIMEOUT": _INTERNAL,
    "DEFAULT_5XX": _INTERNAL,
}
RETRY_AFTER_SECONDS = 1
