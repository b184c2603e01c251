"""Deployment settings, read once from the environment by the composition root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tt_core.schema import AWS_DEFAULT_BASE_MODEL

# Environment variable names: the CDK stack sets them on every function, the local stack reads them
# back from the synthesized template, and contract tests keep the three in step.
ENV_TABLE_NAME = "TT_TABLE_NAME"
ENV_BUCKET_NAME = "TT_BUCKET_NAME"
ENV_MODE = "TT_MODE"
ENV_STAGE = "TT_STAGE"
ENV_DEFAULT_BASE_MODEL = "TT_DEFAULT_BASE_MODEL"
ENV_MAX_ACTIVE_RUNS = "TT_MAX_ACTIVE_RUNS"


class Settings(BaseModel):
    """What a handler needs to know about the deployment it runs in."""

    model_config = ConfigDict(frozen=True)

    table_name: str = "tuned-tensor"
    bucket_name: str = "tuned-tensor"
    mode: Literal["aws", "local"] = "aws"
    stage: str = "dev"
    default_base_model: str = AWS_DEFAULT_BASE_MODEL
    max_active_runs: int = Field(default=2, ge=1)

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
        }
        return cls.model_validate({k: v for k, v in values.items() if v})
