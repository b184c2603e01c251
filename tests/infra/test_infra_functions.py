"""Functions and layers: runtime, architecture, logs, tracing, handlers, environment, grants."""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra import bytecode
from infra.constructs.lambda_defaults import CopyIntoSubdirectory
from infra.constructs.run_workflow import ENV_TRAINING_VOLUME_GB, EXECUTION_ENDED_HANDLER, TASK_HANDLERS
from infra.paths import DEPS_LAYER_DIR, FUNCTIONS_DIR, REPO_ROOT
from infra.service_stack import NOTIFICATIONS_HANDLER_ID
from tt_core.schema import (
    DEFAULT_TRAINING_PROFILES,
    ENV_BEDROCK_ENABLED,
    ENV_BUCKET_NAME,
    ENV_DEFAULT_BASE_MODEL,
    ENV_EVALUATE_TIMEOUT_SECONDS,
    ENV_MAX_ACTIVE_RUNS,
    ENV_MAX_EVAL_EXAMPLES_CEILING,
    ENV_MODE,
    ENV_PREPARE_TIMEOUT_SECONDS,
    ENV_RUN_TIMEOUT_HOURS,
    ENV_STAGE,
    ENV_STATE_MACHINE_ARN,
    ENV_TABLE_NAME,
    ENV_TRAINING_IMAGE_URI,
    ENV_TRAINING_POLL_SECONDS,
    ENV_TRAINING_PROFILES,
    ENV_TRAINING_ROLE_ARN,
    ENV_TRAINING_USE_SPOT,
    TrainingProfile,
)
from tt_core.settings import Settings

API_HANDLER = "functions.api.handler.lambda_handler"
AUTHORIZER_HANDLER = "functions.authorizer.handler.lambda_handler"
VALIDATOR_HANDLER = "functions.dataset_validation.handler.lambda_handler"
WORKFLOW_HANDLERS = (*TASK_HANDLERS.values(), EXECUTION_ENDED_HANDLER)
HANDLERS = (API_HANDLER, AUTHORIZER_HANDLER, VALIDATOR_HANDLER, *WORKFLOW_HANDLERS)


def _functions(synth) -> dict[str, dict[str, Any]]:
    """Handler string -> properties of our functions (CDK's custom-resource functions left out)."""
    return {props["Handler"]: props for props in synth.functions().values()}


def _our_function_constructs(synth) -> list[Any]:
    return [
        synth.stack.api.api_function,
        synth.stack.api.authorizer_function,
        synth.stack.ingest.validator,
        *synth.stack.workflow.functions.values(),
        synth.stack.workflow.execution_ended,
    ]


