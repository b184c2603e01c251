"""Constants shared by the runtime, the CDK stack and the local stack: storage layout, API paths,
environment variable names and the training profile of each base model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
# Written last by `tt admin stage-base-model` (id, revision, files): a staged copy without it is partial
# and no run uses it (PRODUCT.md §14.6). The trainer reads the revision from it (tt_trainer.base_model).
BASE_MODEL_MANIFEST = "base_model.json"
# The local stack's staged copies: <data-dir>/base-models/<canonical id>/, read in place by its trainer.
LOCAL_BASE_MODELS_DIR = "base-models"
# An uploaded dataset's object: accounts/<account_id>/datasets/<dataset_id>/data.jsonl. The validator's S3
# notification filters on the whole suffix, so a run's train.jsonl, eval.jsonl and the trainer's
# training_log.jsonl (synced at every step) never invoke it.
DATASET_OBJECT_NAME = "data.jsonl"
DATASET_OBJECT_SUFFIX = f"/{DATASET_OBJECT_NAME}"
# Uploads carry this tag until validation starts; a lifecycle rule expires those never validated.
PENDING_UPLOAD_TAG = ("tt-upload", "pending")

AWS_DEFAULT_BASE_MODEL = "meta-llama/Llama-3.2-3B-Instruct"
LOCAL_DEFAULT_BASE_MODEL = "tunedtensor/tiny-chat"

# PRODUCT.md §14.6: the default stage's stack is TunedTensor, any other stage's TunedTensor-<stage>, so that
# one stage's deploy never updates another's in the same account and region.
STACK_NAME = "TunedTensor"
DEFAULT_STAGE = "dev"


def stack_name(stage: str) -> str:
    """The CloudFormation stack (id and name) of a stage's deployment."""
    return STACK_NAME if stage == DEFAULT_STAGE else f"{STACK_NAME}-{stage}"


# Stack outputs `tt admin` reads (DescribeStacks) to find the deployment's table and bucket.
OUTPUT_TABLE_NAME = "TableName"
OUTPUT_BUCKET_NAME = "BucketName"


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

# Environment variable names: the CDK stack sets them on every function, the local stack reads them
# back from the synthesized template, and contract tests keep the three in step.
ENV_TABLE_NAME = "TT_TABLE_NAME"
ENV_BUCKET_NAME = "TT_BUCKET_NAME"
ENV_MODE = "TT_MODE"
ENV_STAGE = "TT_STAGE"
ENV_DEFAULT_BASE_MODEL = "TT_DEFAULT_BASE_MODEL"
ENV_MAX_ACTIVE_RUNS = "TT_MAX_ACTIVE_RUNS"
# Runs (PRODUCT.md §9, §16).
ENV_STATE_MACHINE_ARN = "TT_STATE_MACHINE_ARN"
# Browser origins the API answers CORS for (comma-separated): the deployed dashboard's.
ENV_CORS_ALLOWED_ORIGINS = "TT_CORS_ALLOWED_ORIGINS"
ENV_MAX_EVAL_EXAMPLES_CEILING = "TT_MAX_EVAL_EXAMPLES_CEILING"
ENV_RUN_TIMEOUT_HOURS = "TT_RUN_TIMEOUT_HOURS"
ENV_TRAINING_POLL_SECONDS = "TT_TRAINING_POLL_SECONDS"
ENV_TRAINING_IMAGE_URI = "TT_TRAINING_IMAGE_URI"
ENV_TRAINING_ROLE_ARN = "TT_TRAINING_ROLE_ARN"
ENV_TRAINING_PROFILES = "TT_TRAINING_PROFILES"  # JSON: base model id → TrainingProfile
ENV_TRAINING_USE_SPOT = "TT_TRAINING_USE_SPOT"
ENV_TRAINING_VOLUME_GB = "TT_TRAINING_VOLUME_GB"
# The local stack only: where LocalProcessLauncher lays out its jobs (the SageMaker directory layout).
ENV_LOCAL_JOBS_DIR = "TT_LOCAL_JOBS_DIR"
# Augmentation and the LLM judge (PRODUCT.md §9.4, §10.2, §16). On AWS the Anthropic API key lives in
# Secrets Manager (the secret's name or ARN); on the local stack it is the usual environment variable.
ENV_ANTHROPIC_API_KEY_SECRET = "TT_ANTHROPIC_API_KEY_SECRET"
ENV_ANTHROPIC_API_KEY = "ANTHROPIC_API_KEY"
ENV_BEDROCK_ENABLED = "TT_BEDROCK_ENABLED"
ENV_AUGMENTATION_MODEL = "TT_AUGMENTATION_MODEL"
ENV_JUDGE_MODEL = "TT_JUDGE_MODEL"
# Set on every Lambda function. The stack uses no pydantic plugin, and looking for one reads the metadata of
# every installed distribution when the first model is built: a cold start's cost (bench/api_cold_import.py).
FUNCTION_RUNTIME_ENVIRONMENT = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
# The Prepare and Evaluate tasks' timeouts: augmentation and the judge plan their calls to fit them.
ENV_PREPARE_TIMEOUT_SECONDS = "TT_PREPARE_TIMEOUT_SECONDS"
ENV_EVALUATE_TIMEOUT_SECONDS = "TT_EVALUATE_TIMEOUT_SECONDS"


