"""The emulated storage answers CORS for the dashboard's origin alone, and only for presigned requests: the
page uploads datasets straight to presigned URLs, while every other origin and request stays refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tt_local.signatures import Credentials
from tt_local.snapshot import journaled_moto_server

BUCKET = "tt-cors-bucket"
CREDENTIALS = Credentials.fresh()
DASHBOARD = "http://127.0.0.1:8787"
PUT_HEADERS = {
    "Content-Type": "application/jsonl",
    "If-None-Match": "*",
    "x-amz-tagging": "tt-upload=pending",
}
PREFLIGHT = {
    "Access-Control-Request-Method": "PUT",
    "Access-Control-Request-Headers": "content-type,if-none-match,x-amz-tagging",
}


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    from moto.moto_api._internal.models import moto_api_backend

    server, _ = journaled_moto_server(credentials=CREDENTIALS, cors_origin=lambda: DASHBOARD)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        moto_api_backend.reset()
        server.stop()


def presigned_put(s3: Any, key: str) -> str:
    url: str = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": BUCKET, "Key": key, "ContentType": "application/jsonl", "IfNoneMatch": "*",
            "Tagging": "tt-upload=pending",
        },
        ExpiresIn=900,
    )  # fmt: skip
    return url


def test_the_dashboard_may_preflight_and_put_to_a_presigned_url(s3: Any) -> None:
    url = presigned_put(s3, "accounts/a/datasets/d1/data.jsonl")
    preflight = requests.options(url, headers={"Origin": DASHBOARD, **PREFLIGHT}, timeout=10)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert preflight.headers["Access-Control-Allow-Methods"] == "PUT"
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type, if-none-match, x-amz-tagging"
    put = requests.put(url, data=b"{}\n", headers={"Origin": DASHBOARD, **PUT_HEADERS}, timeout=10)
    assert put.status_code == 200, put.text
    assert put.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert s3.get_object(Bucket=BUCKET, Key="accounts/a/datasets/d1/data.jsonl")["Body"].read() == b"{}\n"


@pytest.mark.parametrize(
    "case", ["other_origin", "no_origin", "not_presigned", "other_method", "other_header", "null_origin"]
)
def test_other_preflights_are_refused_without_cors(s3: Any, case: str) -> None:
    url = presigned_put(s3, "accounts/a/datasets/d2/data.jsonl")
    headers = {"Origin": DASHBOARD, **PREFLIGHT}
    if case == "other_origin":
        headers["Origin"] = "http://127.0.0.1:9999"
    elif case == "null_origin":
        headers["Origin"] = "null"
    elif case == "no_origin":
        del headers["Origin"]
    elif case == "not_presigned":
        url = url.split("?")[0]
    elif case == "other_method":
        headers["Access-Control-Request-Method"] = "DELETE"
    elif case == "other_header":
        headers["Access-Control-Request-Headers"] = "content-type,x-amz-copy-source"
    answer = requests.options(url, headers=headers, timeout=10)
    assert answer.status_code == 403
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_a_signed_answer_carries_cors_only_for_the_dashboards_presigned_requests(s3: Any) -> None:
    url = presigned_put(s3, "accounts/a/datasets/d3/data.jsonl")
    other = requests.put(url, data=b"{}\n", headers={"Origin": "http://evil.test", **PUT_HEADERS}, timeout=10)
    assert other.status_code == 200  # the signature is the authorization; a browser just cannot read it
    assert "Access-Control-Allow-Origin" not in other.headers
    # The stack's own SDK calls (header-signed) never get CORS, whatever Origin they claim.
    s3.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **_: request.headers.__setitem__("Origin", DASHBOARD)
    )
    listing = s3.list_objects_v2(Bucket=BUCKET)
    assert "access-control-allow-origin" not in listing["ResponseMetadata"]["HTTPHeaders"]
    unsigned = requests.get(f"{url.split('?')[0]}", headers={"Origin": DASHBOARD}, timeout=10)
    assert unsigned.status_code == 403 and "Access-Control-Allow-Origin" not in unsigned.headers
