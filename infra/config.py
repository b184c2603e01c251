"""StageConfig: every setting that differs between deployments, read once from the CDK context."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tt_core.schema import (
    AWS_DEFAULT_BASE_MODEL,
    DEFAULT_STAGE,
    DEFAULT_TRAINING_PROFILES,
    TrainingProfile,
    stack_name,
)

DEV_STAGE = DEFAULT_STAGE
DEFAULT_REGION = "us-east-1"

# CloudWatch Logs accepts only these retention periods (days → the CDK enum member).
_RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
}

# A Secrets Manager secret by name (`tt/anthropic-api-key`) or by ARN (with or without its suffix).
_SECRET_NAME_OR_ARN = (
    r"^(arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]+)$"
)
_MODEL_ID = r"^[A-Za-z0-9._:/@-]+$"

# Defaults that differ for a stage other than dev; anything given in the context still wins.
_NON_DEV_DEFAULTS: dict[str, Any] = {"log_retention_days": 365}


class StageConfig(BaseModel):
    """One deployment's settings. Stage differences live here and nowhere else in infra/."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field(default=DEV_STAGE, pattern=r"^[a-z][a-z0-9-]{1,15}$")
    # Only used to pick region-specific image URIs (the trainer image); the stack itself stays
    # environment-agnostic so that synth never needs an account.
    region: str = Field(default=DEFAULT_REGION, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    # What the trainer image builds FROM: `public` (Docker Hub's CUDA PyTorch image, no login) or `dlc`
    # (the region's SageMaker PyTorch image; `make deploy` logs in to its registry). infra/trainer_image.py.
    trainer_base: Literal["public", "dlc"] = "public"
    log_retention_days: int = 30
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # API Gateway writes access and execution logs to CloudWatch only through the account's (region-wide)
    # API Gateway CloudWatch role. `off`: no API Gateway logs, so a fresh account deploys as it is;
    # `account_role`: the account already has that role (`aws apigateway get-account`); `create_role`: this
    # stack creates it and sets it for the whole account and region, replacing any role set before.
    api_gateway_logging: Literal["off", "account_role", "create_role"] = "off"
    # The dashboard (web/) as an S3 + CloudFront site; the local stack serves web/ itself.
    dashboard_site: bool = True

    api_memory_mb: int = Field(default=1024, ge=128, le=10240)
    # API Gateway gives up on a REST integration after 29 s: a longer Lambda timeout buys nothing.
    api_timeout_seconds: int = Field(default=29, ge=1, le=29)
    authorizer_memory_mb: int = Field(default=512, ge=128, le=10240)
    # The validator streams 1 MiB chunks (its memory does not grow with the file); 100 MB of JSONL
    # validates in seconds, so 5 minutes leaves room for a slow S3 read.
    validator_memory_mb: int = Field(default=1024, ge=128, le=10240)
    validator_timeout_seconds: int = Field(default=300, ge=30, le=900)
    authorizer_timeout_seconds: int = Field(default=10, ge=1, le=29)
    # 0 = no caching: a revoked key is refused on its very next request (PRODUCT.md §4) instead of
    # working until a cached Allow expires. Raising it trades that promise for fewer authorizer calls.
    authorizer_cache_ttl_seconds: int = Field(default=0, ge=0, le=3600)

    # The deployment's request-rate limit (PRODUCT.md §16): 50 requests/s, burst 100.
    throttle_rate_limit: float = Field(default=50, gt=0)
    throttle_burst_limit: int = Field(default=100, ge=1)

    default_base_model: str = AWS_DEFAULT_BASE_MODEL
    max_active_runs: int = Field(default=2, ge=1)

    # Runs (PRODUCT.md §9, §16). 28 days is the longest a SageMaker training job may run.
    run_timeout_hours: float = Field(default=24, gt=0, le=28 * 24)
    max_eval_examples_ceiling: int = Field(default=500, ge=1, le=10_000)
    # Every look at the training job is a few state transitions and a DescribeTrainingJob call.
    training_poll_seconds: int = Field(default=60, ge=5, le=3600)
    training_use_spot: bool = False
    training_volume_gb: int = Field(default=50, ge=1, le=16_384)
    # Base model id → instance type, price and throughput; "default" covers every other model.
    training_profiles: dict[str, TrainingProfile] = DEFAULT_TRAINING_PROFILES

    # The run workflow's task functions (ARCHITECTURE.md §4). Prepare compiles, augments (LLM calls)
    # and uploads the dataset; Evaluate scores every eval row (LLM judge): both get Lambda's maximum.
    prepare_memory_mb: int = Field(default=2048, ge=128, le=10240)
    prepare_timeout_seconds: int = Field(default=900, ge=30, le=900)
    start_training_memory_mb: int = Field(default=512, ge=128, le=10240)
    start_training_timeout_seconds: int = Field(default=60, ge=10, le=900)
    poll_training_memory_mb: int = Field(default=512, ge=128, le=10240)
    poll_training_timeout_seconds: int = Field(default=60, ge=10, le=900)
    evaluate_memory_mb: int = Field(default=2048, ge=128, le=10240)
    evaluate_timeout_seconds: int = Field(default=900, ge=30, le=900)
    finish_memory_mb: int = Field(default=1024, ge=128, le=10240)
    finish_timeout_seconds: int = Field(default=300, ge=10, le=900)
    fail_memory_mb: int = Field(default=512, ge=128, le=10240)
    fail_timeout_seconds: int = Field(default=60, ge=10, le=900)

    # Augmentation and the LLM judge (PRODUCT.md §9.4, §10.2, §16): the Anthropic API when a key is
    # configured (an existing Secrets Manager secret, by name or ARN, holding the key), else Claude on
    # Bedrock when enabled, else the offline augmenter and similarity. Model ids: None = the current
    # default of the provider (tt_core.adapters.anthropic_llm.DEFAULT_MODELS).
    anthropic_api_key_secret: str | None = Field(default=None, pattern=_SECRET_NAME_OR_ARN, max_length=2048)
    # The customer-managed KMS key that encrypts that secret, if not AWS's own: the tasks may decrypt with
    # it, through Secrets Manager only.
    anthropic_api_key_kms_key: str | None = Field(
        default=None, pattern=r"^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", max_length=2048
    )
    bedrock_enabled: bool = False
    augmentation_model: str | None = Field(default=None, pattern=_MODEL_ID, max_length=200)
    judge_model: str | None = Field(default=None, pattern=_MODEL_ID, max_length=200)

    # Alarms: a sum over `alarm_period_minutes` at or above the threshold raises the alarm.
    alarm_period_minutes: int = Field(default=5, ge=1, le=60)
    alarm_api_5xx_threshold: int = Field(default=5, ge=1)
    alarm_rate_limited_threshold: int = Field(default=100, ge=1)
    alarm_lambda_errors_threshold: int = Field(default=5, ge=1)
    # A failed run is a normal outcome (bad data, a cancelled job): only many at once are trouble.
    alarm_failed_runs_threshold: int = Field(default=5, ge=1)
    # Subscribed to the alarm topic when set; without it the alarms still show in the console.
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, days: int) -> int:
        if days not in _RETENTION_DAYS:
            raise ValueError(f"log_retention_days must be one of {sorted(_RETENTION_DAYS)}")
        return days

    @field_validator("training_profiles", mode="before")
    @classmethod
    def _profiles_from_json(cls, value: Any) -> Any:
        # `-c training_profiles='{"default": {...}}'` arrives as a string.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("training_profiles")
    @classmethod
    def _has_default_profile(cls, profiles: dict[str, TrainingProfile]) -> dict[str, TrainingProfile]:
        if "default" not in profiles:
            raise ValueError('training_profiles needs a "default" profile for the other base models')
        return profiles

    @property
    def protect_data(self) -> bool:
        """Every stage but dev keeps its data: deletion protection on, RETAIN on delete."""
        return self.stage != DEV_STAGE

    @property
    def api_gateway_logs(self) -> bool:
        return self.api_gateway_logging != "off"

    @property
    def stack_id(self) -> str:
        """`TunedTensor` for dev, `TunedTensor-<stage>` for any other stage (PRODUCT.md §14.6)."""
        return stack_name(self.stage)

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.protect_data else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION_DAYS[self.log_retention_days]

    @classmethod
    def from_context(
        cls,
        get_context: Callable[[str], Any],
        environ: Mapping[str, str] | None = None,
    ) -> StageConfig:
        """Read `-c stage=prod`, `-c region=…` and any other field name given as a context key."""
        env = os.environ if environ is None else environ
        values = {name: get_context(name) for name in cls.model_fields}
        values = {name: value for name, value in values.items() if value is not None}
        stage = str(values.get("stage", DEV_STAGE))
        defaults = {} if stage == DEV_STAGE else _NON_DEV_DEFAULTS
        if "region" not in values and env.get("CDK_DEFAULT_REGION"):
            values["region"] = env["CDK_DEFAULT_REGION"]
        return cls.model_validate({**defaults, **values})
