"""cdk-nag helpers: register the AwsSolutions checks and acknowledge findings where they arise."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(scope: IConstruct) -> None:
    """cdk-nag 3 is a policy-validation plugin: any unacknowledged finding fails `synth`.

    Acknowledgments are also written into each resource's template Metadata (`cdk_nag`), so the
    reason for every accepted finding travels with the template that gets deployed.
    """
    checks = AwsSolutionsChecks(scope, verbose=True, write_suppressions_to_cloud_formation=True)
    Validations.of(scope).add_plugins(checks)


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding on `scope` and everything below it, with the reason it is accepted."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def arn_finding(resource: IConstruct, suffix: str) -> str:
    """The IAM5 finding id of a wildcard under a resource's ARN, e.g. `<Table1234.Arn>/index/*`.

    Computed from the resource's logical id so that renaming a construct cannot leave a stale or
    missing acknowledgment behind.
    """
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    assert isinstance(cfn, CfnResource), f"{resource.node.path} has no CloudFormation resource"
    stack = Stack.of(cfn)
    logical_id = stack.resolve(stack.get_logical_id(cfn))
    return f"Resource::<{logical_id}.Arn>{suffix}"