class TrainingProfile(BaseModel):
    """Where a base model trains and how fast: the estimate's fallback basis and the job's instance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_type: str = Field(min_length=1)
    # The whole instance, all its GPUs.
    hourly_usd: float = Field(ge=0)
    # Training tokens per second (one pass) on one GPU of that instance (a CPU instance: the instance): the
    # fallback throughput table.
    tokens_per_second: float = Field(gt=0)
    # Fixed start-up overhead of a job (instance, image pull, model load, eval generation set-up).
    startup_minutes: float = Field(default=6, ge=0)
    # GPUs of the instance (0: a CPU instance) and the memory of each in GB (10^9 bytes): the job trains on
    # all of them, and the memory plan (tt_core.runs.memory_plan) budgets one.
    gpus: int = Field(default=1, ge=0)
    gpu_memory_gb: float | None = Field(default=None, gt=0)

    @property
    def instance_tokens_per_second(self) -> float:
        """What the instance trains per second: every GPU it is paid for works (data parallel)."""
        return self.tokens_per_second * max(1, self.gpus)


# On-demand us-east-1 SageMaker training prices. "default" covers any catalogue model without its own row.
# Every GPU row fits with at least 10 % of its GPU to spare at max_seq_length 2,048 and 4 sequences per
# micro-batch (bench/memory_plan.py). ml.g5.2xlarge has the same single A10G (24 GB) as ml.g5.xlarge — only
# more CPUs and host memory — so no row pays for it. Gemma 4 E4B's 8 B weights (16 GB in bf16, per-layer
# embeddings and towers included) would leave an A10G room for one checkpointed sequence per pass: it trains
# on an L40S (48 GB), with about 2.9× an A10's dense bf16 throughput on the data sheets (362 vs 125 TFLOPS;
# the tokens_per_second below assume a conservative 2× the A10G row of the 4 B models).
DEFAULT_TRAINING_PROFILES: dict[str, TrainingProfile] = {
    "default": TrainingProfile(
        instance_type="ml.g5.xlarge", hourly_usd=1.408, tokens_per_second=2500, gpus=1, gpu_memory_gb=24
    ),
    "google/gemma-4-E4B-it": TrainingProfile(
        instance_type="ml.g6e.xlarge", hourly_usd=2.61, tokens_per_second=3000, gpus=1, gpu_memory_gb=48
    ),
    "Qwen/Qwen3.5-4B": TrainingProfile(
        instance_type="ml.g5.xlarge", hourly_usd=1.408, tokens_per_second=1500, gpus=1, gpu_memory_gb=24
    ),
    "tunedtensor/tiny-chat": TrainingProfile(
        instance_type="ml.m5.large", hourly_usd=0.115, tokens_per_second=15000, startup_minutes=3, gpus=0
    ),
}
# The local stack trains on this machine: no instance, no price (PRODUCT.md §9.8).
LOCAL_TRAINING_PROFILE = TrainingProfile(
    instance_type="local", hourly_usd=0, tokens_per_second=10000, startup_minutes=0.2, gpus=0
)
