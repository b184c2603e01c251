"""DatasetIngest: S3 notification → validator, its retries and dead-letter queue, grants, lifecycle."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from infra.config import StageConfig
from tt_core.adapters.sagemaker import TRAINING_LOG_OBJECT
from tt_core.runs.artifacts import PREDICTIONS_FILE, checkpoint_prefix, input_prefix, run_prefix
from tt_core.schema import ENV_STATE_MACHINE_ARN
from tt_core.services.datasets import VALIDATION_LEASE

VALIDATOR_HANDLER = "functions.dataset_validation.handler.lambda_handler"
# What the validator may do in S3: stream an upload (read families of CDK's read grant) and clear
# its pending tag. Nothing that writes or deletes an object.
VALIDATOR_S3_ACTIONS = {"s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:DeleteObjectTagging"}


def _get_att(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _validator(synth) -> tuple[str, dict[str, Any]]:
    logical_id = synth.logical_id(synth.stack.ingest.validator)
    return logical_id, synth.functions()[logical_id]


def _queue_id(synth) -> str:
    return synth.logical_id(synth.stack.ingest.dead_letter_queue)


def _bucket_arn(synth) -> dict[str, Any]:
    return _get_att(synth.logical_id(synth.stack.data.bucket))


def _dataset_objects(synth) -> dict[str, Any]:
    return {"Fn::Join": ["", [_bucket_arn(synth), "/accounts/*/datasets/*"]]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _validator_statements(synth) -> list[dict[str, Any]]:
    """Every statement of every IAM policy attached to the validator's role."""
    role = {"Ref": synth.logical_id(synth.stack.ingest.validator.role)}
    statements = [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if role in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements and all(s["Effect"] == "Allow" for s in statements)
    return statements


def _statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in _as_list(s["Action"])]


# --- the notification ---------------------------------------------------------------------------


def _filter_rules(synth) -> dict[str, str]:
    _, notification = synth.only("Custom::S3BucketNotifications")
    (target,) = notification["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    return {rule["Name"]: rule["Value"] for rule in target["Filter"]["Key"]["FilterRules"]}


def test_uploaded_datasets_under_accounts_trigger_the_validator(dev) -> None:
    validator_id, _ = _validator(dev)
    (cdk_handler_id,) = dev.cdk_functions()
    _, notification = dev.only("Custom::S3BucketNotifications")
    props = notification["Properties"]
    assert props["ServiceToken"] == _get_att(cdk_handler_id)
    assert props["BucketName"] == {"Ref": dev.logical_id(dev.stack.data.bucket)}
    configuration = props["NotificationConfiguration"]
    assert set(configuration) == {"LambdaFunctionConfigurations"}  # no queue or topic targets
    (target,) = configuration["LambdaFunctionConfigurations"]
    assert target["LambdaFunctionArn"] == _get_att(validator_id)
    assert target["Events"] == ["s3:ObjectCreated:*"]
    rules = target["Filter"]["Key"]["FilterRules"]
    assert sorted((rule["Name"], rule["Value"]) for rule in rules) == [
        ("prefix", "accounts/"),
        ("suffix", "/data.jsonl"),
    ]


ACCOUNT, RUN = "0b5c1c52-6f3e-4d7a-9a43-1d2f0c8e9a10", "7d1e9c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
# Every other .jsonl the service or the trainer writes: none may invoke the validator.
RUN_JSONL_KEYS = [
    input_prefix(ACCOUNT, RUN, "train") + "train.jsonl",
    input_prefix(ACCOUNT, RUN, "eval") + "eval.jsonl",
    f"{checkpoint_prefix(ACCOUNT, RUN)}/{TRAINING_LOG_OBJECT}",  # synced at every training step
    f"{run_prefix(ACCOUNT, RUN)}{PREDICTIONS_FILE}",
    f"accounts/{ACCOUNT}/datasets/{RUN}/notes.jsonl",
]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_filter_matches_upload_keys_and_no_run_file(request: pytest.FixtureRequest, stage: str) -> None:
    """S3 matches a key when it starts with the prefix and ends with the suffix (no wildcards)."""
    from tt_core.services.datasets import object_key

    rules = _filter_rules(request.getfixturevalue(stage))

    def fires(key: str) -> bool:
        return key.startswith(rules["prefix"]) and key.endswith(rules["suffix"])

    assert fires(object_key(ACCOUNT, RUN))
    assert fires(f"accounts/{ACCOUNT}/datasets/{RUN}/data.jsonl")  # keys stored before the filter changed
    assert not [key for key in RUN_JSONL_KEYS if fires(key)]


def test_only_s3_of_this_account_and_bucket_may_invoke_the_validator(dev) -> None:
    validator_id, _ = _validator(dev)
    permissions = [
        p["Properties"]
        for p in dev.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == _get_att(validator_id)
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": _get_att(validator_id),
            "Principal": "s3.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": _bucket_arn(dev),
        }
    ]


