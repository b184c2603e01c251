"""The deployed dashboard: private bucket behind CloudFront with OAC, security headers, config.json, and the
API answering the site's origin (CORS) on preflights, its own answers and API Gateway's errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from infra.constructs.dashboard_site import DashboardSite, content_security_policy
from infra.constructs.public_api import CORS_REQUEST_HEADERS
from tests.infra.conftest import Synth
from tt_core.schema import ENV_CORS_ALLOWED_ORIGINS


def _site(synth: Synth) -> DashboardSite:
    assert synth.stack.site is not None
    return synth.stack.site


def _distribution(synth: Synth) -> tuple[str, dict[str, Any]]:
    logical_id, resource = synth.only("AWS::CloudFront::Distribution")
    return logical_id, resource["Properties"]["DistributionConfig"]


def _site_origin(synth: Synth) -> dict[str, Any]:
    distribution, _ = _distribution(synth)
    return {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]}


def _quoted_origin(synth: Synth) -> dict[str, Any]:
    """The origin as an API Gateway header value: 'https://<distribution>'."""
    distribution, _ = _distribution(synth)
    return {"Fn::Join": ["", ["'https://", {"Fn::GetAtt": [distribution, "DomainName"]}, "'"]]}


def test_the_bucket_is_private_tls_only_and_no_website(site: Synth) -> None:
    bucket_id = site.logical_id(_site(site).bucket)
    props = site.json["Resources"][bucket_id]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in props
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    policy = next(
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in site.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )
    deny = next(s for s in policy if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Only CloudFront, and only this distribution (OAC signs with the service principal + SourceArn).
    [allow] = [s for s in policy if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    distribution, _ = _distribution(site)
    assert json.dumps(distribution) in json.dumps(allow["Condition"])


def test_cloudfront_reads_it_through_origin_access_control_over_https(site: Synth) -> None:
    _, oac = site.only("AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert not site.resources("AWS::CloudFront::CloudFrontOriginAccessIdentity")  # OAC, not OAI
    _, config = _distribution(site)
    [origin] = config["Origins"]
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    # Client-side routes (/runs/<id>) load the page.
    assert sorted(
        (r["ErrorCode"], r["ResponseCode"], r["ResponsePagePath"]) for r in config["CustomErrorResponses"]
    ) == [(403, 200, "/index.html"), (404, 200, "/index.html")]


def test_security_headers(site: Synth) -> None:
    policy_id, policy = site.only("AWS::CloudFront::ResponseHeadersPolicy")
    _, config = _distribution(site)
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    bucket = site.stack.data.bucket
    storage = [f"https://{bucket.bucket_domain_name}", f"https://{bucket.bucket_regional_domain_name}"]
    csp = site.stack.resolve(content_security_policy(site.stack.api.url, storage))
    assert headers["ContentSecurityPolicy"] == {"ContentSecurityPolicy": csp, "Override": True}
    parts = "".join(p if isinstance(p, str) else "<ref>" for p in csp["Fn::Join"][1])
    assert parts == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' https://<ref>.execute-api.<ref>.<ref> https://<ref> https://<ref>; "
        "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
    )
    data_bucket = site.stack.resolve(bucket.bucket_domain_name)
    assert data_bucket in csp["Fn::Join"][1]  # dataset uploads PUT to the data bucket's presigned URLs
    assert "unsafe-inline" not in parts
    rest_api, _ = site.only("AWS::ApiGateway::RestApi")
    assert {"Ref": rest_api} in csp["Fn::Join"][1]
    assert headers["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 31536000, "IncludeSubdomains": True, "Override": True,
    }  # fmt: skip
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}


def test_the_content_and_config_json_are_deployed(site: Synth) -> None:
    _, deployment = site.only("Custom::CDKBucketDeployment")
    props = deployment["Properties"]
    assert props["DestinationBucketName"] == {"Ref": site.logical_id(_site(site).bucket)}
    assert props["DistributionPaths"] == ["/*"]  # a deploy serves the new files at once
    assert len(props["SourceObjectKeys"]) == 2  # web/ and config.json
    # config.json = {"apiBase": "https://<api>.execute-api.<region>.<suffix>/api/v1"}: where the page calls
    # /behavior-specs etc., the API stage `api` and its /v1 resources (PRODUCT.md §2.1).
    rest_api, _ = site.only("AWS::ApiGateway::RestApi")
    [config_marker] = [m for m in props["SourceMarkers"] if m]
    [api_base] = config_marker.values()
    assert api_base == {
        "Fn::Join": [
            "",
            ['"https://', {"Ref": rest_api}, ".execute-api.", {"Ref": "AWS::Region"}, ".",
             {"Ref": "AWS::URLSuffix"}, '/api/v1"'],
        ]
    }  # fmt: skip


def test_the_api_answers_the_sites_origin(site: Synth) -> None:
    origin = _site_origin(site)
    api = site.functions()[site.logical_id(site.stack.api.api_function)]
    assert api["Environment"]["Variables"][ENV_CORS_ALLOWED_ORIGINS] == origin
    # Preflights: an OPTIONS method without the authorizer on the proxy and on each public path.
    options = [
        m["Properties"] for m in site.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]  # fmt: skip
    assert len(options) == len(site.stack.api.resources) == 4
    for method in options:
        assert method["AuthorizationType"] == "NONE"
        response = method["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        allowed_origin = response["method.response.header.Access-Control-Allow-Origin"]
        assert allowed_origin == _quoted_origin(site)
        allowed_headers = response["method.response.header.Access-Control-Allow-Headers"]
        assert allowed_headers == "'" + ",".join(CORS_REQUEST_HEADERS) + "'"
    # API Gateway's own errors (401 from the authorizer, 429, 5xx) carry it too.
    responses = site.resources("AWS::ApiGateway::GatewayResponse").values()
    assert responses
    for response in responses:
        parameters = response["Properties"]["ResponseParameters"]
        assert site.stack.resolve(parameters["gatewayresponse.header.Access-Control-Allow-Origin"]) in (
            _quoted_origin(site),
            {"Fn::Join": ["", ["'", *origin["Fn::Join"][1], "'"]]},
        )
        assert parameters["gatewayresponse.header.Vary"] == "'Origin'"


def test_the_dashboard_url_is_an_output(site: Synth) -> None:
    outputs = site.json["Outputs"]
    assert outputs["DashboardUrl"]["Value"] == {"Fn::Join": ["", [*_site_origin(site)["Fn::Join"][1], "/"]]}


def test_the_construct_synthesizes_from_any_folder(tmp_path: Path) -> None:
    """The construct takes its content folder: it synthesizes whatever web/ holds today."""
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("")
    stack = Stack(App(), "SiteTest")
    DashboardSite(
        stack,
        "Site",
        content_dir=tmp_path,
        api_origin="https://api.example.com",
        storage_origins=["https://data.s3.amazonaws.com"],
        api_base="https://api.example.com/api/v1",
        access_logs_bucket=s3.Bucket(stack, "Logs"),
        removal_policy=RemovalPolicy.DESTROY,
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "Custom::CDKBucketDeployment", {"DistributionPaths": ["/*"], "SourceMarkers": Match.any_value()}
    )
    template.resource_count_is("AWS::CloudFront::Distribution", 1)


def test_without_web_index_the_stack_still_synthesizes(site: Synth, tmp_path: Path) -> None:
    from infra.config import StageConfig

    assert site.stack._dashboard_site(StageConfig(dashboard_site=False)) is None
    # No index.html there: no site (and a synth warning), not a failed synth.
    assert site.stack._dashboard_site(StageConfig(), content_dir=tmp_path) is None


@pytest.mark.parametrize(
    ("origin", "allowed"), [("https://d1.cloudfront.net", True), ("https://evil.test", False)]
)
def test_the_api_function_answers_cors_for_the_allowed_origin_only(
    gateway: Any, client: Any, monkeypatch: pytest.MonkeyPatch, origin: str, allowed: bool
) -> None:
    """Successes and the function's own errors (here 400 for a body that is not JSON) alike."""
    from tests.api_client import ApiClient
    from tt_core import wiring

    monkeypatch.setenv(ENV_CORS_ALLOWED_ORIGINS, "https://d1.cloudfront.net")
    wiring.reset()
    for response in (
        ApiClient(gateway, None).get("/version", headers={"Origin": origin}),
        client.post("/behavior-specs", raw=b"x" * 10, headers={"Origin": origin}),
    ):
        assert (response.header("Access-Control-Allow-Origin") == origin) is allowed
        if allowed:
            assert "X-Request-Id" in (response.header("Access-Control-Expose-Headers") or "")
