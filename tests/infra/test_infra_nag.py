"""cdk-nag AwsSolutions: no unacknowledged finding, every acknowledgment needed and explained."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra import nag
from infra.app import SKIP_BUNDLING, build_app
from infra.config import StageConfig


def _findings(app: App) -> list[tuple[str, str]]:
    """(rule id, construct path) of every finding AwsSolutions reports that is not acknowledged."""
    report = AwsSolutionsChecks().validate_scope(app)
    return sorted(
        (violation.rule_name, resource.construct_path)
        for violation in report.violations
        for resource in violation.violating_resources
    )


@pytest.mark.parametrize("stage", ["dev", "prod", "site"])
def test_no_unacknowledged_findings(stage: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(stage)
    assert _findings(synth.app) == []


def test_synth_fails_on_an_unacknowledged_finding() -> None:
    app = App()
    stack = Stack(app, "Unchecked")
    s3.Bucket(stack, "NoLogsNoTls")
    nag.add_checks(app)
    with pytest.raises(Exception, match=r"AwsSolutions-S1\b"):
        app.synth()


def test_acknowledgment_reasons_travel_with_the_template(dev) -> None:
    function = dev.resources("AWS::Lambda::Function")[dev.logical_id(dev.stack.api.api_function)]
    rules = function["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert [rule["id"] for rule in rules] == ["AwsSolutions-L1"]
    assert "3.13" in rules[0]["reason"]


@dataclass(frozen=True)
class Acknowledged:
    path: str
    rule_id: str
    reason: str

    def covers(self, rule_id: str, path: str) -> bool:
        return rule_id == self.rule_id and (path == self.path or path.startswith(f"{self.path}/"))


def test_every_acknowledgment_is_needed_and_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build without acknowledgments: each recorded one must match a real finding, and back again."""
    recorded: list[Acknowledged] = []

    def record(scope: IConstruct, rule_id: str, reason: str) -> None:
        recorded.append(Acknowledged(scope.node.path, rule_id, reason))

    monkeypatch.setattr(nag, "acknowledge", record)
    app, _ = build_app(StageConfig(), context=SKIP_BUNDLING, checks=False)
    app.synth()
    findings = _findings(app)

    assert findings, "without acknowledgments AwsSolutions must report findings"
    for finding in findings:
        assert any(ack.covers(*finding) for ack in recorded), f"unacknowledged: {finding}"
    for ack in recorded:
        assert any(ack.covers(*finding) for finding in findings), f"stale acknowledgment: {ack}"
        assert len(ack.reason) >= 60, f"reason too thin: {ack}"