# --- the validator function ---------------------------------------------------------------------


def test_validator_handler_memory_and_timeout_come_from_the_config(dev, prod) -> None:
    # dev has the defaults; the prod fixture sizes the validator differently (2048 MB, 600 s).
    for synth, expected in ((dev, (1024, 300)), (prod, (2048, 600))):
        config = synth.stack.config
        _, props = _validator(synth)
        assert props["Handler"] == VALIDATOR_HANDLER
        assert (props["MemorySize"], props["Timeout"]) == expected
        assert expected == (config.validator_memory_mb, config.validator_timeout_seconds)


def test_no_validator_timeout_outlives_the_validation_lease() -> None:
    """A claim older than the lease is taken over: a still-running validator must never be that old."""
    longest = StageConfig(validator_timeout_seconds=900).validator_timeout_seconds
    assert longest < VALIDATION_LEASE.total_seconds()
    with pytest.raises(ValidationError):
        StageConfig(validator_timeout_seconds=longest + 1)


def test_failed_invocations_are_retried_twice_then_dead_lettered(dev) -> None:
    validator_id, props = _validator(dev)
    assert props["DeadLetterConfig"] == {"TargetArn": _get_att(_queue_id(dev))}
    [invoke_config] = [
        c
        for c in dev.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": validator_id}
    ]
    assert invoke_config["Properties"] == {
        "FunctionName": {"Ref": validator_id},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 6 * 3600,
    }


def test_validator_gets_the_same_service_environment_as_the_api(dev, prod) -> None:
    for synth in (dev, prod):
        _, validator = _validator(synth)
        api = synth.functions()[synth.logical_id(synth.stack.api.api_function)]
        environment = validator["Environment"]["Variables"]
        # The API alone also names the state machine (added to it only, see ServiceStack).
        assert environment == {
            k: v for k, v in api["Environment"]["Variables"].items() if k != ENV_STATE_MACHINE_ARN
        }
        assert environment["TT_TABLE_NAME"] == {"Ref": synth.logical_id(synth.stack.data.table)}
        assert environment["TT_BUCKET_NAME"] == {"Ref": synth.logical_id(synth.stack.data.bucket)}
        assert environment["TT_MODE"] == "aws"
        assert environment["TT_STAGE"] == synth.stack.config.stage


def test_validator_errors_raise_an_alarm_on_the_topic(dev) -> None:
    validator_id, _ = _validator(dev)
    topic_id, _ = dev.only("AWS::SNS::Topic")
    (alarm,) = (
        a["Properties"]
        for a in dev.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": validator_id}}]
    )
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["Threshold"] == dev.stack.config.alarm_lambda_errors_threshold
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


# --- the dead-letter queue ----------------------------------------------------------------------


def test_dead_letter_queue_is_encrypted_and_keeps_events_two_weeks(dev) -> None:
    props = dev.resources("AWS::SQS::Queue")[_queue_id(dev)]["Properties"]
    # SSE-SQS: Lambda can send to it without a KMS key grant.
    assert props["SqsManagedSseEnabled"] is True
    assert "KmsMasterKeyId" not in props
    assert props["MessageRetentionPeriod"] == 14 * 24 * 3600  # the SQS maximum
    assert "QueueName" not in props


