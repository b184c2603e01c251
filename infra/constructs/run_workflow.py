"""RunWorkflow: the runs' Step Functions state machine, its task functions and the training role."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct, IConstruct

from infra import nag
from infra.config import StageConfig
from infra.constructs.lambda_defaults import FunctionDefaults, dead_lettered, make_function
from tt_core.schema import (
    ACCOUNTS_PREFIX,
    BASE_MODELS_PREFIX,
    ENV_EVALUATE_TIMEOUT_SECONDS,
    ENV_PREPARE_TIMEOUT_SECONDS,
    ENV_TRAINING_IMAGE_URI,
    ENV_TRAINING_ROLE_ARN,
    ENV_TRAINING_VOLUME_GB,
)

# State names: the API, the local stack and the handlers' tests know the workflow by them.
PREPARE = "Prepare"
START_TRAINING = "StartTraining"
WAIT_FOR_TRAINING = "WaitForTraining"
POLL_TRAINING = "PollTraining"
TRAINING_FINISHED = "TrainingFinished?"
EVALUATE = "Evaluate"
FINISH = "Finish"
RECORD_FAILURE = "RecordFailure"
RUN_COMPLETED = "RunCompleted"
RUN_FAILED = "RunFailed"

# Task state name → the handler of its function (one module per task in functions/run_workflow/).
TASK_HANDLERS: Mapping[str, str] = {
    PREPARE: "functions.run_workflow.prepare.lambda_handler",
    START_TRAINING: "functions.run_workflow.start_training.lambda_handler",
    POLL_TRAINING: "functions.run_workflow.poll_training.lambda_handler",
    EVALUATE: "functions.run_workflow.evaluate.lambda_handler",
    FINISH: "functions.run_workflow.finish.lambda_handler",
    RECORD_FAILURE: "functions.run_workflow.fail.lambda_handler",
}
# Not a state: EventBridge invokes it when a run's execution ends without reaching RunCompleted or RunFailed
# (its own timeout, a failure past the Catch, a stop by hand), so no run stays active with nothing behind it.
EXECUTION_ENDED_HANDLER = "functions.run_workflow.execution_ended.lambda_handler"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
ENDED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
# Where PollTraining leaves the job's state for the Choice, and how long Prepare and then PollTraining
# ask to wait: longer as the run ages (tt_core.runs.polling), so the execution's history stays bounded.
TRAINING_STATE_PATH = "$.training_state"
POLL_SECONDS_PATH = "$.poll_seconds"
ERROR_PATH = "$.error"
# A task may run this much longer than its function before Step Functions gives up on it: the
# function's own timeout fires first and its error is what the Catch records.
TASK_TIMEOUT_MARGIN_SECONDS = 30
# The tasks that may simply run again after a timeout: they only read, or write idempotently.
RETRY_ON_TIMEOUT = frozenset({START_TRAINING, POLL_TRAINING, FINISH, RECORD_FAILURE})
# A function that ran out of time reports Sandbox.Timedout (Lambda.Unknown from older runtimes);
# States.Timeout is the task's own timeout.
TIMEOUT_ERRORS = ("States.Timeout", "Sandbox.Timedout", "Lambda.Unknown")
# PollTraining fails a run at run_timeout_hours; the execution's own timeout is a backstop behind it
# (evaluation and finishing can still follow a job that ended just in time).
EXECUTION_TIMEOUT_MARGIN_MINUTES = 60

# The tasks that call the language model: Prepare augments, Evaluate judges.
LANGUAGE_MODEL_TASKS = (PREPARE, EVALUATE)
BEDROCK_MODELS = "anthropic.claude-*"
# Run inputs and outputs live at accounts/<account_id>/runs/<run_id>/…; parent adapters at
# accounts/<account_id>/models/<model_id>/…. The training job may read and write nothing else.
RUN_OBJECTS = f"{ACCOUNTS_PREFIX}*/runs/*"
MODEL_OBJECTS = f"{ACCOUNTS_PREFIX}*/models/*"
BASE_MODEL_OBJECTS = f"{BASE_MODELS_PREFIX}*"
ACCOUNT_OBJECTS = f"{ACCOUNTS_PREFIX}*"
# StartTraining names every job `tt-<fine_tune_job_id>`: the only training jobs the service touches.
TRAINING_JOB_NAME_PATTERN = "tt-*"
CREATE_TRAINING_JOB = "sagemaker:CreateTrainingJob"
DESCRIBE_TRAINING_JOB = "sagemaker:DescribeTrainingJob"
STOP_TRAINING_JOB = "sagemaker:StopTrainingJob"
# Stopping asks DescribeTrainingJob whether a job that refuses to stop has already ended.
STOP_ACTIONS = (STOP_TRAINING_JOB, DESCRIBE_TRAINING_JOB)


@dataclass(frozen=True)
class TaskAccess:
    """What one task's function does beyond reading and updating its run's items in the table."""

    objects: Literal["none", "read", "read_delete", "read_write"]
    training_jobs: tuple[str, ...] = ()

    @property
    def passes_training_role(self) -> bool:
        return CREATE_TRAINING_JOB in self.training_jobs


# Least privilege per task (tt_core.services.run_workflow): only StartTraining creates a training job and
# hands it the training role; PollTraining stops the job of a run past its time limit, RecordFailure the
# job of a failed run; Prepare, Evaluate and Finish never touch a training job.
TASK_ACCESS: Mapping[str, TaskAccess] = {
    # Reads the spec's uploaded dataset, writes the run's inputs (and deletes them on a retry).
    PREPARE: TaskAccess("read_write"),
    # The job spec comes from the table; the job reads its inputs itself, with the training role.
    START_TRAINING: TaskAccess("none", (CREATE_TRAINING_JOB,)),
    # Describes the job and reads the progress the trainer syncs under the run's checkpoint prefix, deletes
    # the epoch checkpoint packages the trainer no longer keeps; stops the job of a run past its time limit.
    POLL_TRAINING: TaskAccess("read_delete", STOP_ACTIONS),
    # Reads the generations, writes the eval results and report.
    EVALUATE: TaskAccess("read_write"),
    # Copies the adapter artifact to the model's key, reads the train file for the throughput sample.
    FINISH: TaskAccess("read_write"),
    RECORD_FAILURE: TaskAccess("none", STOP_ACTIONS),
}
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
# Where SageMaker sends a training job's logs and metrics (MetricDefinitions included).
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
# cdk-nag's ids of the two ARN wildcards built from pseudo parameters (not from a resource).
TRAINING_JOBS_FINDING = (
    f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/"
    f"{TRAINING_JOB_NAME_PATTERN}"
)
TRAINING_LOG_STREAMS_FINDING = (
    f"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{TRAINING_LOG_GROUP}"
    ":log-stream:*"
)


@dataclass(frozen=True)
class TaskFunction:
    """One task's function: its handler and the StageConfig sizing it runs with."""

    handler: str
    memory_mb: int
    timeout_seconds: int
    description: str


