"""DataStore: the service's one DynamoDB table and one S3 bucket (plus the bucket's access-log bucket)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StageConfig
from tt_core.schema import (
    GSI1_NAME,
    GSI1_PARTITION_KEY,
    GSI1_SORT_KEY,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
)

# Presigned PUT URLs expire after 15 minutes; an upload still unfinished a day later is abandoned.
ABORT_INCOMPLETE_UPLOADS_AFTER = Duration.days(1)
PRESIGNED_CORS_MAX_AGE_SECONDS = 3000


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class DataStore(Construct):
    """Table (tenant-first keys, GSI1 for API-key lookups, TTL for garbage) and the datasets bucket."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_string_key(PARTITION_KEY),
            sort_key=_string_key(SORT_KEY),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=config.protect_data,
            removal_policy=config.removal_policy,
        )
        self.table.add_global_secondary_index(
            index_name=GSI1_NAME,
            partition_key=_string_key(GSI1_PARTITION_KEY),
            sort_key=_string_key(GSI1_SORT_KEY),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        # cdk-nag's S1 (server access logging) accepts this bucket as it is the datasets bucket's
        # log destination: logging a log bucket would only need yet another bucket.
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # S3 server access logging can only deliver to an SSE-S3 bucket.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.log_retention_days))],
            removal_policy=config.removal_policy,
        )
        # Versioning stays off: object keys are server-chosen and written once, a deleted dataset
        # must really be gone (DELETE /datasets removes the object), and the table's PITR is the
        # recovery path for the records that point at objects.
        self.bucket = s3.Bucket(
            self,
            "Datasets",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="datasets/",
            lifecycle_rules=[
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER)
            ],
            # Clients PUT dataset files and GET artifacts straight from presigned URLs, browsers
            # included; the URL's signature is the authorization, so any origin may use one.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET],
                    allowed_origins=["*"],
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=PRESIGNED_CORS_MAX_AGE_SECONDS,
                )
            ],
            # No auto-delete custom resource in dev: it would add a Node.js function to the
            # template that the local stack would have to skip. Empty the bucket to delete a dev stack.
            removal_policy=config.removal_policy,
        )