def _policy_statements(synth, function) -> list[dict[str, Any]]:
    role_id = synth.logical_id(function.role)
    (policy,) = (
        p["Properties"]
        for p in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    )
    return policy["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def test_exactly_our_ten_functions(dev) -> None:
    functions = dev.functions()
    assert sorted(props["Handler"] for props in functions.values()) == sorted(HANDLERS)
    assert set(functions) == {dev.logical_id(function) for function in _our_function_constructs(dev)}


def test_the_only_other_function_is_cdks_bucket_notifications_handler(dev) -> None:
    """Whatever is not ours must really be CDK's custom resource, not a function of ours misnamed."""
    ((logical_id, props),) = dev.cdk_functions().items()
    assert logical_id.startswith(NOTIFICATIONS_HANDLER_ID)
    assert props["Handler"] == "index.handler"
    assert "Custom::S3BucketNotifications" in props["Description"]
    assert "Environment" not in props and "Layers" not in props


@pytest.mark.parametrize("handler", HANDLERS)
def test_handler_names_a_module_in_functions(handler: str) -> None:
    module, _, function = handler.rpartition(".")
    source = REPO_ROOT / Path(*module.split(".")).with_suffix(".py")
    assert source.is_file()
    assert re.search(rf"^def {function}\(", source.read_text(), re.MULTILINE)


def test_functions_share_defaults_and_one_code_asset(dev) -> None:
    functions = _functions(dev).values()
    assert len(functions) == len(HANDLERS)
    for props in functions:
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert "Ref" in props["LoggingConfig"]["LogGroup"]
        assert "FunctionName" not in props
    assert len({props["Code"]["S3Key"] for props in functions}) == 1


def test_memory_and_timeouts_come_from_the_config(dev) -> None:
    functions = _functions(dev)
    assert (functions[API_HANDLER]["MemorySize"], functions[API_HANDLER]["Timeout"]) == (1024, 29)
    assert (functions[AUTHORIZER_HANDLER]["MemorySize"], functions[AUTHORIZER_HANDLER]["Timeout"]) == (
        512,
        10,
    )
    assert (functions[VALIDATOR_HANDLER]["MemorySize"], functions[VALIDATOR_HANDLER]["Timeout"]) == (
        1024,
        300,
    )
    workflow = {state: functions[handler] for state, handler in TASK_HANDLERS.items()}
    assert {state: (props["MemorySize"], props["Timeout"]) for state, props in workflow.items()} == {
        "Prepare": (2048, 900),
        "StartTraining": (512, 60),
        "PollTraining": (512, 60),
        "Evaluate": (2048, 900),
        "Finish": (1024, 300),
        "RecordFailure": (512, 60),
    }


def test_log_groups_keep_logs_for_the_stage_retention(dev, prod) -> None:
    for synth, days, policy in ((dev, 30, "Delete"), (prod, 365, "Retain")):
        groups = synth.resources("AWS::Logs::LogGroup")
        # One per function of ours, the API access log and the state machine's log (CDK's
        # notifications handler has none).
        function_groups = {props["LoggingConfig"]["LogGroup"]["Ref"] for props in synth.functions().values()}
        assert len(function_groups) == len(HANDLERS)
        access_log = synth.stack.api.access_log_group  # only where API Gateway logs are on (prod here)
        assert set(groups) == function_groups | {synth.logical_id(synth.stack.workflow.log_group)} | (
            {synth.logical_id(access_log)} if access_log is not None else set()
        )
        for group in groups.values():
            assert group["Properties"]["RetentionInDays"] == days
            assert group["DeletionPolicy"] == policy


def test_every_function_gets_the_service_environment(dev) -> None:
    table = {"Ref": dev.logical_id(dev.stack.data.table)}
    bucket = {"Ref": dev.logical_id(dev.stack.data.bucket)}
    expected = {
        ENV_TABLE_NAME: table,
        ENV_BUCKET_NAME: bucket,
        ENV_MODE: "aws",
        ENV_STAGE: "dev",
        ENV_DEFAULT_BASE_MODEL: "meta-llama/Llama-3.2-3B-Instruct",
        ENV_MAX_ACTIVE_RUNS: "2",
        ENV_RUN_TIMEOUT_HOURS: "24",
        ENV_MAX_EVAL_EXAMPLES_CEILING: "500",
        ENV_TRAINING_POLL_SECONDS: "60",
        ENV_TRAINING_USE_SPOT: "false",
        ENV_BEDROCK_ENABLED: "false",  # and no API key secret: augmentation and judge are offline
        "POWERTOOLS_SERVICE_NAME": "tuned-tensor",
        "POWERTOOLS_METRICS_NAMESPACE": "TunedTensor",
        "LOG_LEVEL": "INFO",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",  # no plugin search at the first model's build
    }
    # Only the API names the state machine; only the tasks (which start jobs) the image and the role.
    # The tasks also get the timeouts that augmentation and the judge plan their calls by.
    task_only = {ENV_TRAINING_IMAGE_URI, ENV_TRAINING_ROLE_ARN, ENV_TRAINING_VOLUME_GB}
    task_only |= {ENV_PREPARE_TIMEOUT_SECONDS, ENV_EVALUATE_TIMEOUT_SECONDS}
    extra = {API_HANDLER: {ENV_STATE_MACHINE_ARN}, **{handler: task_only for handler in WORKFLOW_HANDLERS}}
    functions = _functions(dev)
    assert set(functions) == set(HANDLERS)
    for handler, props in functions.items():
        variables = dict(props["Environment"]["Variables"])
        profiles = json.loads(variables.pop(ENV_TRAINING_PROFILES))
        assert {
            k: TrainingProfile.model_validate(v) for k, v in profiles.items()
        } == DEFAULT_TRAINING_PROFILES
        assert set(variables) - set(expected) == extra.get(handler, set())
        assert {k: variables[k] for k in expected} == expected


def test_settings_read_back_what_the_stack_sets(prod) -> None:
    """Settings.from_env of a synthesized function's environment gives StageConfig's values back."""
    config = prod.stack.config
    for handler in (API_HANDLER, TASK_HANDLERS["StartTraining"]):
        environment = dict(_functions(prod)[handler]["Environment"]["Variables"])
        # Tokens the deployment resolves; their placement is checked in test_infra_run_workflow.
        tokens = (ENV_TABLE_NAME, ENV_BUCKET_NAME, ENV_STATE_MACHINE_ARN, ENV_TRAINING_IMAGE_URI)
        environment.update({name: name.lower() for name in (*tokens, ENV_TRAINING_ROLE_ARN)})
        settings = Settings.from_env(environment)
        assert (settings.table_name, settings.bucket_name, settings.mode, settings.stage) == (
            "tt_table_name",
            "tt_bucket_name",
            "aws",
            "prod",
        )
        assert settings.max_active_runs == config.max_active_runs
        assert settings.default_base_model == config.default_base_model
        assert settings.run_timeout_hours == config.run_timeout_hours
        assert settings.max_eval_examples_ceiling == config.max_eval_examples_ceiling
        assert settings.poll_seconds == config.training_poll_seconds
        assert settings.training_use_spot is config.training_use_spot
        assert settings.training_profiles == config.training_profiles


def test_two_layers_for_python_3_13_arm64_on_every_function(dev) -> None:
    layers = dev.resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    functions = _functions(dev)
    assert set(functions) == set(HANDLERS)
    for props in functions.values():
        assert sorted(ref["Ref"] for ref in props["Layers"]) == sorted(layers)


def test_roles_have_no_managed_policies(dev) -> None:
    for function in _our_function_constructs(dev):
        role = dev.resources("AWS::IAM::Role")[dev.logical_id(function.role)]
        assert "ManagedPolicyArns" not in role["Properties"]


def test_each_function_writes_only_to_its_own_log_group(dev) -> None:
    for function in _our_function_constructs(dev):
        (logs,) = (s for s in _policy_statements(dev, function) if "logs:PutLogEvents" in s["Action"])
        props = dev.resources("AWS::Lambda::Function")[dev.logical_id(function)]["Properties"]
        assert logs["Resource"] == {"Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}


def _resources_of(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def test_api_function_reads_and_writes_the_table_and_accounts_objects(dev) -> None:
    statements = _policy_statements(dev, dev.stack.api.api_function)
    table_arn = {"Fn::GetAtt": [dev.logical_id(dev.stack.data.table), "Arn"]}
    bucket_arn = {"Fn::GetAtt": [dev.logical_id(dev.stack.data.bucket), "Arn"]}
    (dynamodb,) = (s for s in statements if "dynamodb:PutItem" in s["Action"])
    assert table_arn in _resources_of(dynamodb)
    (s3,) = (s for s in statements if "s3:PutObject" in s["Action"])
    assert {"Fn::Join": ["", [bucket_arn, "/accounts/*"]]} in _resources_of(s3)
    assert "s3:DeleteObject*" in s3["Action"]


def test_authorizer_reaches_the_table_only(dev) -> None:
    statements = _policy_statements(dev, dev.stack.api.authorizer_function)
    actions = {action for s in statements for action in s["Action"]}
    assert {"dynamodb:Query", "dynamodb:UpdateItem"} <= actions
    assert not any(action.startswith("s3:") for action in actions)


def test_functions_asset_holds_the_functions_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bytecode, "bundling_compiler", lambda version: None)  # no interpreter for the runtime
    assert CopyIntoSubdirectory(FUNCTIONS_DIR, "functions").try_bundle(str(tmp_path))
    assert (tmp_path / "functions" / "api" / "handler.py").is_file()
    assert (tmp_path / "functions" / "authorizer" / "handler.py").is_file()
    assert (tmp_path / "functions" / "dataset_validation" / "handler.py").is_file()
    for handler in WORKFLOW_HANDLERS:
        module = handler.rpartition(".")[0]
        assert (tmp_path / Path(*module.split("."))).with_suffix(".py").is_file()
    assert not list(tmp_path.rglob("__pycache__")) and not list(tmp_path.rglob("*.pyc"))


def test_local_bundling_leaves_stale_bytecode_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bytecode, "bundling_compiler", lambda version: None)
    source = tmp_path / "src"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_text("X = 1\n")
    (source / "pkg" / "__pycache__" / "mod.cpython-313.pyc").write_bytes(b"")
    (source / "pkg" / "stray.pyc").write_bytes(b"")
    output = tmp_path / "out"
    assert CopyIntoSubdirectory(source, "functions").try_bundle(str(output))
    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("*")) == [
        "functions",
        "functions/pkg",
        "functions/pkg/mod.py",
    ]


