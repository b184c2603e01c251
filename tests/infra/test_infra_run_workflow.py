"""RunWorkflow: the state machine's states, retries and catches, the training role, grants, environment."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from aws_cdk.assertions import Template
from pydantic import ValidationError

from infra.app import SKIP_BUNDLING, build_app
from infra.config import StageConfig
from infra.constructs.run_workflow import ENV_TRAINING_VOLUME_GB, TASK_HANDLERS
from tests.infra.conftest import Synth
from tt_core.schema import (
    ENV_STATE_MACHINE_ARN,
    ENV_TRAINING_IMAGE_URI,
    ENV_TRAINING_ROLE_ARN,
    TrainingProfile,
)
from tt_core.settings import Settings

CAUGHT_TASKS = ("Prepare", "StartTraining", "PollTraining", "Evaluate", "Finish")
TIMEOUTS = {
    "Prepare": 900,
    "StartTraining": 60,
    "PollTraining": 60,
    "Evaluate": 900,
    "Finish": 300,
    "RecordFailure": 60,
}
TRAINING_JOBS_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":sagemaker:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":training-job/tt-*",
        ],
    ]
}
TOKEN = re.compile(r"^TOKEN(\d+)$")


def _definition(synth: Synth) -> tuple[dict[str, Any], list[Any]]:
    """The DefinitionString parsed: its Fn::Join literals joined with TOKEN<i> for each intrinsic."""
    _, machine = synth.only("AWS::StepFunctions::StateMachine")
    separator, parts = machine["Properties"]["DefinitionString"]["Fn::Join"]
    tokens = [part for part in parts if not isinstance(part, str)]
    text, index = "", 0
    for part in parts:
        if isinstance(part, str):
            text += part
        else:
            text += f"TOKEN{index}"
            index += 1
        text += separator
    return json.loads(text), tokens


def _states(synth: Synth) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = _definition(synth)[0]["States"]
    return states


def _function_of(synth: Synth, state: dict[str, Any]) -> str:
    """The logical id of the function a Task state invokes."""
    _, tokens = _definition(synth)
    match = TOKEN.match(state["Resource"])
    assert match, state["Resource"]
    logical_id, attribute = tokens[int(match.group(1))]["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(logical_id)


def _statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    role_id = synth.logical_id(role)
    statements = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _with_action(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    (statement,) = (s for s in statements if action in _listed(s["Action"]))
    return statement


def _object_arn(synth: Synth, pattern: str) -> dict[str, Any]:
    bucket = {"Fn::GetAtt": [synth.logical_id(synth.stack.data.bucket), "Arn"]}
    return {"Fn::Join": ["", [bucket, f"/{pattern}"]]}


# The state machine -------------------------------------------------------------------------------


def test_a_standard_machine_logged_and_traced(dev: Synth) -> None:
    _, machine = dev.only("AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False
    log_group = dev.logical_id(dev.stack.workflow.log_group)
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group, "Arn"]}}}
    ]
    assert "StateMachineName" not in props


def test_the_states_and_their_order(dev: Synth) -> None:
    definition, _ = _definition(dev)
    states = definition["States"]
    assert definition["StartAt"] == "Prepare"
    assert {name: state["Type"] for name, state in states.items()} == {
        "Prepare": "Task",
        "StartTraining": "Task",
        "WaitForTraining": "Wait",
        "PollTraining": "Task",
        "TrainingFinished?": "Choice",
        "Evaluate": "Task",
        "Finish": "Task",
        "RecordFailure": "Task",
        "RunCompleted": "Succeed",
        "RunFailed": "Fail",
    }
    assert {name: state.get("Next") for name, state in states.items() if "Next" in state} == {
        "Prepare": "StartTraining",
        "StartTraining": "WaitForTraining",
        "WaitForTraining": "PollTraining",
        "PollTraining": "TrainingFinished?",
        "Evaluate": "Finish",
        "Finish": "RunCompleted",
        "RecordFailure": "RunFailed",
    }


def test_the_wait_takes_its_seconds_from_the_state(dev: Synth) -> None:
    wait = _states(dev)["WaitForTraining"]
    assert wait["SecondsPath"] == "$.poll_seconds"
    assert "Seconds" not in wait


def test_the_choice_follows_the_training_state(dev: Synth) -> None:
    choice = _states(dev)["TrainingFinished?"]
    present, completed, waiting = choice["Choices"]
    assert present == {"Variable": "$.training_state", "IsPresent": False, "Next": "RecordFailure"}
    assert completed == {"Variable": "$.training_state", "StringEquals": "completed", "Next": "Evaluate"}
    assert waiting == {
        "Or": [
            {"Variable": "$.training_state", "StringEquals": "queued"},
            {"Variable": "$.training_state", "StringEquals": "running"},
        ],
        "Next": "WaitForTraining",
    }
    # failed, stopped (or anything else)
    assert choice["Default"] == "RecordFailure"


def test_each_task_invokes_its_handler_with_the_whole_state(dev: Synth) -> None:
    states = _states(dev)
    functions = dev.functions()
    for name, handler in TASK_HANDLERS.items():
        state = states[name]
        assert functions[_function_of(dev, state)]["Handler"] == handler
        # payload_response_only: the input is the whole state, the output the handler's return value.
        assert not {"Parameters", "InputPath", "OutputPath", "ResultPath", "ResultSelector"} & set(state)
    assert set(TASK_HANDLERS) == {name for name, state in states.items() if state["Type"] == "Task"}


def test_every_task_times_out_after_its_function(dev: Synth) -> None:
    states = _states(dev)
    functions = dev.functions()
    for name, seconds in TIMEOUTS.items():
        assert functions[_function_of(dev, states[name])]["Timeout"] == seconds
        assert states[name]["TimeoutSeconds"] == seconds + 30


def test_every_task_retries_transient_errors_with_backoff(dev: Synth) -> None:
    for name in TASK_HANDLERS:
        retries = {error: retry for retry in _states(dev)[name]["Retry"] for error in retry["ErrorEquals"]}
        for error in ("Lambda.ServiceException", "Lambda.TooManyRequestsException"):
            assert retries[error]["BackoffRate"] == 2
            assert 1 < retries[error]["MaxAttempts"] <= 6
        assert "States.ALL" not in retries
        # The long tasks do not run a second time just because they ran out of time.
        for error in ("States.Timeout", "Sandbox.Timedout"):
            assert (error in retries) == (name not in ("Prepare", "Evaluate"))
            assert retries.get(error, {"MaxAttempts": 1})["MaxAttempts"] <= 2


def test_failures_go_to_record_failure_then_run_failed(dev: Synth) -> None:
    states = _states(dev)
    for name in CAUGHT_TASKS:
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
        ]
    assert states["RecordFailure"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RunFailed"}
    ]
    assert states["RunFailed"]["Error"] == "RunFailed"


def test_the_execution_timeout_is_a_backstop_behind_the_run_timeout(dev: Synth) -> None:
    definition, _ = _definition(dev)
    assert definition["TimeoutSeconds"] == (24 + 1) * 3600


def test_the_machine_may_invoke_only_its_task_functions(dev: Synth) -> None:
    statements = _statements(dev, dev.stack.workflow.state_machine.role)
    invoke = _with_action(statements, "lambda:InvokeFunction")
    targets = {
        resource["Fn::GetAtt"][0] if "Fn::GetAtt" in resource else resource["Fn::Join"][1][0]["Fn::GetAtt"][0]
        for resource in invoke["Resource"]
    }
    assert targets == {dev.logical_id(function) for function in dev.stack.workflow.functions.values()}


# The training role -------------------------------------------------------------------------------


def test_training_role_is_for_sagemaker_without_managed_policies(dev: Synth) -> None:
    role = dev.resources("AWS::IAM::Role")[dev.logical_id(dev.stack.workflow.training_role)]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role


def test_training_role_reads_runs_models_and_base_weights_and_writes_runs_only(dev: Synth) -> None:
    statements = _statements(dev, dev.stack.workflow.training_role)
    bucket = {"Fn::GetAtt": [dev.logical_id(dev.stack.data.bucket), "Arn"]}
    runs, models = _object_arn(dev, "accounts/*/runs/*"), _object_arn(dev, "accounts/*/models/*")
    weights = _object_arn(dev, "base-models/*")
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _listed(s["Action"]))]
    read = _with_action(s3, "s3:GetObject*")
    assert sorted(map(json.dumps, _listed(read["Resource"]))) == sorted(
        map(json.dumps, [bucket, runs, models, weights])
    )
    write = _with_action(s3, "s3:PutObject")
    assert _listed(write["Resource"]) == [runs]
    assert not any(a.startswith("s3:DeleteObject") for s in s3 for a in _listed(s["Action"]))


def test_training_role_pulls_only_the_trainer_image_repository(dev: Synth) -> None:
    statements = _statements(dev, dev.stack.workflow.training_role)
    pull = _with_action(statements, "ecr:BatchGetImage")
    repository = json.dumps(pull["Resource"])
    assert ":repository/" in repository and "container-assets" in repository


def test_training_role_wildcards_are_only_what_has_no_resource_level_permissions(dev: Synth) -> None:
    statements = _statements(dev, dev.stack.workflow.training_role)
    unscoped = [s for s in statements if "*" in _listed(s["Resource"])]
    assert {a for s in unscoped for a in _listed(s["Action"])} == {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
    }
    metrics = _with_action(statements, "cloudwatch:PutMetricData")
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}}
    logs = _with_action(statements, "logs:PutLogEvents")
    assert json.dumps(logs["Resource"]).endswith(':log-group:/aws/sagemaker/TrainingJobs:log-stream:*"]]}')


def test_training_role_wildcards_are_acknowledged_with_reasons(dev: Synth) -> None:
    role = dev.resources("AWS::IAM::Policy")
    (policy,) = (
        p
        for p in role.values()
        if {"Ref": dev.logical_id(dev.stack.workflow.training_role)} in p["Properties"]["Roles"]
    )
    rules = {rule["id"]: rule["reason"] for rule in policy["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    assert "AwsSolutions-IAM5[Resource::*]" in rules
    assert any("/accounts/*/runs/*" in rule for rule in rules)
    assert any("/accounts/*/models/*" in rule for rule in rules)
    assert any("/base-models/*" in rule for rule in rules)
    assert all(len(reason) >= 60 for reason in rules.values())


# The task functions and the API ------------------------------------------------------------------


# What each task may do to training jobs and objects, exactly (tt_core.services.run_workflow).
EXPECTED_TASK_ACCESS = {
    "Prepare": ([], "read_write"),
    "StartTraining": (["sagemaker:CreateTrainingJob"], None),
    # It deletes the epoch checkpoint packages the trainer no longer keeps, and writes nothing.
    "PollTraining": (["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"], "read_delete"),
    "Evaluate": ([], "read_write"),
    "Finish": ([], "read_write"),
    "RecordFailure": (["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"], None),
}


@pytest.mark.parametrize("state", list(TASK_HANDLERS))
def test_each_task_role_has_exactly_what_its_task_does(dev: Synth, state: str) -> None:
    """Only StartTraining creates training jobs and passes the training role (to SageMaker only)."""
    function = dev.stack.workflow.functions[state]
    statements = _statements(dev, function.role)
    actions = {a for s in statements for a in _listed(s["Action"])}
    jobs, objects = EXPECTED_TASK_ACCESS[state]
    assert sorted(a for a in actions if a.startswith("sagemaker:")) == jobs
    if jobs:
        assert _with_action(statements, jobs[0])["Resource"] == TRAINING_JOBS_ARN
    if state == "StartTraining":
        pass_role = _with_action(statements, "iam:PassRole")
        training_role = {"Fn::GetAtt": [dev.logical_id(dev.stack.workflow.training_role), "Arn"]}
        assert pass_role["Resource"] == training_role
        assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    else:
        assert "iam:PassRole" not in actions
    table = {"Fn::GetAtt": [dev.logical_id(dev.stack.data.table), "Arn"]}
    assert table in _listed(_with_action(statements, "dynamodb:UpdateItem")["Resource"])
    s3 = {a for a in actions if a.startswith("s3:")}
    if objects is None:
        assert not s3
    else:
        reads = _with_action(statements, "s3:GetObject*")
        assert _object_arn(dev, "accounts/*") in _listed(reads["Resource"])
        assert ("s3:PutObject" in s3) == (objects == "read_write")
        assert ("s3:DeleteObject*" in s3) == (objects in ("read_write", "read_delete"))
    assert not any(a.startswith("states:") for a in actions)


def test_training_job_acknowledgments_only_where_training_jobs_are_granted(dev: Synth) -> None:
    """cdk-nag's IAM5 acknowledgments shrank with the grants: none for a task that has no such wildcard."""
    for state, function in dev.stack.workflow.functions.items():
        metadata = dev.json["Resources"][dev.logical_id(function.role)].get("Metadata", {})
        text = json.dumps(metadata)
        jobs, objects = EXPECTED_TASK_ACCESS[state]
        assert ("training-job/tt-*" in text) == bool(jobs), state
        assert ("s3:DeleteObject*" in text) == (objects in ("read_write", "read_delete")), state


