"""StageConfig: defaults from PRODUCT.md §16, stage differences, and reading the CDK context."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from pydantic import ValidationError

from infra.config import StageConfig
from tt_core.schema import AWS_DEFAULT_BASE_MODEL


def _from(context: dict[str, Any], environ: dict[str, str] | None = None) -> StageConfig:
    return StageConfig.from_context(context.get, environ or {})


def test_defaults_are_the_product_settings() -> None:
    config = StageConfig()
    assert config.stage == "dev"
    assert (config.throttle_rate_limit, config.throttle_burst_limit) == (50, 100)
    assert config.max_active_runs == 2
    assert config.default_base_model == AWS_DEFAULT_BASE_MODEL
    assert config.authorizer_cache_ttl_seconds == 0
    assert config.region == "us-east-1"


def test_dev_does_not_protect_data() -> None:
    config = StageConfig()
    assert not config.protect_data
    assert config.removal_policy == RemovalPolicy.DESTROY
    assert config.log_retention == logs.RetentionDays.ONE_MONTH


def test_prod_from_context_protects_data_and_keeps_logs_longer() -> None:
    config = _from({"stage": "prod"})
    assert config.protect_data
    assert config.removal_policy == RemovalPolicy.RETAIN
    assert config.log_retention_days == 365


def test_context_values_override_stage_defaults_and_are_coerced_from_cli_strings() -> None:
    config = _from({"stage": "prod", "log_retention_days": "90", "max_active_runs": "4"})
    assert config.log_retention_days == 90
    assert config.max_active_runs == 4


def test_region_comes_from_context_then_cdk_default_region_then_us_east_1() -> None:
    assert _from({}).region == "us-east-1"
    assert _from({}, {"CDK_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert _from({"region": "ap-south-1"}, {"CDK_DEFAULT_REGION": "eu-west-1"}).region == "ap-south-1"


@pytest.mark.parametrize(
    "bad",
    [
        {"log_retention_days": 42},
        {"stage": "Prod!"},
        {"api_timeout_seconds": 30},
        {"alarm_email": "not-an-address"},
        {"unknown_setting": 1},
    ],
)
def test_invalid_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StageConfig.model_validate(bad)


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        StageConfig().stage = "prod"  # type: ignore[misc]
