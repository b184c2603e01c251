"""DataStore: the table's keys, index, TTL and recovery; the buckets' security and lifecycle."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from tt_core.schema import (
    GSI1_NAME,
    GSI1_PARTITION_KEY,
    GSI1_SORT_KEY,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
)

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def test_one_table_with_tenant_first_keys_and_gsi1(dev) -> None:
    _, table = dev.only("AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        (PARTITION_KEY, "S"),
        (SORT_KEY, "S"),
        (GSI1_PARTITION_KEY, "S"),
        (GSI1_SORT_KEY, "S"),
    }
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": GSI1_NAME,
            "KeySchema": [
                {"AttributeName": GSI1_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": GSI1_SORT_KEY, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]


def test_table_is_on_demand_recoverable_encrypted_with_ttl(dev) -> None:
    dev.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            # SSEEnabled without a key = the AWS-managed aws/dynamodb KMS key.
            "SSESpecification": {"SSEEnabled": True, "KMSMasterKeyId": Match.absent()},
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
            "TableName": Match.absent(),
        },
    )


def test_dev_table_can_be_deleted_prod_table_is_protected(dev, prod) -> None:
    dev.template.has_resource(
        "AWS::DynamoDB::Table",
        {"Properties": {"DeletionProtectionEnabled": False}, "DeletionPolicy": "Delete"},
    )
    prod.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {"DeletionProtectionEnabled": True},
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def _statement_with_action(document: dict[str, Any], action: str) -> dict[str, Any]:
    (statement,) = (s for s in document["Statement"] if s["Action"] == action)
    return statement


def _buckets(synth) -> tuple[dict[str, Any], dict[str, Any]]:
    """(datasets bucket, access-log bucket) of a synth."""
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    datasets_id = synth.logical_id(synth.stack.data.bucket)
    logs_id = synth.logical_id(synth.stack.data.access_logs_bucket)
    return buckets[datasets_id]["Properties"], buckets[logs_id]["Properties"]


def test_both_buckets_are_private_owner_enforced_sse_s3_without_names(dev) -> None:
    for props in _buckets(dev):
        assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        assert props["BucketEncryption"] == {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        }
        assert "BucketName" not in props
        assert "VersioningConfiguration" not in props


def test_both_buckets_refuse_plain_http(dev) -> None:
    policies = dev.resources("AWS::S3::BucketPolicy").values()
    assert len(policies) == 2
    for policy in policies:
        deny = _statement_with_action(policy["Properties"]["PolicyDocument"], "s3:*")
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_datasets_bucket_lifecycle_cors_and_access_logs(dev) -> None:
    datasets, _ = _buckets(dev)
    assert datasets["LifecycleConfiguration"] == {
        "Rules": [
            {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}, "Status": "Enabled"},
            # DatasetIngest's rule for uploads never validated (test_infra_dataset_ingest.py).
            {
                "Id": "ExpireUnvalidatedUploads",
                "ExpirationInDays": 2,
                "TagFilters": [{"Key": "tt-upload", "Value": "pending"}],
                "Status": "Enabled",
            },
        ]
    }
    (cors,) = datasets["CorsConfiguration"]["CorsRules"]
    assert sorted(cors["AllowedMethods"]) == ["GET", "PUT"]
    assert cors["AllowedOrigins"] == ["*"]
    assert datasets["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": dev.logical_id(dev.stack.data.access_logs_bucket)
    }


def test_access_log_bucket_accepts_s3_log_delivery_and_expires_logs(dev) -> None:
    _, access_logs = _buckets(dev)
    assert access_logs["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30
    logs_policy = dev.resources("AWS::S3::BucketPolicy")
    delivery = [
        s
        for p in logs_policy.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]
    assert len(delivery) == 1 and delivery[0]["Action"] == "s3:PutObject"


def test_prod_buckets_are_retained(prod) -> None:
    for bucket in prod.resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"