def test_api_starts_and_cancels_runs(dev: Synth) -> None:
    statements = _statements(dev, dev.stack.api.api_function.role)
    machine = dev.logical_id(dev.stack.workflow.state_machine)
    assert _with_action(statements, "states:StartExecution")["Resource"] == {"Ref": machine}
    stop = _with_action(statements, "states:StopExecution")
    assert sorted(stop["Action"]) == ["states:DescribeExecution", "states:StopExecution"]
    _, parts = stop["Resource"]["Fn::Join"]
    assert parts[-3:] == [":execution:", {"Fn::GetAtt": [machine, "Name"]}, ":*"]
    stop_job = _with_action(statements, "sagemaker:StopTrainingJob")
    assert stop_job["Resource"] == TRAINING_JOBS_ARN
    # A job that refuses to stop is described to tell whether it has ended (cancel never answers 500).
    assert sorted(stop_job["Action"]) == ["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"]
    assert not any(
        a in ("sagemaker:CreateTrainingJob", "iam:PassRole") for s in statements for a in _listed(s["Action"])
    )


def test_only_the_api_knows_the_machine_and_only_tasks_the_image_and_role(dev: Synth) -> None:
    machine = {"Ref": dev.logical_id(dev.stack.workflow.state_machine)}
    role_arn = {"Fn::GetAtt": [dev.logical_id(dev.stack.workflow.training_role), "Arn"]}
    # The tasks and the ExecutionEnded function (it stops training jobs with the same launcher).
    workflow = [*dev.stack.workflow.functions.values(), dev.stack.workflow.execution_ended]
    task_ids = {dev.logical_id(function) for function in workflow}
    api_id = dev.logical_id(dev.stack.api.api_function)
    for logical_id, props in dev.functions().items():
        variables = props["Environment"]["Variables"]
        assert (variables.get(ENV_STATE_MACHINE_ARN) == machine) == (logical_id == api_id)
        if logical_id in task_ids:
            assert variables[ENV_TRAINING_ROLE_ARN] == role_arn
            assert variables[ENV_TRAINING_VOLUME_GB] == "50"
            image = variables[ENV_TRAINING_IMAGE_URI]["Fn::Sub"]
            assert image.startswith("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/")
        else:
            assert not {ENV_TRAINING_ROLE_ARN, ENV_TRAINING_IMAGE_URI, ENV_TRAINING_VOLUME_GB} & set(
                variables
            )


