"""Training instance type, hourly price and fallback throughput per base model (PRODUCT.md §9.8, §16)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainingProfile(BaseModel):
    """Where a base model trains and how fast: the estimate's fallback basis and the job's instance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_type: str = Field(min_length=1)
    hourly_usd: float = Field(ge=0)
    # Training tokens per second (one pass) on that instance: the fallback throughput table.
    tokens_per_second: float = Field(gt=0)
    # Fixed start-up overhead of a job (instance, image pull, model load, eval generation set-up).
    startup_minutes: float = Field(default=6, ge=0)


# On-demand us-east-1 prices. "default" covers any catalogue model without its own row.
DEFAULT_TRAINING_PROFILES: dict[str, TrainingProfile] = {
    "default": TrainingProfile(instance_type="ml.g5.xlarge", hourly_usd=1.408, tokens_per_second=2500),
    "google/gemma-4-E4B-it": TrainingProfile(
        instance_type="ml.g5.2xlarge", hourly_usd=1.515, tokens_per_second=1500
    ),
    "Qwen/Qwen3.5-4B": TrainingProfile(
        instance_type="ml.g5.2xlarge", hourly_usd=1.515, tokens_per_second=1500
    ),
    "tunedtensor/tiny-chat": TrainingProfile(
        instance_type="ml.m5.large", hourly_usd=0.115, tokens_per_second=15000, startup_minutes=3
    ),
}
# The local stack trains on this machine: no instance, no price (PRODUCT.md §9.8).
LOCAL_TRAINING_PROFILE = TrainingProfile(
    instance_type="local", hourly_usd=0, tokens_per_second=10000, startup_minutes=0.2
)
