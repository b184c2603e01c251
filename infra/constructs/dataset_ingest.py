"""DatasetIngest: the validator function that S3 ObjectCreated events of uploaded datasets trigger."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra import nag
from infra.config import StageConfig
from infra.constructs.lambda_defaults import FunctionDefaults, dead_lettered, make_function
from tt_core.schema import ACCOUNTS_PREFIX, DATASET_OBJECT_SUFFIX, PENDING_UPLOAD_TAG

VALIDATOR_HANDLER = "functions.dataset_validation.handler.lambda_handler"
# Uploads live at accounts/<account_id>/datasets/<dataset_id>/…: the validator may touch nothing else.
DATASET_OBJECTS = f"{ACCOUNTS_PREFIX}*/datasets/*"
# Uploads whose validation never started (the event was lost to the dead-letter queue) keep their
# pending tag; their dataset record expires after 24 h, so the object goes a day later.
PENDING_UPLOAD_EXPIRY = Duration.days(2)


class DatasetIngest(Construct):
    """S3 → validator directly (asynchronous invoke, two retries, then a dead-letter queue)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        defaults: FunctionDefaults,
        table: dynamodb.ITable,
        bucket: s3.Bucket,
    ) -> None:
        super().__init__(scope, id)
        self.validator = make_function(
            self,
            "Validator",
            handler=VALIDATOR_HANDLER,
            defaults=defaults,
            memory_mb=config.validator_memory_mb,
            timeout=Duration.seconds(config.validator_timeout_seconds),
            description="Tuned Tensor dataset validator (S3 ObjectCreated of uploads)",
        )
        self.dead_letter_queue = dead_lettered(self.validator, "DeadLetters", retry_attempts=2)

        table.grant_read_write_data(self.validator)
        # It reads uploads and clears their pending tag; it never writes or deletes objects.
        bucket.grant_read(self.validator, DATASET_OBJECTS)
        iam.Grant.add_to_principal(
            grantee=self.validator,
            actions=["s3:DeleteObjectTagging"],
            resource_arns=[bucket.arn_for_objects(DATASET_OBJECTS)],
        )
        self._acknowledge_grants(table, bucket)
        # Uploads only (…/data.jsonl): a run's train.jsonl, eval.jsonl and the trainer's training_log.jsonl,
        # synced at every step, are .jsonl too and would each invoke the validator for nothing.
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.validator),
            s3.NotificationKeyFilter(prefix=ACCOUNTS_PREFIX, suffix=DATASET_OBJECT_SUFFIX),
        )
        bucket.add_lifecycle_rule(
            id="ExpireUnvalidatedUploads",
            tag_filters={PENDING_UPLOAD_TAG[0]: PENDING_UPLOAD_TAG[1]},
            expiration=PENDING_UPLOAD_EXPIRY,
        )

    def _acknowledge_grants(self, table: dynamodb.ITable, bucket: s3.IBucket) -> None:
        role = self.validator.role
        assert role is not None  # make_function always gives the function its own role
        nag.acknowledge(
            role,
            f"AwsSolutions-IAM5[{nag.arn_finding(table, '/index/*')}]",
            "DynamoDB grants cover the table's indexes (<table>/index/*); the validator only reads and "
            "updates dataset items, each scoped by its ACCOUNT# key.",
        )
        nag.acknowledge(
            role,
            f"AwsSolutions-IAM5[{nag.arn_finding(bucket, '/' + DATASET_OBJECTS)}]",
            "The validator reads only uploaded datasets: the wildcards stand for the account and the "
            "server-chosen key under its datasets/ prefix (accounts/<account_id>/datasets/<id>/...).",
        )
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*"):
            nag.acknowledge(
                role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "CDK's bucket read grant uses these action families to stream an upload, on the "
                "datasets bucket and its accounts/ prefix only.",
            )
