"""`tt admin create-account` against a moto CloudFormation stack holding the table and buckets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tt_cli.commands.admin import find_storage
from tt_cli.errors import CliError
from tt_core.models.common import PageQuery
from tt_core.schema import (
    GSI1_NAME,
    GSI1_PARTITION_KEY,
    GSI1_SORT_KEY,
    OUTPUT_BUCKET_NAME,
    OUTPUT_TABLE_NAME,
    PARTITION_KEY,
    SORT_KEY,
)

REGION = "eu-west-1"


def _keys(partition: str, sort: str) -> list[dict[str, str]]:
    return [{"AttributeName": partition, "KeyType": "HASH"}, {"AttributeName": sort, "KeyType": "RANGE"}]


# The shape the CDK stack deploys: one table (with GSI1), the datasets bucket and its access-log bucket.
TEMPLATE = {
    "Resources": {
        "DataStoreTableA1B2C3": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "tt-test-table",
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": name, "AttributeType": "S"}
                    for name in (PARTITION_KEY, SORT_KEY, GSI1_PARTITION_KEY, GSI1_SORT_KEY)
                ],
                "KeySchema": _keys(PARTITION_KEY, SORT_KEY),
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": GSI1_NAME,
                        "KeySchema": _keys(GSI1_PARTITION_KEY, GSI1_SORT_KEY),
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            },
        },
        "DataStoreAccessLogsD4E5F6": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": "tt-test-logs"},
        },
        "DataStoreDatasets0A1B2C": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "tt-test-data"}},
    },
    # What the CDK stack outputs for `tt admin` (infra/service_stack.py).
    "Outputs": {
        OUTPUT_TABLE_NAME: {"Value": {"Ref": "DataStoreTableA1B2C3"}},
        OUTPUT_BUCKET_NAME: {"Value": {"Ref": "DataStoreDatasets0A1B2C"}},
    },
}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto import mock_aws

    from tt_core import wiring

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name in ("TT_TABLE_NAME", "TT_BUCKET_NAME"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName="TunedTensor", TemplateBody=json.dumps(TEMPLATE))
        yield
    wiring.reset()


def test_create_account_finds_the_stacks_storage(
    run: Any, stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_core import wiring

    before = dict(os.environ)
    result = run("admin", "create-account", "--name", "Acme", "--region", REGION, "--json")
    assert result.code == 0, result.err
    data = result.json
    assert set(data) == {"account_id", "name", "api_key"} and data["name"] == "Acme"
    assert data["api_key"].startswith("tt_") and len(data["api_key"]) == 51
    assert dict(os.environ) == before  # the deployment's names were set for the command only

    # The key works against the stack's own table.
    monkeypatch.setenv("TT_TABLE_NAME", "tt-test-table")
    monkeypatch.setenv("TT_BUCKET_NAME", "tt-test-data")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    wiring.reset()
    principal = wiring.api_key_service().authenticate(f"Bearer {data['api_key']}")
    assert principal.account_id == data["account_id"]
    [key], _ = wiring.api_key_service().list_keys(data["account_id"], PageQuery())
    assert key.name == "default"

    text = run("admin", "create-account", "--name", "Globex", "--region", REGION)
    assert text.code == 0
    assert text.out.startswith("✓ Created account ") and "(Globex) in stack TunedTensor" in text.out
    assert "API key: tt_" in text.out and "shown only once" in text.out


def test_create_account_with_a_missing_stack(run: Any, stack: None) -> None:
    result = run("admin", "create-account", "--name", "Acme", "--stack", "Nope", "--region", REGION)
    assert result.code == 1
    assert result.err.startswith("✗ [0] cli_error: Cannot read stack Nope:")


class _FakeSession:
    """DescribeStacks answers only: the command must not need DescribeStackResources (≤ 100 resources)."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()]

    def client(self, service: str) -> Any:
        assert service == "cloudformation"
        outputs = self.outputs

        class Client:
            def describe_stacks(self, StackName: str) -> dict[str, Any]:
                return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}

        return Client()


def test_find_storage_reads_the_stacks_outputs() -> None:
    outputs = {"ApiUrl": "https://x", OUTPUT_TABLE_NAME: "t-main", OUTPUT_BUCKET_NAME: "b-data"}
    assert find_storage(_FakeSession(outputs), "S") == {"table": "t-main", "bucket": "b-data"}


def test_find_storage_names_a_missing_output() -> None:
    with pytest.raises(CliError, match="Stack S has no BucketName output"):
        find_storage(_FakeSession({OUTPUT_TABLE_NAME: "t-main"}), "S")


def test_a_stack_with_more_than_100_resources(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployed stack has about 120 resources: more than one DescribeStackResources answer holds."""
    from moto import mock_aws

    from tt_core import wiring

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    queues = {f"Queue{i}": {"Type": "AWS::SQS::Queue", "Properties": {}} for i in range(110)}
    resources: dict[str, Any] = TEMPLATE["Resources"]  # type: ignore[assignment]
    template = {**TEMPLATE, "Resources": {**resources, **queues}}
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="TunedTensor", TemplateBody=json.dumps(template)
        )
        result = run("admin", "create-account", "--name", "Big", "--region", REGION, "--json")
    wiring.reset()
    assert result.code == 0, result.err
