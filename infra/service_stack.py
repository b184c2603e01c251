"""ServiceStack: composes the constructs of Tuned Tensor, grants access between them, tags them."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, CfnOutput, Stack, Tags
from constructs import Construct

from infra import nag
from infra.config import StageConfig
from infra.constructs.dashboard_site import DashboardSite
from infra.constructs.data_store import DataStore
from infra.constructs.dataset_ingest import DatasetIngest
from infra.constructs.lambda_defaults import FunctionDefaults, functions_code, service_environment
from infra.constructs.observability import Observability
from infra.constructs.public_api import PublicApi
from infra.constructs.run_workflow import RunWorkflow
from infra.constructs.shared_layers import SharedLayers
from infra.paths import WEB_DIR
from infra.trainer_image import training_image_asset
from tt_core.schema import (
    ACCOUNTS_PREFIX,
    API_STAGE_NAME,
    API_VERSION_PATH,
    BASE_MODEL_MANIFEST,
    BASE_MODELS_PREFIX,
    ENV_STATE_MACHINE_ARN,
    OUTPUT_BUCKET_NAME,
    OUTPUT_TABLE_NAME,
    STACK_NAME,
)

# The dev stage's stack id; every other stage's is TunedTensor-<stage> (StageConfig.stack_id).
STACK_ID = STACK_NAME
# The id CDK gives its singleton custom-resource function for bucket notifications.
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
ACCOUNT_OBJECTS = f"{ACCOUNTS_PREFIX}*"
# The manifest of each staged base model (PRODUCT.md §14.6): what the run-start preflight reads (§9.1).
BASE_MODEL_MANIFESTS = f"{BASE_MODELS_PREFIX}*/{BASE_MODEL_MANIFEST}"


class ServiceStack(Stack):
    """The whole service in one environment-agnostic stack: synth needs no account and no lookups."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(
            scope, id, description=f"Tuned Tensor: serverless fine-tuning service ({config.stage})"
        )
        self.config = config
        Tags.of(self).add("Project", "tuned-tensor")
        Tags.of(self).add("Stage", config.stage)

        self.data = DataStore(self, "Data", config=config)
        self.layers = SharedLayers(self, "Layers")
        environment = service_environment(
            config=config, table_name=self.data.table.table_name, bucket_name=self.data.bucket.bucket_name
        )
        defaults = FunctionDefaults(
            code=functions_code(),
            layers=self.layers.all,
            environment=environment,
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
            log_level=config.log_level,
        )
        self.api = PublicApi(self, "PublicApi", config=config, defaults=defaults)
        self._grant_api_access()
        self.site = self._dashboard_site(config)
        self.ingest = DatasetIngest(
            self,
            "DatasetIngest",
            config=config,
            defaults=defaults,
            table=self.data.table,
            bucket=self.data.bucket,
        )
        self._acknowledge_notification_handler()
        # The SageMaker training container, built and pushed by `cdk deploy` (the run workflow uses it).
        self.trainer_image = training_image_asset(
            self, "TrainerImage", region=config.region, base=config.trainer_base
        )
        self.workflow = RunWorkflow(
            self,
            "RunWorkflow",
            config=config,
            defaults=defaults,
            table=self.data.table,
            bucket=self.data.bucket,
            trainer_image=self.trainer_image,
        )
        self._grant_api_run_control()
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            rest_api=self.api.rest_api,
            access_log_group=self.api.access_log_group,
            functions={
                "Api": self.api.api_function,
                "Authorizer": self.api.authorizer_function,
                "DatasetValidator": self.ingest.validator,
                **{f"Run{state}": function for state, function in self.workflow.functions.items()},
                "RunExecutionEnded": self.workflow.execution_ended,
            },
            dead_letter_queues={
                "DatasetValidator": self.ingest.dead_letter_queue,
                "RunExecutionEnded": self.workflow.execution_ended_dead_letters,
            },
            state_machines={"RunWorkflow": self.workflow.state_machine},
        )

        # What `tt admin` (DescribeStacks: TableName, BucketName) and operators look up.
        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL; the API lives under /api/v1")
        CfnOutput(self, OUTPUT_TABLE_NAME, value=self.data.table.table_name)
        CfnOutput(self, OUTPUT_BUCKET_NAME, value=self.data.bucket.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(self, "TrainingImageUri", value=self.trainer_image.image_uri)
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        if self.site is not None:
            CfnOutput(
                self,
                "DashboardUrl",
                value=self.site.url,
                description="The dashboard (sign in with an API key)",
            )

    def _dashboard_site(self, config: StageConfig, content_dir: Path = WEB_DIR) -> DashboardSite | None:
        """The deployed dashboard, calling this stack's API, which answers its origin (CORS)."""
        if not config.dashboard_site:
            return None
        if not (content_dir / "index.html").is_file():
            Annotations.of(self).add_warning_v2(
                "tt:dashboard-missing", f"{content_dir}/index.html is missing: the dashboard is not deployed."
            )
            return None
        site = DashboardSite(
            self,
            "Dashboard",
            content_dir=content_dir,
            api_origin=self.api.url,
            # A presigned URL names the bucket's global or regional host, as the SDK's region decides.
            storage_origins=[
                f"https://{self.data.bucket.bucket_domain_name}",
                f"https://{self.data.bucket.bucket_regional_domain_name}",
            ],
            api_base=f"{self.api.url}/{API_STAGE_NAME}/{API_VERSION_PATH}",
            access_logs_bucket=self.data.access_logs_bucket,
            removal_policy=config.removal_policy,
        )
        self.api.allow_origin(site.origin)
        return site

    def _grant_api_access(self) -> None:
        table, bucket = self.data.table, self.data.bucket
        api_function, authorizer_function = self.api.api_function, self.api.authorizer_function
        table.grant_read_write_data(api_function)
        # Objects live only under accounts/<account_id>/: the API (and its presigned URLs, signed
        # with its role) can reach nothing else in the bucket.
        bucket.grant_read_write(api_function, ACCOUNT_OBJECTS)
        # Start and estimate refuse a base model without staged weights (409 base_model_unavailable): the
        # API may read the manifests of staged copies, nothing else under base-models/. (With the List
        # grant above, a missing manifest answers 404, not 403.)
        bucket.grant_read(api_function, BASE_MODEL_MANIFESTS)
        # The authorizer looks keys up through GSI1 and records last_used_at: the table only.
        table.grant_read_write_data(authorizer_function)

        index_reason = (
            "DynamoDB grants cover the table's indexes (<table>/index/*): GSI1 is queried to resolve "
            "an API key hash to its account. Every item is still scoped by its ACCOUNT# key."
        )
        api_role, authorizer_role = api_function.role, authorizer_function.role
        assert api_role is not None and authorizer_role is not None  # make_function always sets one
        for role in (api_role, authorizer_role):
            nag.acknowledge(role, f"AwsSolutions-IAM5[{nag.arn_finding(table, '/index/*')}]", index_reason)
        objects_reason = (
            "S3 access is limited to the accounts/ prefix where every object lives; the wildcard "
            "is the object key under it (accounts/<account_id>/...), chosen by the server."
        )
        nag.acknowledge(
            api_role, f"AwsSolutions-IAM5[{nag.arn_finding(bucket, '/' + ACCOUNT_OBJECTS)}]", objects_reason
        )
        nag.acknowledge(
            api_role,
            f"AwsSolutions-IAM5[{nag.arn_finding(bucket, '/' + BASE_MODEL_MANIFESTS)}]",
            "Read-only, and only the manifest file of each staged base model (base-models/<model id>/"
            "base_model.json): the wildcard is the model id, which the run-start preflight checks.",
        )
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
            nag.acknowledge(
                api_role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "CDK's bucket read/write grant uses these action families (get/list for reads, "
                "delete and abort-multipart for DELETE /datasets and abandoned uploads), on the "
                "datasets bucket and its accounts/ prefix only.",
            )

    def _grant_api_run_control(self) -> None:
        """The API starts a run's execution and cancels it: stop the execution, stop its training job."""
        api_function, state_machine = self.api.api_function, self.workflow.state_machine
        # Not in service_environment: the task functions must not name the machine that names them.
        api_function.add_environment(ENV_STATE_MACHINE_ARN, state_machine.state_machine_arn)
        self.workflow.grant_run_control(api_function)

    def _acknowledge_notification_handler(self) -> None:
        """CDK's own singleton function that writes the bucket's notification configuration.

        Its s3:PutBucketNotification statement names the datasets bucket (no IAM5 finding); only the
        managed logging policy of its role needs an acknowledgment.
        """
        handler = self.node.try_find_child(NOTIFICATIONS_HANDLER_ID)
        assert handler is not None, "the bucket notification adds CDK's notifications handler"
        nag.acknowledge(
            handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's BucketNotificationsHandler (a deployment-time custom resource) is defined by the "
            "CDK with this managed logging policy; it runs only when the stack is deployed.",
        )
