"""Deployment settings, read once from the environment by the composition root."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tt_core.schema import (
    AWS_DEFAULT_BASE_MODEL,
    DEFAULT_TRAINING_PROFILES,
    ENV_ANTHROPIC_API_KEY,
    ENV_ANTHROPIC_API_KEY_SECRET,
    ENV_AUGMENTATION_MODEL,
    ENV_BEDROCK_ENABLED,
    ENV_BUCKET_NAME,
    ENV_CORS_ALLOWED_ORIGINS,
    ENV_DEFAULT_BASE_MODEL,
    ENV_EVALUATE_TIMEOUT_SECONDS,
    ENV_JUDGE_MODEL,
    ENV_LOCAL_JOBS_DIR,
    ENV_MAX_ACTIVE_RUNS,
    ENV_MAX_EVAL_EXAMPLES_CEILING,
    ENV_MODE,
    ENV_PREPARE_TIMEOUT_SECONDS,
    ENV_RUN_TIMEOUT_HOURS,
    ENV_STAGE,
    ENV_STATE_MACHINE_ARN,
    ENV_TABLE_NAME,
    ENV_TRAINING_IMAGE_URI,
    ENV_TRAINING_POLL_SECONDS,
    ENV_TRAINING_PROFILES,
    ENV_TRAINING_ROLE_ARN,
    ENV_TRAINING_USE_SPOT,
    ENV_TRAINING_VOLUME_GB,
    LOCAL_TRAINING_PROFILE,
    TrainingProfile,
)


class Settings(BaseModel):
    """What a handler needs to know about the deployment it runs in."""

    model_config = ConfigDict(frozen=True)

    table_name: str = "tuned-tensor"
    bucket_name: str = "tuned-tensor"
    mode: Literal["aws", "local"] = "aws"
    stage: str = "dev"
    default_base_model: str = AWS_DEFAULT_BASE_MODEL
    max_active_runs: int = Field(default=2, ge=1)
    max_eval_examples_ceiling: int = Field(default=500, ge=1)
    run_timeout_hours: float = Field(default=24, gt=0)
    # How long the workflow waits between two looks at the training job (None: 60 s on AWS, 1 s locally).
    training_poll_seconds: int | None = Field(default=None, ge=1, le=3600)
    state_machine_arn: str = ""
    training_image_uri: str = ""
    training_role_arn: str = ""
    training_profiles: dict[str, TrainingProfile] = DEFAULT_TRAINING_PROFILES
    training_use_spot: bool = False
    training_volume_gb: int = Field(default=50, ge=1)
    local_jobs_dir: str | None = None
    anthropic_api_key_secret: str = ""
    anthropic_api_key: SecretStr | None = None
    bedrock_enabled: bool = False
    # Model ids (None: the provider's current default, tt_core.adapters.anthropic_llm.DEFAULT_MODELS).
    augmentation_model: str | None = None
    judge_model: str | None = None
    prepare_timeout_seconds: int = Field(default=900, ge=1)
    evaluate_timeout_seconds: int = Field(default=900, ge=1)
    # The deployed dashboard's origin (https://<distribution>.cloudfront.net): the only cross-origin caller.
    cors_allowed_origins: tuple[str, ...] = ()

    @property
    def poll_seconds(self) -> int:
        if self.training_poll_seconds is not None:
            return self.training_poll_seconds
        return 60 if self.mode == "aws" else 1

    @property
    def llm_provider(self) -> Literal["claude", "bedrock"] | None:
        """§9.4: the Anthropic API when a key is configured, else Bedrock when enabled, else none."""
        if self.anthropic_api_key_secret or self.anthropic_api_key:
            return "claude"
        return "bedrock" if self.bedrock_enabled else None

    def training_profile(self, base_model: str) -> TrainingProfile:
        """Instance type, price and throughput for a base model (the catalogue default otherwise)."""
        if self.mode == "local":
            return LOCAL_TRAINING_PROFILE
        return self.training_profiles.get(base_model) or self.training_profiles["default"]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {
            "table_name": env.get(ENV_TABLE_NAME),
            "bucket_name": env.get(ENV_BUCKET_NAME),
            "mode": env.get(ENV_MODE),
            "stage": env.get(ENV_STAGE),
            "default_base_model": env.get(ENV_DEFAULT_BASE_MODEL),
            "max_active_runs": env.get(ENV_MAX_ACTIVE_RUNS),
            "max_eval_examples_ceiling": env.get(ENV_MAX_EVAL_EXAMPLES_CEILING),
            "run_timeout_hours": env.get(ENV_RUN_TIMEOUT_HOURS),
            "training_poll_seconds": env.get(ENV_TRAINING_POLL_SECONDS),
            "state_machine_arn": env.get(ENV_STATE_MACHINE_ARN),
            "training_image_uri": env.get(ENV_TRAINING_IMAGE_URI),
            "training_role_arn": env.get(ENV_TRAINING_ROLE_ARN),
            "training_profiles": json.loads(env[ENV_TRAINING_PROFILES])
            if env.get(ENV_TRAINING_PROFILES)
            else None,
            "training_use_spot": env.get(ENV_TRAINING_USE_SPOT),
            "training_volume_gb": env.get(ENV_TRAINING_VOLUME_GB),
            "local_jobs_dir": env.get(ENV_LOCAL_JOBS_DIR),
            "anthropic_api_key_secret": env.get(ENV_ANTHROPIC_API_KEY_SECRET),
            "anthropic_api_key": env.get(ENV_ANTHROPIC_API_KEY, "").strip(),
            "bedrock_enabled": env.get(ENV_BEDROCK_ENABLED),
            "augmentation_model": env.get(ENV_AUGMENTATION_MODEL),
            "judge_model": env.get(ENV_JUDGE_MODEL),
            "prepare_timeout_seconds": env.get(ENV_PREPARE_TIMEOUT_SECONDS),
            "evaluate_timeout_seconds": env.get(ENV_EVALUATE_TIMEOUT_SECONDS),
            "cors_allowed_origins": tuple(
                o.strip() for o in env.get(ENV_CORS_ALLOWED_ORIGINS, "").split(",") if o.strip()
            ),
        }
        return cls.model_validate({k: v for k, v in values.items() if v})
