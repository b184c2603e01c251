"""Deployment settings a fresh account needs right: log levels, the secret's KMS key, API Gateway logging,
and the rule that fails a run whose execution ended outside its states."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import SKIP_BUNDLING, build_app
from infra.config import StageConfig
from infra.constructs.run_workflow import ENDED_STATUSES, EVALUATE, PREPARE
from tests.infra.conftest import Synth

KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tt/anthropic-AbCdEf"


@pytest.fixture(scope="module")
def custom() -> Iterator[Synth]:
    config = StageConfig(
        stage="qa",
        log_level="DEBUG",
        anthropic_api_key_secret=SECRET,
        anthropic_api_key_kms_key=KEY,
        api_gateway_logging="create_role",
    )
    app, stack = build_app(config, context=SKIP_BUNDLING)
    yield Synth(app=app, stack=stack, template=Template.from_stack(stack))


def _statements(synth: Synth, function: Any) -> list[dict[str, Any]]:
    role = synth.logical_id(function.role)
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_lambda_lets_the_configured_log_level_through(dev: Synth, custom: Synth) -> None:
    """JSON logs are filtered by Lambda at ApplicationLogLevel: DEBUG must be set there too."""
    for synth, level in ((dev, "INFO"), (custom, "DEBUG")):
        for props in synth.functions().values():
            assert props["LoggingConfig"]["LogFormat"] == "JSON"
            assert props["LoggingConfig"]["ApplicationLogLevel"] == level
            assert props["LoggingConfig"]["SystemLogLevel"] == "INFO"
            assert props["Environment"]["Variables"]["LOG_LEVEL"] == level


def test_the_language_model_tasks_may_decrypt_the_secrets_customer_key(custom: Synth, dev: Synth) -> None:
    functions = custom.stack.workflow.functions
    for state, function in functions.items():
        decrypt = [s for s in _statements(custom, function) if "kms:Decrypt" in _actions(s)]
        if state in (PREPARE, EVALUATE):
            [statement] = decrypt
            assert statement["Resource"] == KEY
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert via == {
                "Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]]
            }
        else:
            assert not decrypt, state
    for function in dev.stack.workflow.functions.values():  # no key configured: no grant
        assert not [s for s in _statements(dev, function) if "kms:Decrypt" in _actions(s)]


def test_api_gateway_logging_is_off_by_default_and_leaves_the_account_setting_alone(dev: Synth) -> None:
    """A fresh account has no API Gateway CloudWatch role: with logging off it deploys, sets nothing."""
    assert not dev.resources("AWS::ApiGateway::Account")
    _, stage = dev.only("AWS::ApiGateway::Stage")
    assert "AccessLogSetting" not in stage["Properties"]
    assert all("LoggingLevel" not in m for m in stage["Properties"]["MethodSettings"])
    assert dev.stack.api.access_log_group is None


def test_api_gateway_logging_with_the_accounts_role(prod: Synth) -> None:
    assert not prod.resources("AWS::ApiGateway::Account")  # the account's own role is used, not replaced
    _, stage = prod.only("AWS::ApiGateway::Stage")
    assert "AccessLogSetting" in stage["Properties"]


def test_api_gateway_logging_with_a_role_of_its_own(custom: Synth) -> None:
    _, account = custom.only("AWS::ApiGateway::Account")
    assert "CloudWatchRoleArn" in account["Properties"]
    _, stage = custom.only("AWS::ApiGateway::Stage")
    assert stage["Properties"]["MethodSettings"][0]["LoggingLevel"] == "ERROR"


def test_a_run_whose_execution_ends_outside_its_states_is_failed(dev: Synth) -> None:
    """Step Functions TIMED_OUT, FAILED or ABORTED → the ExecutionEnded function (EventBridge)."""
    _, rule = dev.only("AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    machine = {"Ref": dev.logical_id(dev.stack.workflow.state_machine)}
    assert pattern == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": list(ENDED_STATUSES), "stateMachineArn": [machine]},
    }
    assert set(ENDED_STATUSES) == {"TIMED_OUT", "FAILED", "ABORTED"}
    [target] = rule["Properties"]["Targets"]
    function = dev.stack.workflow.execution_ended
    assert target["Arn"] == {"Fn::GetAtt": [dev.logical_id(function), "Arn"]}
    assert dev.functions()[dev.logical_id(function)]["Handler"] == (
        "functions.run_workflow.execution_ended.lambda_handler"
    )
    # It stops training jobs (like RecordFailure) and can neither create one nor pass the training role.
    actions = {a for s in _statements(dev, function) for a in _actions(s)}
    assert {a for a in actions if a.startswith("sagemaker:")} == {
        "sagemaker:StopTrainingJob",
        "sagemaker:DescribeTrainingJob",
    }
    assert "iam:PassRole" not in actions and not {a for a in actions if a.startswith("s3:")}
    permissions = [
        p["Properties"]
        for p in dev.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert json.dumps(permissions).count(dev.logical_id(function)) >= 1


def test_an_execution_end_that_could_not_be_recorded_is_dead_lettered(dev: Synth) -> None:
    """Undelivered (EventBridge's 4 retries) or failed (Lambda's 2 retries): one queue, kept 14 days."""
    _, rule = dev.only("AWS::Events::Rule")
    [target] = rule["Properties"]["Targets"]
    function = dev.stack.workflow.execution_ended
    queue_id = dev.logical_id(dev.stack.workflow.execution_ended_dead_letters)
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": queue_arn}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 6 * 3600}
    assert dev.functions()[dev.logical_id(function)]["DeadLetterConfig"] == {"TargetArn": queue_arn}
    [invoke_config] = [
        c["Properties"]
        for c in dev.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": dev.logical_id(function)}
    ]
    assert (invoke_config["MaximumRetryAttempts"], invoke_config["MaximumEventAgeInSeconds"]) == (2, 6 * 3600)
    queue = dev.resources("AWS::SQS::Queue")[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    # EventBridge may send this rule's events to it; the function may send; plain HTTP is refused.
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev.resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    events = [s for s in policy if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in events] == [
        {"Fn::GetAtt": [dev.only("AWS::Events::Rule")[0], "Arn"]}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy
    )
    sends = {a for s in _statements(dev, function) for a in _actions(s) if a.startswith("sqs:")}
    assert "sqs:SendMessage" in sends