def test_workflow_functions_are_sized_from_the_config(dev: Synth) -> None:
    functions = dev.functions()
    config = dev.stack.config
    sizes = {
        "Prepare": (config.prepare_memory_mb, config.prepare_timeout_seconds),
        "StartTraining": (config.start_training_memory_mb, config.start_training_timeout_seconds),
        "PollTraining": (config.poll_training_memory_mb, config.poll_training_timeout_seconds),
        "Evaluate": (config.evaluate_memory_mb, config.evaluate_timeout_seconds),
        "Finish": (config.finish_memory_mb, config.finish_timeout_seconds),
        "RecordFailure": (config.fail_memory_mb, config.fail_timeout_seconds),
    }
    for state, function in dev.stack.workflow.functions.items():
        props = functions[dev.logical_id(function)]
        assert (props["MemorySize"], props["Timeout"]) == sizes[state]


def test_the_stack_outputs_the_state_machine_arn(dev: Synth) -> None:
    outputs = dev.json["Outputs"]
    assert outputs["StateMachineArn"]["Value"] == {"Ref": dev.logical_id(dev.stack.workflow.state_machine)}


# A stage with every run setting changed: the values reach Settings and the machine ----------------

CUSTOM = StageConfig(
    stage="qa",
    run_timeout_hours=12.5,
    max_eval_examples_ceiling=200,
    training_poll_seconds=30,
    training_use_spot=True,
    training_volume_gb=120,
    training_profiles={
        "default": TrainingProfile(instance_type="ml.g6.xlarge", hourly_usd=0.805, tokens_per_second=2000),
        "acme/model": TrainingProfile(
            instance_type="ml.g6e.xlarge", hourly_usd=1.861, tokens_per_second=3000, startup_minutes=4
        ),
    },
    prepare_memory_mb=3008,
    evaluate_timeout_seconds=600,
)


