"""The app's entry points: synth_template for the local stack, CLI context, cdk.json, the CDK CLI pin."""

from __future__ import annotations

import json

import pytest

from infra.app import _parse_context, build_app, cdk_json_context, synth_template
from infra.config import StageConfig
from infra.constructs.run_workflow import EXECUTION_ENDED_HANDLER, TASK_HANDLERS
from infra.paths import REPO_ROOT
from infra.service_stack import STACK_ID
from tt_core.schema import ENV_TABLE_NAME


def test_synth_template_gives_the_local_stack_its_resources(our_functions) -> None:
    template = synth_template(StageConfig(stage="local-test"))
    resources = template["Resources"]
    (table_id,) = (k for k, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table")
    # The local stack runs our handlers only; CDK's custom-resource function has no environment.
    handlers = {
        props["Handler"]: props["Environment"]["Variables"] for props in our_functions(template).values()
    }
    assert set(handlers) == {
        "functions.api.handler.lambda_handler",
        "functions.authorizer.handler.lambda_handler",
        "functions.dataset_validation.handler.lambda_handler",
        *TASK_HANDLERS.values(),
        EXECUTION_ENDED_HANDLER,
    }
    for environment in handlers.values():
        assert environment[ENV_TABLE_NAME] == {"Ref": table_id}
        assert environment["TT_STAGE"] == "local-test"
    assert sum(r["Type"] == "AWS::S3::Bucket" for r in resources.values()) == 2
    assert sum(r["Type"] == "AWS::ApiGateway::RestApi" for r in resources.values()) == 1
    # The notification that the local stack wires to the validator.
    assert sum(r["Type"] == "Custom::S3BucketNotifications" for r in resources.values()) == 1


def test_stack_id_and_environment_agnostic(dev) -> None:
    assert dev.stack.stack_name == STACK_ID == "TunedTensor"
    # Unresolved account and region: synth never needs AWS credentials or lookups.
    assert dev.stack.resolve(dev.stack.account) == {"Ref": "AWS::AccountId"}
    assert dev.stack.resolve(dev.stack.region) == {"Ref": "AWS::Region"}


def test_resources_are_tagged_with_project_and_stage(prod) -> None:
    (function,) = (
        r
        for r in prod.resources("AWS::Lambda::Function").values()
        if "api.handler" in r["Properties"]["Handler"]
    )
    assert {"Key": "Project", "Value": "tuned-tensor"} in function["Properties"]["Tags"]
    assert {"Key": "Stage", "Value": "prod"} in function["Properties"]["Tags"]


def test_context_from_the_command_line() -> None:
    assert _parse_context(["-c", "stage=prod", "--context", "region=eu-west-1"]) == {
        "stage": "prod",
        "region": "eu-west-1",
    }
    with pytest.raises(SystemExit):
        _parse_context(["-c", "stage"])


def test_build_app_reads_stage_config_and_feature_flags_from_context() -> None:
    app, stack = build_app(context={"stage": "qa", "aws:cdk:bundling-stacks": []}, checks=False)
    assert stack.config.stage == "qa" and stack.config.protect_data
    assert app.node.try_get_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy") is True


def test_cdk_json_runs_this_app_with_the_recommended_feature_flags() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == "python -m infra.app"
    assert cdk_json["context"] == cdk_json_context()
    assert cdk_json["context"]["@aws-cdk/core:explicitStackTags"] is True


def test_cdk_cli_is_pinned_to_major_version_2() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text())
    assert package["devDependencies"]["aws-cdk"].startswith("^2.")
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"].startswith("2.")


def test_each_stage_has_its_own_stack(dev, prod) -> None:
    """PRODUCT.md §14.6: `-c stage=prod` deploys TunedTensor-prod and never updates dev's TunedTensor."""
    assert (dev.stack.stack_name, prod.stack.stack_name) == ("TunedTensor", "TunedTensor-prod")
    assert StageConfig.from_context({"stage": "staging"}.get).stack_id == "TunedTensor-staging"


def test_the_stack_names_that_operators_are_told_match_the_stacks(prod) -> None:
    """The 409 base_model_unavailable message and the `tt admin` --stack default name the real stacks."""
    from tt_cli.commands.admin import DEFAULT_STACK
    from tt_core.adapters.staged_base_models import StagedBaseModelWeights

    assert StageConfig().stack_id == DEFAULT_STACK
    command = StagedBaseModelWeights(objects=None, stage="prod").stage_command("m")  # type: ignore[arg-type]
    assert command.endswith(f"--stack {prod.stack.stack_name}")
    assert StagedBaseModelWeights(objects=None).stage_command("m") == "tt admin stage-base-model m"  # type: ignore[arg-type]