def task_functions(config: StageConfig) -> dict[str, TaskFunction]:
    """Task state name → function settings, in the workflow's order."""
    sizes = {
        PREPARE: (config.prepare_memory_mb, config.prepare_timeout_seconds, "compile, augment, upload"),
        START_TRAINING: (
            config.start_training_memory_mb,
            config.start_training_timeout_seconds,
            "submit the training job",
        ),
        POLL_TRAINING: (
            config.poll_training_memory_mb,
            config.poll_training_timeout_seconds,
            "follow the training job",
        ),
        EVALUATE: (config.evaluate_memory_mb, config.evaluate_timeout_seconds, "score the eval rows"),
        FINISH: (config.finish_memory_mb, config.finish_timeout_seconds, "register the model"),
        RECORD_FAILURE: (config.fail_memory_mb, config.fail_timeout_seconds, "record a failed run"),
    }
    return {
        state: TaskFunction(
            handler=TASK_HANDLERS[state],
            memory_mb=memory_mb,
            timeout_seconds=timeout_seconds,
            description=f"Tuned Tensor run workflow: {state} ({what})",
        )
        for state, (memory_mb, timeout_seconds, what) in sizes.items()
    }


class RunWorkflow(Construct):
    """Prepare → StartTraining → Wait/PollTraining loop → Evaluate → Finish; any failure → RecordFailure."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        defaults: FunctionDefaults,
        table: dynamodb.ITable,
        bucket: s3.IBucket,
        trainer_image: ecr_assets.DockerImageAsset,
    ) -> None:
        super().__init__(scope, id)
        self.training_role = self._training_role(bucket, trainer_image)
        # Only the tasks start training jobs: the image and the role are theirs, not every function's.
        task_defaults = dataclasses.replace(
            defaults,
            environment={
                **defaults.environment,
                ENV_TRAINING_IMAGE_URI: trainer_image.image_uri,
                ENV_TRAINING_ROLE_ARN: self.training_role.role_arn,
                ENV_TRAINING_VOLUME_GB: str(config.training_volume_gb),
                # Augmentation and the judge plan their calls to fit their task's timeout.
                ENV_PREPARE_TIMEOUT_SECONDS: str(config.prepare_timeout_seconds),
                ENV_EVALUATE_TIMEOUT_SECONDS: str(config.evaluate_timeout_seconds),
            },
        )
        settings = task_functions(config)
        self.functions: dict[str, lambda_.Function] = {
            state: make_function(
                self,
                f"{state}Function",
                defaults=task_defaults,
                handler=task.handler,
                memory_mb=task.memory_mb,
                timeout=Duration.seconds(task.timeout_seconds),
                description=task.description,
            )
            for state, task in settings.items()
        }
        for state, function in self.functions.items():
            self._grant_task_access(function, TASK_ACCESS[state], table, bucket)
        for state in LANGUAGE_MODEL_TASKS:
            self._grant_language_model(self.functions[state], config)

        self.log_group = logs.LogGroup(
            self, "StateMachineLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition(settings)),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.minutes(round(config.run_timeout_hours * 60) + EXECUTION_TIMEOUT_MARGIN_MINUTES),
            # Execution data stays out of the logs: the execution history already holds it, and the
            # logs are kept longer and read more widely.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
            comment="Tuned Tensor run workflow (ARCHITECTURE.md §4)",
        )
        self._acknowledge_state_machine()
        self.execution_ended = self._execution_ended(config, task_defaults, table, bucket)

    def _execution_ended(
        self, config: StageConfig, defaults: FunctionDefaults, table: dynamodb.ITable, bucket: s3.IBucket
    ) -> lambda_.Function:
        """The rule and function that fail a run whose execution ended outside its own states."""
        function = make_function(
            self,
            "ExecutionEndedFunction",
            defaults=defaults,
            handler=EXECUTION_ENDED_HANDLER,
            memory_mb=config.fail_memory_mb,
            timeout=Duration.seconds(config.fail_timeout_seconds),
            description="fail a run whose execution ended outside its states; stop its training job",
        )
        # Like RecordFailure: the run's items, and stopping its job (a cancel's stop may have been throttled).
        self._grant_task_access(function, TaskAccess("none", STOP_ACTIONS), table, bucket)
        rule = events.Rule(
            self,
            "ExecutionEndedRule",
            description="A run's execution timed out, failed or was stopped: mark the run failed",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[EXECUTION_STATUS_CHANGE],
                detail={
                    "status": list(ENDED_STATUSES),
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                },
            ),
        )
        # An event that could not be delivered (EventBridge's retries) or whose invocations all failed
        # (Lambda's) lands in one queue, with an alarm: that run stays active until an operator acts.
        self.execution_ended_dead_letters = dead_lettered(
            function, "ExecutionEndedDeadLetters", retry_attempts=2
        )
        target = targets.LambdaFunction(
            function,
            retry_attempts=4,
            max_event_age=Duration.hours(6),
            dead_letter_queue=self.execution_ended_dead_letters,
        )
        rule.add_target(target)
        return function

    def grant_run_control(self, function: lambda_.Function) -> None:
        """Start a run's execution; cancel it (stop the execution and its training job)."""
        self.state_machine.grant_start_execution(function)
        stack = Stack.of(self)
        # The machine's executions, named by its Name attribute (CDK's grant_execution splits the ARN).
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["states:StopExecution", "states:DescribeExecution"],
            resource_arns=[executions],
        )
        grant_training_jobs(function, *STOP_ACTIONS)
        role = function.role
        assert role is not None
        cfn_machine = self.state_machine.node.default_child
        assert isinstance(cfn_machine, sfn.CfnStateMachine)
        machine = stack.resolve(stack.get_logical_id(cfn_machine))
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:<{machine}.Name>:*]",
            "Executions are named by run id at start: the wildcard is that id, under the run "
            "workflow's own state machine (stop a cancelled run, look at its execution).",
        )
        acknowledge_training_jobs(role)

    # The state machine ---------------------------------------------------------------------------

    def _definition(self, settings: Mapping[str, TaskFunction]) -> sfn.IChainable:
        invoke = {state: self._task(state, task) for state, task in settings.items()}
        run_failed = sfn.Fail(
            self,
            RUN_FAILED,
            error="RunFailed",
            cause="The run failed; its record holds the reason.",
        )
        record_failure = invoke[RECORD_FAILURE]
        record_failure.add_catch(run_failed, errors=[sfn.Errors.ALL], result_path=ERROR_PATH)
        record_failure.next(run_failed)
        for state in (PREPARE, START_TRAINING, POLL_TRAINING, EVALUATE, FINISH):
            invoke[state].add_catch(record_failure, errors=[sfn.Errors.ALL], result_path=ERROR_PATH)

        wait = sfn.Wait(self, WAIT_FOR_TRAINING, time=sfn.WaitTime.seconds_path(POLL_SECONDS_PATH))
        finished = (
            sfn.Choice(self, TRAINING_FINISHED)
            # A Choice on a missing field is a runtime error no Catch sees: the run would stay active.
            .when(sfn.Condition.is_not_present(TRAINING_STATE_PATH), record_failure)
            .when(
                sfn.Condition.string_equals(TRAINING_STATE_PATH, "completed"),
                invoke[EVALUATE].next(invoke[FINISH]).next(sfn.Succeed(self, RUN_COMPLETED)),
            )
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals(TRAINING_STATE_PATH, "queued"),
                    sfn.Condition.string_equals(TRAINING_STATE_PATH, "running"),
                ),
                wait,
            )
            # failed or stopped
            .otherwise(record_failure)
        )
        return (
            sfn.Chain.start(invoke[PREPARE])
            .next(invoke[START_TRAINING])
            .next(wait)
            .next(invoke[POLL_TRAINING])
            .next(finished)
        )

    def _task(self, state: str, task: TaskFunction) -> tasks.LambdaInvoke:
        """The whole state in, the handler's return value (the whole updated state) out."""
        invoke = tasks.LambdaInvoke(
            self,
            state,
            lambda_function=self.functions[state],
            payload_response_only=True,
            retry_on_service_exceptions=True,
            task_timeout=sfn.Timeout.duration(
                Duration.seconds(task.timeout_seconds + TASK_TIMEOUT_MARGIN_SECONDS)
            ),
        )
        # Lambda's throttling is transient: back off and try again before failing the run.
        invoke.add_retry(
            errors=["Lambda.TooManyRequestsException"],
            interval=Duration.seconds(2),
            max_attempts=6,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        if state in RETRY_ON_TIMEOUT:
            invoke.add_retry(
                errors=list(TIMEOUT_ERRORS), interval=Duration.seconds(5), max_attempts=2, backoff_rate=2
            )
        return invoke

    # Permissions -----------------------------------------------------------------------------------

    def _training_role(self, bucket: s3.IBucket, trainer_image: ecr_assets.DockerImageAsset) -> iam.Role:
        """What a training job may do: read its run's inputs and parent adapters, write its outputs."""
        role = iam.Role(
            self,
            "TrainingRole",
            assumed_by=iam.ServicePrincipal(SAGEMAKER_SERVICE),
            description="Tuned Tensor training jobs (the trainer image of training_image/)",
        )
        bucket.grant_read(role, RUN_OBJECTS)
        bucket.grant_read(role, MODEL_OBJECTS)
        bucket.grant_read(role, BASE_MODEL_OBJECTS)
        # Artifacts (model.tar.gz, output.tar.gz) and the continuously synced checkpoints.
        bucket.grant_put(role, RUN_OBJECTS)
        trainer_image.repository.grant_pull(role)
        stack = Stack.of(self)
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRAINING_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[log_group],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{log_group}:log-stream:*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_METRICS_NAMESPACE}},
            )
        )
        self._acknowledge_training_role(role, bucket)
        return role

    def _grant_task_access(
        self, function: lambda_.Function, access: TaskAccess, table: dynamodb.ITable, bucket: s3.IBucket
    ) -> None:
        table.grant_read_write_data(function)
        if access.objects == "read_write":
            bucket.grant_read_write(function, ACCOUNT_OBJECTS)
        elif access.objects in ("read", "read_delete"):
            bucket.grant_read(function, ACCOUNT_OBJECTS)
            if access.objects == "read_delete":
                bucket.grant_delete(function, ACCOUNT_OBJECTS)
        if access.training_jobs:
            grant_training_jobs(function, *access.training_jobs)
        if access.passes_training_role:
            # Not grant_pass_role: that names the role but not the service, and only SageMaker may get it.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[self.training_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}},
                )
            )
        self._acknowledge_task_grants(function, access, table, bucket)

    def _grant_language_model(self, function: lambda_.Function, config: StageConfig) -> None:
        """Read the Anthropic API key's secret; invoke Claude on Bedrock only when Bedrock is enabled."""
        if config.anthropic_api_key_secret:
            secret = api_key_secret(self, f"{function.node.id}ApiKeySecret", config.anthropic_api_key_secret)
            secret.grant_read(function)
            if config.anthropic_api_key_kms_key:
                # A secret under a customer-managed key is unreadable without kms:Decrypt on that key;
                # only through Secrets Manager of this region, as grant_read does for a secret it knows
                # the key of.
                stack = Stack.of(self)
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["kms:Decrypt"],
                        resources=[config.anthropic_api_key_kms_key],
                        conditions={
                            "StringEquals": {
                                "kms:ViaService": f"secretsmanager.{stack.region}.{stack.url_suffix}"
                            }
                        },
                    )
                )
        if not config.bedrock_enabled:
            return
        stack = Stack.of(self)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["bedrock:InvokeModel"],
                resources=[
                    # Cross-region inference profiles route to the model in any region (or none: global).
                    f"arn:{stack.partition}:bedrock:*::foundation-model/{BEDROCK_MODELS}",
                    stack.format_arn(
                        service="bedrock", resource="inference-profile", resource_name=f"*{BEDROCK_MODELS}"
                    ),
                ],
            )
        )
        role = function.role
        assert role is not None
        nag.acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{BEDROCK_MODELS}]",
            "Claude models only: a cross-region inference profile serves the call from any region's copy "
            "of the model, so the region is a wildcard; the model id is a deployment setting.",
        )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:"
            f"inference-profile/*{BEDROCK_MODELS}]",
            "Claude inference profiles of this account and region (us., eu., global. …): the prefix and the "
            "model id are deployment settings.",
        )

    # cdk-nag ---------------------------------------------------------------------------------------

    def _acknowledge_training_role(self, role: iam.Role, bucket: s3.IBucket) -> None:
        for pattern in (RUN_OBJECTS, MODEL_OBJECTS, BASE_MODEL_OBJECTS):
            nag.acknowledge(
                role,
                f"AwsSolutions-IAM5[{nag.arn_finding(bucket, '/' + pattern)}]",
                "A training job reads its run's inputs, a parent model's adapter and the operator's "
                "staged base-model weights, and writes its artifacts and checkpoints: the wildcards stand "
                "for the account and the server-chosen keys under its runs/ and models/ prefixes, and for "
                "the base model's files under base-models/.",
            )
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*"):
            nag.acknowledge(
                role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "CDK's bucket read and put grants use these action families (SageMaker lists and "
                "downloads the input channels, uploads artifacts in parts), on the runs/ and models/ "
                "prefixes of the service's bucket only.",
            )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
            "permissions; PutMetricData is limited to SageMaker's training-job namespace by a condition.",
        )
        nag.acknowledge(
            role,
            f"AwsSolutions-IAM5[{TRAINING_LOG_STREAMS_FINDING}]",
            "SageMaker names one log stream per training job (<job name>/algo-1-<time>) in the "
            "training-jobs log group; the wildcard is that stream name.",
        )

    def _acknowledge_task_grants(
        self, function: lambda_.Function, access: TaskAccess, table: dynamodb.ITable, bucket: s3.IBucket
    ) -> None:
        role = function.role
        assert role is not None
        nag.acknowledge(
            role,
            f"AwsSolutions-IAM5[{nag.arn_finding(table, '/index/*')}]",
            "DynamoDB grants cover the table's indexes (<table>/index/*); the tasks read and update "
            "run, spec, dataset and model items, each scoped by its ACCOUNT# key.",
        )
        if access.objects != "none":
            nag.acknowledge(
                role,
                f"AwsSolutions-IAM5[{nag.arn_finding(bucket, '/' + ACCOUNT_OBJECTS)}]",
                "The tasks read specs' datasets and parent models and write run inputs and reports, all "
                "under accounts/<account_id>/; the wildcard is the server-chosen key under that prefix.",
            )
            writes = {
                "read_write": ("s3:DeleteObject*", "s3:Abort*"),
                "read_delete": ("s3:DeleteObject*",),
            }.get(access.objects, ())
            for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", *writes):
                nag.acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "CDK's bucket read (and read/write) grant uses these action families (get/list to read "
                    "run inputs and training outputs, delete and abort to replace them), on the service's "
                    "bucket and its accounts/ prefix only.",
                )
        if access.training_jobs:
            acknowledge_training_jobs(role)

    def _acknowledge_state_machine(self) -> None:
        role = self.state_machine.role
        for function in self.functions.values():
            nag.acknowledge(
                role,
                f"AwsSolutions-IAM5[{nag.arn_finding(function, ':*')}]",
                "CDK's LambdaInvoke grant covers the function's versions and aliases (<function>:*); "
                "the state machine invokes its own task functions only.",
            )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Execution logging (logs:CreateLogDelivery and friends) and X-Ray tracing "
            "(xray:PutTraceSegments) support no resource-level permissions, so CDK's statements name '*'.",
        )