def test_local_bundling_compiles_the_handlers_for_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an interpreter of the runtime's version, /var/task carries its bytecode (it is read-only too)."""
    monkeypatch.setattr(bytecode, "bundling_compiler", lambda version: sys.executable)
    output = tmp_path / "out"
    assert CopyIntoSubdirectory(FUNCTIONS_DIR, "functions").try_bundle(str(output))
    pyc = output / "functions" / "api" / "__pycache__" / f"handler.{sys.implementation.cache_tag}.pyc"
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01  # unchecked-hash
    assert b"/var/task/functions/api/handler.py" in pyc.read_bytes()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            pins[name.split("[", 1)[0].lower()] = version
    return pins


def test_dependency_layer_pins_match_pyproject_including_the_sdk() -> None:
    """The layer carries the boto3/botocore the tests run (not whatever the Lambda runtime ships)."""
    layer = _pins((DEPS_LAYER_DIR / "requirements.txt").read_text().splitlines())
    no_deps = _pins((DEPS_LAYER_DIR / "requirements-no-deps.txt").read_text().splitlines())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pinned = _pins([*project["dependencies"], *project["optional-dependencies"]["aws"]])
    assert set(layer) == {
        "aws-lambda-powertools", "pydantic", "anthropic", "boto3", "botocore",
        "msgspec", "pysimdjson", "numpy",
    }  # fmt: skip
    assert set(no_deps) == {"aws-xray-sdk", "wrapt"}
    assert all(version for version in [*layer.values(), *no_deps.values()])
    assert {name: pinned[name] for name in [*layer, *no_deps]} == {**layer, **no_deps}
    # The versions this environment's tests import are the ones the layer ships.
    assert layer["boto3"] == importlib.metadata.version("boto3")
    assert layer["botocore"] == importlib.metadata.version("botocore")


def test_the_dependency_layer_installs_the_no_deps_file_without_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aws-xray-sdk requires botocore: with its dependencies the layer would carry a second botocore."""
    from infra.constructs import shared_layers

    commands: list[list[str]] = []
    monkeypatch.setattr(shared_layers.bytecode, "bundling_compiler", lambda version: None)
    monkeypatch.setattr(shared_layers.subprocess, "run", lambda command, check: commands.append(command))
    assert shared_layers.PipInstallForLambda(DEPS_LAYER_DIR).try_bundle(str(tmp_path))
    files = [command[command.index("--requirement") + 1] for command in commands]
    assert files == [
        str(DEPS_LAYER_DIR / "requirements.txt"),
        str(DEPS_LAYER_DIR / "requirements-no-deps.txt"),
    ]
    assert ["--no-deps" in command for command in commands] == [False, True]
