"""Shared synths for the infra tests: one dev and one prod ServiceStack per session, no bundling."""

from __future__ import annotations

import os

# Set before aws_cdk starts its jsii Node process: Node 20 otherwise prints an end-of-life banner
# on every call.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import SKIP_BUNDLING, build_app
from infra.config import StageConfig
from infra.service_stack import ServiceStack

# The service's own functions have their handlers in the `functions` package; CDK's custom-resource
# functions (the BucketNotificationsHandler: `index.handler`, no environment) are not ours.
OUR_HANDLER_PREFIX = "functions."
FunctionsOf = Callable[[Mapping[str, Any]], dict[str, dict[str, Any]]]


def _lambda_functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def our_functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> properties of the service's own Lambda functions in a template."""
    return {
        logical_id: props
        for logical_id, props in _lambda_functions(template).items()
        if props["Handler"].startswith(OUR_HANDLER_PREFIX)
    }


def cdk_functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> properties of the functions CDK adds for its custom resources."""
    ours = our_functions(template)
    return {k: props for k, props in _lambda_functions(template).items() if k not in ours}


@dataclass(frozen=True)
class Synth:
    """One synthesized app: the CDK objects and the template, as dict and as assertions.Template."""

    app: App
    stack: ServiceStack
    template: Template

    @cached_property
    def json(self) -> dict[str, Any]:
        template: dict[str, Any] = self.template.to_json()
        return template

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.json["Resources"].items() if r["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        (item,) = self.resources(resource_type).items()
        return item

    def functions(self) -> dict[str, dict[str, Any]]:
        """Logical id -> properties of our own functions (CDK's custom-resource functions left out)."""
        return our_functions(self.json)

    def cdk_functions(self) -> dict[str, dict[str, Any]]:
        return cdk_functions(self.json)

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))


def _synth(config: StageConfig) -> Synth:
    # The AwsSolutions checks are registered: synthesis itself fails on any unacknowledged finding.
    app, stack = build_app(config, context=SKIP_BUNDLING)
    return Synth(app=app, stack=stack, template=Template.from_stack(stack))


@pytest.fixture(scope="session", name="our_functions")
def our_functions_fixture() -> FunctionsOf:
    """`our_functions` for tests that synthesize a template of their own (e.g. `synth_template`)."""
    return our_functions


@pytest.fixture(scope="session")
def dev() -> Iterator[Synth]:
    # The service without its dashboard site (its bucket, distribution and CDK's BucketDeployment
    # function): each area's tests see their own resources; `site` has the whole stack.
    yield _synth(StageConfig(dashboard_site=False))


@pytest.fixture(scope="session")
def site() -> Iterator[Synth]:
    """The dev stage exactly as deployed, dashboard site included (cdk-nag checked by the synth)."""
    yield _synth(StageConfig())


@pytest.fixture(scope="session")
def prod() -> Iterator[Synth]:
    # Non-default validator sizing too, so that tests can tell values read from StageConfig apart
    # from the defaults.
    yield _synth(
        StageConfig(
            stage="prod",
            log_retention_days=365,
            alarm_email="ops@example.com",
            validator_memory_mb=2048,
            validator_timeout_seconds=600,
            # API Gateway logs through an API Gateway CloudWatch role the account already has.
            api_gateway_logging="account_role",
            dashboard_site=False,
        )
    )
