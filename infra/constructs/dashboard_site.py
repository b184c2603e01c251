"""DashboardSite: web/ on a private S3 bucket behind CloudFront (OAC, TLS, security headers), told the API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct, IConstruct

from infra import nag

# What the page fetches first (web/app/api.js): {"apiBase": "<absolute URL of /api/v1>"}.
CONFIG_FILE = "config.json"
INDEX = "index.html"
# Never shipped: the browser tests and anything a package manager left behind.
EXCLUDED = ("tests", "tests/*", "node_modules", "node_modules/*", ".*", "*.md")
# A year, as browsers' preload lists expect; the site is HTTPS-only (CloudFront redirects HTTP).
HSTS_MAX_AGE = Duration.days(365)


def content_security_policy(api_origin: str, storage_origins: Sequence[str] = ()) -> str:
    """No inline script or style, nothing from other hosts but the API and the data bucket (dataset uploads
    go straight to its presigned URLs); never framed."""
    connect = " ".join(["'self'", api_origin, *storage_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
    )


class DashboardSite(Construct):
    """The deployed dashboard: `https://<distribution>.cloudfront.net/`, calling the API at `api_base`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        content_dir: Path,
        api_origin: str,
        storage_origins: Sequence[str],
        api_base: str,
        access_logs_bucket: s3.IBucket,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        # Private: no public access, no website hosting; CloudFront reads it through origin access control.
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix="dashboard/",
            removal_policy=removal_policy,
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Tuned Tensor dashboard: CSP without inline script, HSTS, no framing, no sniffing",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(api_origin, storage_origins),
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                # The page's URLs name runs and specs: no other site learns them.
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
            ),
        )
        # A client-side route (/runs/<id>) has no object: S3 answers 403 through OAC (404 where listing is
        # allowed), and the page's router takes it from index.html.
        spa_fallback = [
            cloudfront.ErrorResponse(
                http_status=status,
                response_http_status=200,
                response_page_path=f"/{INDEX}",
                ttl=Duration.seconds(0),
            )
            for status in (403, 404)
        ]
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Tuned Tensor dashboard",
            default_root_object=INDEX,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                compress=True,
            ),
            error_responses=spa_fallback,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        # The files, then config.json naming the API; each deploy invalidates the cache, so a new page and
        # a new API URL are served at once.
        self.deployment = s3_deployment.BucketDeployment(
            self,
            "Content",
            destination_bucket=self.bucket,
            sources=[
                s3_deployment.Source.asset(str(content_dir), exclude=list(EXCLUDED)),
                s3_deployment.Source.json_data(CONFIG_FILE, {"apiBase": api_base}),
            ],
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
        )
        self._acknowledge_findings()

    @property
    def origin(self) -> str:
        """`https://<distribution>.cloudfront.net`: the origin the API allows (CORS)."""
        return f"https://{self.distribution.distribution_domain_name}"

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    def _acknowledge_findings(self) -> None:
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "No geo restriction: the dashboard is a static page for the deployment's users wherever they "
            "are; it holds no data (every call goes to the API with the user's key).",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "No WAF web ACL: the site serves static files only (GET/HEAD from a private bucket); the API it "
            "calls has its own throttling and keys. A web ACL's fixed monthly cost is an operator's choice.",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "No CloudFront standard logs: they need an ACL-enabled bucket (this stack keeps every bucket "
            "bucket-owner-enforced) and would record only static-file fetches; the API logs its calls.",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The default *.cloudfront.net certificate: CloudFront fixes its minimum TLS version, which only "
            "a custom domain with its own certificate can raise. HTTP is redirected to HTTPS either way.",
        )
        # BucketDeployment's own deployment-time function (CDK's, singleton per stack).
        stack = Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                nag.acknowledge(
                    child,
                    "AwsSolutions-L1",
                    "CDK's BucketDeployment handler: CDK picks its runtime and moves it with CDK releases; "
                    "it runs only while the stack deploys.",
                )
                nag.acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's BucketDeployment handler is defined by CDK with this managed logging policy; it "
                    "runs only while the stack deploys.",
                )
                self._acknowledge_deployment_grants(child)

    def _acknowledge_deployment_grants(self, handler: IConstruct) -> None:
        """The wildcards of CDK's BucketDeployment grants, each with what it is for."""
        reasons = {
            nag.arn_finding(self.bucket, "/*"): (
                "The deployment replaces the dashboard bucket's objects whole: any key in that bucket."
            ),
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*": (
                "The deployment reads the site's zipped files from the CDK bootstrap bucket's assets."
            ),
            "Resource::*": "cloudfront:CreateInvalidation after a deploy, so new files are served at once.",
            **{
                f"Action::{action}": (
                    "CDK's bucket read/write grant families (list and read the assets, replace the site's "
                    "files), on the bootstrap assets and the dashboard bucket only."
                )
                for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*")
            },
        }
        for finding, reason in reasons.items():
            nag.acknowledge(
                handler,
                f"AwsSolutions-IAM5[{finding}]",
                f"CDK's BucketDeployment (deploy time only): {reason}",
            )
