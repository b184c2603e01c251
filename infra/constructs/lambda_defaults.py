"""make_function: the one way to build a Lambda function (runtime, arch, logs, tracing, code)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, Duration, ILocalBundling, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import bytecode, nag
from infra.config import StageConfig
from infra.paths import FUNCTIONS_DIR
from tt_core.schema import (
    ENV_ANTHROPIC_API_KEY_SECRET,
    ENV_AUGMENTATION_MODEL,
    ENV_BEDROCK_ENABLED,
    ENV_BUCKET_NAME,
    ENV_DEFAULT_BASE_MODEL,
    ENV_JUDGE_MODEL,
    ENV_MAX_ACTIVE_RUNS,
    ENV_MAX_EVAL_EXAMPLES_CEILING,
    ENV_MODE,
    ENV_RUN_TIMEOUT_HOURS,
    ENV_STAGE,
    ENV_TABLE_NAME,
    ENV_TRAINING_POLL_SECONDS,
    ENV_TRAINING_PROFILES,
    ENV_TRAINING_USE_SPOT,
    FUNCTION_RUNTIME_ENVIRONMENT,
)

# Python 3.13 everywhere: the dependency layer is built from cp313 wheels for this runtime.
RUNTIME = lambda_.Runtime.PYTHON_3_13
PYTHON_VERSION = bytecode.runtime_version(RUNTIME.name)
ARCHITECTURE = lambda_.Architecture.ARM_64
SERVICE_NAME = "tuned-tensor"
METRICS_NAMESPACE = "TunedTensor"
_IGNORED = ("__pycache__", "*.pyc")
# StageConfig.log_level (Python's names) → Lambda's application log level.
APPLICATION_LOG_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


@jsii.implements(ILocalBundling)
class CopyIntoSubdirectory:
    """Local bundling that copies a directory into `<asset>/<subdirectory>`, so no Docker is needed."""

    def __init__(self, source: Path, subdirectory: str) -> None:
        self._source = source
        self._subdirectory = subdirectory

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        # /var/task is read-only too: the handlers carry the runtime's bytecode (infra/bytecode.py).
        python = bytecode.bundling_compiler(PYTHON_VERSION)
        if python is False:
            return False
        target = Path(output_dir) / self._subdirectory
        shutil.copytree(self._source, target, ignore=shutil.ignore_patterns(*_IGNORED), dirs_exist_ok=True)
        bytecode.compile_tree(python, target, f"{bytecode.FUNCTION_CODE_PATH}/{self._subdirectory}")
        return True


def functions_code() -> lambda_.Code:
    """The single code asset of every function: the repository's `functions/` shipped as `functions/`.

    Handlers are then `functions.<area>.handler.lambda_handler`, the same module path as in tests and
    the local stack. Build it once per stack and hand it to every `make_function` call.
    """
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        exclude=list(_IGNORED),
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            # Only used if local bundling ever declines; it produces the same layout.
            command=[
                "bash",
                "-c",
                "mkdir -p /asset-output/functions && cp -R /asset-input/. /asset-output/functions/ && "
                + bytecode.shell_compile_command(
                    "/asset-output/functions", f"{bytecode.FUNCTION_CODE_PATH}/functions"
                ),
            ],
            local=CopyIntoSubdirectory(FUNCTIONS_DIR, "functions"),
        ),
    )


def service_environment(*, config: StageConfig, table_name: str, bucket_name: str) -> dict[str, str]:
    """The environment every function of the service reads through `tt_core.settings.Settings`."""
    # Compact JSON: Lambda allows 4 KB for all of a function's variables together.
    profiles = {name: profile.model_dump(mode="json") for name, profile in config.training_profiles.items()}
    return {
        ENV_TABLE_NAME: table_name,
        ENV_BUCKET_NAME: bucket_name,
        ENV_MODE: "aws",
        ENV_STAGE: config.stage,
        ENV_DEFAULT_BASE_MODEL: config.default_base_model,
        ENV_MAX_ACTIVE_RUNS: str(config.max_active_runs),
        ENV_RUN_TIMEOUT_HOURS: str(config.run_timeout_hours),
        ENV_MAX_EVAL_EXAMPLES_CEILING: str(config.max_eval_examples_ceiling),
        ENV_TRAINING_POLL_SECONDS: str(config.training_poll_seconds),
        ENV_TRAINING_USE_SPOT: "true" if config.training_use_spot else "false",
        ENV_TRAINING_PROFILES: json.dumps(profiles, separators=(",", ":"), sort_keys=True),
        # The provider settings: the tasks call it, the API reports it in /version's capabilities.
        ENV_BEDROCK_ENABLED: "true" if config.bedrock_enabled else "false",
        **{
            name: value
            for name, value in (
                (ENV_ANTHROPIC_API_KEY_SECRET, config.anthropic_api_key_secret),
                (ENV_AUGMENTATION_MODEL, config.augmentation_model),
                (ENV_JUDGE_MODEL, config.judge_model),
            )
            if value
        },
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "LOG_LEVEL": config.log_level,
        **FUNCTION_RUNTIME_ENVIRONMENT,
    }


@dataclass(frozen=True)
class FunctionDefaults:
    """What every function of the stack shares: code asset, layers, environment, log settings."""

    code: lambda_.Code
    layers: Sequence[lambda_.ILayerVersion]
    environment: Mapping[str, str]
    log_retention: logs.RetentionDays
    removal_policy: RemovalPolicy
    # StageConfig.log_level: Lambda's own filter (ApplicationLogLevel) lets these records through.
    log_level: str = "INFO"


def make_function(
    scope: Construct,
    id: str,
    *,
    defaults: FunctionDefaults,
    handler: str,
    memory_mb: int,
    timeout: Duration,
    description: str,
) -> lambda_.Function:
    """A Python 3.13 arm64 function with JSON logs to its own log group and active X-Ray tracing."""
    log_group = logs.LogGroup(
        scope, f"{id}Logs", retention=defaults.log_retention, removal_policy=defaults.removal_policy
    )
    # Its own role instead of AWSLambdaBasicExecutionRole: it may write to its own log group only.
    role = iam.Role(
        scope,
        f"{id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Execution role of {description}",
    )
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        id,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=defaults.code,
        layers=list(defaults.layers),
        environment=dict(defaults.environment),
        memory_size=memory_mb,
        timeout=timeout,
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        # With JSON logs Lambda filters application records itself (INFO unless told): without this a
        # log_level of DEBUG would be dropped after Powertools wrote it.
        application_log_level_v2=APPLICATION_LOG_LEVELS[defaults.log_level],
        system_log_level_v2=lambda_.SystemLogLevel.INFO,
        tracing=lambda_.Tracing.ACTIVE,
        description=description,
    )
    nag.acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
        "permissions, so the statement CDK adds for Tracing.ACTIVE must name '*'.",
    )
    nag.acknowledge(
        function,
        "AwsSolutions-L1",
        "Python 3.13 is pinned on purpose: the dependency layer is built from cp313 wheels and the "
        "handlers are tested on it; the runtime moves together with the layer build, not on its own.",
    )
    return function


def dead_lettered(function: lambda_.Function, id: str, *, retry_attempts: int) -> sqs.Queue:
    """Asynchronous invocations of `function`: Lambda's own retries for up to 6 hours, then a dead-letter
    queue that keeps the event 14 days (Observability raises an alarm on its first message)."""
    scope = function.node.scope
    assert isinstance(scope, Construct)
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,  # Lambda sends without a KMS key grant
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    function.configure_async_invoke(retry_attempts=retry_attempts, max_event_age=Duration.hours(6))
    cfn_function = function.node.default_child
    assert isinstance(cfn_function, lambda_.CfnFunction)
    # Naming the queue here is also what satisfies cdk-nag's SQS3 (a queue that is some function's
    # dead-letter queue needs no dead-letter queue of its own).
    cfn_function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(target_arn=queue.queue_arn)
    queue.grant_send_messages(function)
    return queue