def test_dead_letter_queue_refuses_plain_http(dev) -> None:
    queue_id = _queue_id(dev)
    [policy] = [
        p
        for p in dev.resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement == {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": _get_att(queue_id),
    }


def test_validator_may_send_to_its_dead_letter_queue_only(dev) -> None:
    statements = [
        s for s in _validator_statements(dev) if any(a.startswith("sqs:") for a in _as_list(s["Action"]))
    ]
    (send,) = statements
    assert "sqs:SendMessage" in send["Action"]
    assert send["Resource"] == _get_att(_queue_id(dev))


# --- the validator's permissions ----------------------------------------------------------------


def test_validator_reads_and_updates_the_table(dev) -> None:
    statements = _validator_statements(dev)
    table_arn = _get_att(dev.logical_id(dev.stack.data.table))
    (dynamodb,) = (s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"]))
    assert {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= set(
        dynamodb["Action"]
    )
    assert dynamodb["Resource"] == [table_arn, {"Fn::Join": ["", [table_arn, "/index/*"]]}]


def test_validator_reads_uploaded_datasets_only(dev) -> None:
    (read,) = _statements_with(_validator_statements(dev), "s3:GetObject*")
    assert sorted(read["Action"]) == ["s3:GetBucket*", "s3:GetObject*", "s3:List*"]
    # The bucket itself (list, location) and the objects under accounts/: not the whole bucket.
    assert read["Resource"] == [_bucket_arn(dev), _dataset_objects(dev)]


def test_validator_may_clear_the_pending_tag_of_dataset_objects(dev) -> None:
    (untag,) = _statements_with(_validator_statements(dev), "s3:DeleteObjectTagging")
    assert _as_list(untag["Action"]) == ["s3:DeleteObjectTagging"]
    assert untag["Resource"] == _dataset_objects(dev)


def test_validator_never_writes_or_deletes_objects(dev) -> None:
    statements = _validator_statements(dev)
    actions = {action for s in statements for action in _as_list(s["Action"])}
    assert {a for a in actions if a.startswith("s3:")} == VALIDATOR_S3_ACTIONS
    for forbidden in ("s3:PutObject", "s3:PutObject*", "s3:DeleteObject", "s3:DeleteObject*", "s3:*", "*"):
        assert forbidden not in actions
    # No S3 statement reaches beyond the datasets bucket and its accounts/ objects.
    for statement in statements:
        if any(a.startswith("s3:") for a in _as_list(statement["Action"])):
            for resource in _as_list(statement["Resource"]):
                assert resource in (_bucket_arn(dev), _dataset_objects(dev))


# --- the lifecycle rule -------------------------------------------------------------------------


def _datasets_lifecycle_rules(synth) -> list[dict[str, Any]]:
    bucket = synth.resources("AWS::S3::Bucket")[synth.logical_id(synth.stack.data.bucket)]
    rules: list[dict[str, Any]] = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    return rules


def test_uploads_never_validated_expire_after_two_days(dev) -> None:
    (rule,) = (r for r in _datasets_lifecycle_rules(dev) if "TagFilters" in r)
    assert rule == {
        "Id": "ExpireUnvalidatedUploads",
        "Status": "Enabled",
        "TagFilters": [{"Key": "tt-upload", "Value": "pending"}],
        "ExpirationInDays": 2,
    }


def test_no_rule_expires_objects_without_the_pending_tag(dev, prod) -> None:
    """Validated datasets and artifacts must stay: only the pending tag may let an object expire."""
    for synth in (dev, prod):
        for rule in _datasets_lifecycle_rules(synth):
            if {"ExpirationInDays", "ExpirationDate"} & set(rule):
                assert rule.get("TagFilters") == [{"Key": "tt-upload", "Value": "pending"}]
