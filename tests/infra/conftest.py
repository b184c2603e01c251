"""Shared synths for the infra tests: one dev and one prod ServiceStack per session, no bundling."""

from __future__ import annotations

import os

# Set before aws_cdk starts its jsii Node process: Node 20 otherwise prints an end-of-life banner
# on every call.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import SKIP_BUNDLING, build_app
from infra.config import StageConfig
from infra.service_stack import ServiceStack


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

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))


def _synth(config: StageConfig) -> Synth:
    # The AwsSolutions checks are registered: synthesis itself fails on any unacknowledged finding.
    app, stack = build_app(config, context=SKIP_BUNDLING)
    return Synth(app=app, stack=stack, template=Template.from_stack(stack))


@pytest.fixture(scope="session")
def dev() -> Iterator[Synth]:
    yield _synth(StageConfig())


@pytest.fixture(scope="session")
def prod() -> Iterator[Synth]:
    yield _synth(StageConfig(stage="prod", log_retention_days=365, alarm_email="ops@example.com"))