def api_key_secret(scope: Construct, id: str, name_or_arn: str) -> secretsmanager.ISecret:
    """The operator's existing secret holding the Anthropic API key, by ARN or by name."""
    if name_or_arn.startswith("arn:"):
        # A complete ARN ends with Secrets Manager's 6-character suffix; a partial one does not.
        if re.search(r"-[A-Za-z0-9]{6}$", name_or_arn):
            return secretsmanager.Secret.from_secret_complete_arn(scope, id, name_or_arn)
        return secretsmanager.Secret.from_secret_partial_arn(scope, id, name_or_arn)
    return secretsmanager.Secret.from_secret_name_v2(scope, id, name_or_arn)


def training_jobs_arn(scope: IConstruct) -> str:
    """`arn:<partition>:sagemaker:<region>:<account>:training-job/tt-*`: the service's own jobs."""
    return Stack.of(scope).format_arn(
        service="sagemaker", resource="training-job", resource_name=TRAINING_JOB_NAME_PATTERN
    )


def grant_training_jobs(function: lambda_.IFunction, *actions: str) -> iam.Grant:
    """SageMaker training-job actions on the service's own jobs (`tt-*`) only."""
    return iam.Grant.add_to_principal(
        grantee=function, actions=list(actions), resource_arns=[training_jobs_arn(function)]
    )


def acknowledge_training_jobs(role: iam.IRole) -> None:
    """The cdk-nag acknowledgment that goes with `grant_training_jobs`."""
    nag.acknowledge(
        role,
        f"AwsSolutions-IAM5[{TRAINING_JOBS_FINDING}]",
        "The run workflow names every training job tt-<fine_tune_job_id>: the wildcard is that id, "
        "so the role can reach the service's own training jobs and no other.",
    )