@cache
def _custom() -> Synth:
    app, stack = build_app(CUSTOM, context=SKIP_BUNDLING)
    return Synth(app=app, stack=stack, template=Template.from_stack(stack))


@pytest.fixture(scope="module")
def custom() -> Iterator[Synth]:
    yield _custom()


def test_settings_from_a_synthesized_environment_are_the_stage_config(custom: Synth) -> None:
    """The contract between StageConfig, service_environment and Settings.from_env."""
    for props in custom.functions().values():
        environment = {
            name: value if isinstance(value, str) else f"<{name}>"
            for name, value in props["Environment"]["Variables"].items()
        }
        settings = Settings.from_env(environment)
        assert settings.mode == "aws" and settings.stage == "qa"
        assert settings.run_timeout_hours == 12.5
        assert settings.max_eval_examples_ceiling == 200
        assert settings.poll_seconds == 30
        assert settings.training_use_spot is True
        assert settings.training_profiles == CUSTOM.training_profiles
        assert settings.training_profile("acme/model").instance_type == "ml.g6e.xlarge"
        assert settings.training_profile("other/model").instance_type == "ml.g6.xlarge"


def test_config_reaches_the_machine(custom: Synth) -> None:
    definition, _ = _definition(custom)
    assert definition["TimeoutSeconds"] == int((12.5 + 1) * 3600)
    assert definition["States"]["Evaluate"]["TimeoutSeconds"] == 630
    prepare = custom.functions()[custom.logical_id(custom.stack.workflow.functions["Prepare"])]
    assert prepare["MemorySize"] == 3008
    start = custom.functions()[custom.logical_id(custom.stack.workflow.functions["StartTraining"])]
    assert start["Environment"]["Variables"][ENV_TRAINING_VOLUME_GB] == "120"


def test_profiles_without_a_default_are_refused() -> None:
    with pytest.raises(ValidationError, match="default"):
        StageConfig(training_profiles={"acme/model": CUSTOM.training_profiles["acme/model"]})


def test_profiles_and_run_settings_from_cli_context_strings() -> None:
    profiles = {name: profile.model_dump() for name, profile in CUSTOM.training_profiles.items()}
    context = {
        "training_profiles": json.dumps(profiles),
        "training_use_spot": "true",
        "run_timeout_hours": "6",
        "training_poll_seconds": "120",
    }
    config = StageConfig.from_context(context.get, {})
    assert config.training_profiles == CUSTOM.training_profiles
    assert (config.training_use_spot, config.run_timeout_hours, config.training_poll_seconds) == (
        True,
        6,
        120,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"run_timeout_hours": 0},
        {"training_poll_seconds": 1},
        {"max_eval_examples_ceiling": 0},
        {"prepare_timeout_seconds": 901},
        {"evaluate_memory_mb": 64},
    ],
)
def test_invalid_run_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StageConfig.model_validate(bad)
