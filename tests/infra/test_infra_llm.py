"""The language model settings in the stack (PRODUCT.md §16): the API key's secret and Bedrock are
reachable from Prepare and Evaluate only, only when configured; every function knows the provider."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from aws_cdk.assertions import Template
from pydantic import ValidationError

from infra.app import SKIP_BUNDLING, build_app
from infra.config import StageConfig
from tests.infra.conftest import Synth
from tt_core.schema import (
    ENV_ANTHROPIC_API_KEY_SECRET,
    ENV_BEDROCK_ENABLED,
    ENV_EVALUATE_TIMEOUT_SECONDS,
    ENV_JUDGE_MODEL,
    ENV_PREPARE_TIMEOUT_SECONDS,
)
from tt_core.settings import Settings

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tt/anthropic-key-AbCdEf"
LLM_TASKS = ("Prepare", "Evaluate")


@cache
def _synth(**settings: Any) -> Synth:
    # Synthesis runs cdk-nag's AwsSolutions checks: an unacknowledged finding fails it.
    app, stack = build_app(StageConfig(**settings), context=SKIP_BUNDLING)
    return Synth(app=app, stack=stack, template=Template.from_stack(stack))


def _statements(synth: Synth, function: Any) -> list[dict[str, Any]]:
    """Every policy statement attached to the function's role."""
    role = synth.stack.resolve(function.role.node.default_child.ref)
    statements = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if role in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"]
        found |= {actions} if isinstance(actions, str) else set(actions)
    return found


def test_the_default_stage_reaches_no_provider(dev: Synth) -> None:
    for function in dev.stack.workflow.functions.values():
        actions = _actions(_statements(dev, function))
        assert not any(a.startswith(("bedrock:", "secretsmanager:")) for a in actions), actions
    text = json.dumps(dev.json)
    assert "bedrock:" not in text and "secretsmanager:" not in text


@pytest.mark.parametrize("secret", ["tt/anthropic-key", SECRET_ARN])
def test_the_api_key_secret_is_readable_by_prepare_and_evaluate_only(secret: str) -> None:
    synth = _synth(anthropic_api_key_secret=secret, judge_model="claude-haiku-4-5")
    for state, function in synth.stack.workflow.functions.items():
        statements = _statements(synth, function)
        reads = [s for s in statements if "secretsmanager:GetSecretValue" in _actions([s])]
        if state in LLM_TASKS:
            [statement] = reads
            resource = json.dumps(synth.stack.resolve(statement["Resource"]))
            assert (
                SECRET_ARN if secret.startswith("arn:") else ":secret:tt/anthropic-key-??????"
            ) in resource
        else:
            assert reads == []
        assert "bedrock:InvokeModel" not in _actions(statements)
    for props in synth.functions().values():
        variables = props["Environment"]["Variables"]
        assert (
            variables[ENV_ANTHROPIC_API_KEY_SECRET] == secret
            and variables[ENV_JUDGE_MODEL] == "claude-haiku-4-5"
        )
        environment = {k: v if isinstance(v, str) else f"<{k}>" for k, v in variables.items()}
        assert Settings.from_env(environment).llm_provider == "claude"


def test_bedrock_is_invocable_by_prepare_and_evaluate_only_when_enabled() -> None:
    synth = _synth(bedrock_enabled=True, prepare_timeout_seconds=600)
    for state, function in synth.stack.workflow.functions.items():
        statements = [s for s in _statements(synth, function) if "bedrock:InvokeModel" in _actions([s])]
        if state not in LLM_TASKS:
            assert statements == []
            continue
        [statement] = statements
        assert _actions([statement]) == {"bedrock:InvokeModel"}
        resources = json.dumps(synth.stack.resolve(statement["Resource"]))
        assert "foundation-model/anthropic.claude-*" in resources
        assert "inference-profile/*anthropic.claude-*" in resources
    for props in synth.functions().values():
        variables = props["Environment"]["Variables"]
        assert variables[ENV_BEDROCK_ENABLED] == "true" and ENV_ANTHROPIC_API_KEY_SECRET not in variables
    prepare = synth.stack.workflow.functions["Prepare"]
    variables = synth.functions()[synth.logical_id(prepare)]["Environment"]["Variables"]
    assert (
        variables[ENV_PREPARE_TIMEOUT_SECONDS] == "600" and variables[ENV_EVALUATE_TIMEOUT_SECONDS] == "900"
    )
    settings = Settings.from_env({k: v for k, v in variables.items() if isinstance(v, str)})
    assert settings.llm_provider == "bedrock" and settings.prepare_timeout_seconds == 600


@pytest.mark.parametrize(
    "bad",
    [
        {"anthropic_api_key_secret": "has spaces"},
        {"anthropic_api_key_secret": "arn:aws:s3:::bucket"},
        {"judge_model": "claude sonnet"},
        {"augmentation_model": ""},
    ],
)
def test_invalid_language_model_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StageConfig.model_validate(bad)


def test_language_model_settings_from_cli_context_strings() -> None:
    context = {"bedrock_enabled": "true", "judge_model": "global.anthropic.claude-haiku-4-5"}
    config = StageConfig.from_context(context.get, {})
    assert config.bedrock_enabled is True and config.judge_model == "global.anthropic.claude-haiku-4-5"
