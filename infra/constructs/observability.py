"""Observability: alarms on API 5xx, rate limits, function errors, dead letters and runs; one topic."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.lambda_defaults import METRICS_NAMESPACE

RATE_LIMITED_METRIC = "RateLimitedRequests"
API_ID_DIMENSION = "ApiId"


class Observability(Construct):
    """CloudWatch alarms with thresholds from StageConfig, all notifying one encrypted SNS topic."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        rest_api: apigateway.RestApi,
        access_log_group: logs.ILogGroup | None,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        state_machines: Mapping[str, sfn.IStateMachine],
    ) -> None:
        super().__init__(scope, id)
        period = Duration.minutes(config.alarm_period_minutes)

        # A customer-managed key: CloudWatch can publish to an encrypted topic only if the key policy
        # lets cloudwatch.amazonaws.com use the key, which the AWS-managed aws/sns key never does.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the Tuned Tensor alarm topic",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        action = cloudwatch_actions.SnsAction(self.topic)

        stage = rest_api.deployment_stage
        self._alarm(
            "Api5xxAlarm",
            stage.metric_server_error(period=period, statistic="Sum"),
            threshold=config.alarm_api_5xx_threshold,
            description="The API answered with 5xx errors (internal_error).",
            action=action,
        )

        # REST APIs publish no throttle-count metric: count the 429s (rate_limited) that the access
        # log records, per API, with a metric filter (only where API Gateway logs are on).
        if access_log_group is not None:
            logs.MetricFilter(
                self,
                "RateLimitedFilter",
                log_group=access_log_group,
                filter_pattern=logs.FilterPattern.string_value("$.status", "=", "429"),
                metric_namespace=METRICS_NAMESPACE,
                metric_name=RATE_LIMITED_METRIC,
                metric_value="1",
                dimensions={API_ID_DIMENSION: "$.apiId"},
            )
            rate_limited = cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=RATE_LIMITED_METRIC,
                dimensions_map={API_ID_DIMENSION: rest_api.rest_api_id},
                period=period,
                statistic="Sum",
            )
            self._alarm(
                "RateLimitedAlarm",
                rate_limited,
                threshold=config.alarm_rate_limited_threshold,
                description="Clients are being refused with 429 rate_limited (stage throttling).",
                action=action,
            )

        for name, function in functions.items():
            self._alarm(
                f"{name}ErrorsAlarm",
                function.metric_errors(period=period, statistic="Sum"),
                threshold=config.alarm_lambda_errors_threshold,
                description=f"The {name} function failed invocations.",
                action=action,
            )

        # A dead letter means an event was given up after its retries (e.g. an upload never validated).
        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}DeadLettersAlarm",
                queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
                threshold=1,
                description=f"Events reached the {name} dead-letter queue after every retry failed.",
                action=action,
            )

        # A failed run is a normal outcome (RunFailed records it); many at once point at a broken
        # dependency. A timed-out execution never reached RecordFailure: its run needs an operator.
        for name, state_machine in state_machines.items():
            self._alarm(
                f"{name}FailedExecutionsAlarm",
                state_machine.metric_failed(period=period, statistic="Sum"),
                threshold=config.alarm_failed_runs_threshold,
                description=f"Many {name} executions failed (runs ending as failed).",
                action=action,
            )
            self._alarm(
                f"{name}TimedOutExecutionsAlarm",
                state_machine.metric_timed_out(period=period, statistic="Sum"),
                threshold=1,
                description=f"A {name} execution timed out before it could record its run as failed.",
                action=action,
            )

    def _alarm(
        self,
        id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: int,
        description: str,
        action: cloudwatch.IAlarmAction,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No traffic is no trouble: a quiet API must not sit in INSUFFICIENT_DATA or alarm.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        return alarm
