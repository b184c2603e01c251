"""Observability: the alarms, their thresholds from StageConfig, the 429 metric and the alarm topic."""

from __future__ import annotations

from typing import Any

from infra.constructs.observability import RATE_LIMITED_METRIC


def _alarms(synth) -> dict[str, dict[str, Any]]:
    """MetricName -> alarm properties (Errors appears once per function, keyed by function id)."""
    alarms = {}
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        key = props["MetricName"]
        if key == "Errors":
            key = f"Errors:{props['Dimensions'][0]['Value']['Ref']}"
        if key == "ApproximateNumberOfMessagesVisible":
            key = f"DeadLetters:{props['Dimensions'][0]['Value']['Fn::GetAtt'][0]}"
        alarms[key] = props
    return alarms


def test_fourteen_alarms_all_notify_the_topic(dev) -> None:
    # API 5xx, 429s, 9 function error alarms, dead letters, failed and timed-out runs.
    topic_id, _ = dev.only("AWS::SNS::Topic")
    alarms = _alarms(dev)
    assert len(dev.resources("AWS::CloudWatch::Alarm")) == len(alarms) == 15
    for name, props in alarms.items():
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["TreatMissingData"] == "notBreaching"
        assert props["Statistic"] == ("Maximum" if name.startswith("DeadLetters:") else "Sum")
        assert props["Period"] == 300


def test_any_dead_letter_raises_an_alarm(dev) -> None:
    queues = dev.resources("AWS::SQS::Queue")
    # The dataset validator's and the ExecutionEnded function's: every queue is some function's dead letters.
    assert set(queues) == {
        dev.logical_id(dev.stack.ingest.dead_letter_queue),
        dev.logical_id(dev.stack.workflow.execution_ended_dead_letters),
    }
    for queue_id in queues:
        props = _alarms(dev)[f"DeadLetters:{queue_id}"]
        assert props["Namespace"] == "AWS/SQS" and props["Threshold"] == 1
        assert props["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
        ]


def test_api_5xx_alarm_watches_the_api_stage(dev) -> None:
    props = _alarms(dev)["5XXError"]
    assert props["Namespace"] == "AWS/ApiGateway"
    assert props["Threshold"] == dev.stack.config.alarm_api_5xx_threshold
    dimensions = {d["Name"]: d["Value"] for d in props["Dimensions"]}
    assert dimensions["Stage"] == {"Ref": dev.only("AWS::ApiGateway::Stage")[0]}


def test_rate_limited_alarm_counts_429s_from_the_access_log(prod) -> None:
    api_id, _ = prod.only("AWS::ApiGateway::RestApi")
    props = _alarms(prod)[RATE_LIMITED_METRIC]
    assert props["Namespace"] == "TunedTensor"
    assert props["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": api_id}}]
    assert props["Threshold"] == prod.stack.config.alarm_rate_limited_threshold
    _, metric_filter = prod.only("AWS::Logs::MetricFilter")
    filter_props = metric_filter["Properties"]
    assert filter_props["FilterPattern"] == '{ $.status = "429" }'
    assert filter_props["LogGroupName"] == {"Ref": prod.logical_id(prod.stack.api.access_log_group)}
    assert filter_props["MetricTransformations"] == [
        {
            "MetricNamespace": "TunedTensor",
            "MetricName": RATE_LIMITED_METRIC,
            "MetricValue": "1",
            "Dimensions": [{"Key": "ApiId", "Value": "$.apiId"}],
        }
    ]


def test_an_error_alarm_for_every_function_of_ours(dev) -> None:
    alarms = _alarms(dev)
    errors = {key.removeprefix("Errors:") for key in alarms if key.startswith("Errors:")}
    # API, authorizer, dataset validator and the run workflow's tasks; CDK's deployment-time
    # notifications handler has none.
    ours = (
        dev.stack.api.api_function,
        dev.stack.api.authorizer_function,
        dev.stack.ingest.validator,
        *dev.stack.workflow.functions.values(),
        dev.stack.workflow.execution_ended,
    )
    assert errors == set(dev.functions()) == {dev.logical_id(function) for function in ours}
    for logical_id in errors:
        props = alarms[f"Errors:{logical_id}"]
        assert props["Namespace"] == "AWS/Lambda"
        assert props["Threshold"] == dev.stack.config.alarm_lambda_errors_threshold


def test_runs_failing_in_numbers_or_timing_out_raise_alarms(dev) -> None:
    machine = {"Ref": dev.logical_id(dev.stack.workflow.state_machine)}
    alarms = _alarms(dev)
    for metric, threshold in (
        ("ExecutionsFailed", dev.stack.config.alarm_failed_runs_threshold),
        ("ExecutionsTimedOut", 1),
    ):
        props = alarms[metric]
        assert props["Namespace"] == "AWS/States" and props["Threshold"] == threshold
        assert props["Dimensions"] == [{"Name": "StateMachineArn", "Value": machine}]


def test_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(dev) -> None:
    key_id, key = dev.only("AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(s["Action"])
        for s in statements
    )
    _, topic = dev.only("AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_alarm_email_is_subscribed_only_when_configured(dev, prod) -> None:
    assert not dev.resources("AWS::SNS::Subscription")
    _, subscription = prod.only("AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
