"""The local stack's emulated AWS answers only requests signed with the stack's credentials, as sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore.config import Config

from tt_local.signatures import Credentials, SignatureRefused, verify
from tt_local.snapshot import journaled_moto_server

BUCKET, TABLE = "tt-signed-bucket", "tt-signed-table"
CREDENTIALS = Credentials.fresh()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.moto_api._internal.models import moto_api_backend

    server, _ = journaled_moto_server(credentials=CREDENTIALS)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        moto_api_backend.reset()  # in process: the HTTP route is refused like any unsigned request
        server.stop()


def client(endpoint: str, service: str, credentials: Credentials = CREDENTIALS) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="accounts/a/datasets/d1/data.jsonl", Body=b'{"input": "a"}\n')
    return s3


def presigned_put(s3: Any, key: str, **params: Any) -> str:
    url: str = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": BUCKET,
            "Key": key,
            "ContentType": "application/jsonl",
            "IfNoneMatch": "*",
            **params,
        },
        ExpiresIn=900,
    )
    return url


PUT_HEADERS = {"Content-Type": "application/jsonl", "If-None-Match": "*"}


def test_the_stacks_own_sdk_calls_and_presigned_urls_work(endpoint: str, s3: Any) -> None:
    dynamodb = client(endpoint, "dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a b/ü"}})
    assert dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a b/ü"}})["Item"]
    assert client(endpoint, "stepfunctions").list_state_machines()["stateMachines"] == []
    key = "accounts/a/datasets/d 2/naïve+data.jsonl"  # characters the path encoding must agree on
    assert (
        requests.put(presigned_put(s3, key), data=b"{}\n", headers=PUT_HEADERS, timeout=10).status_code == 200
    )
    download = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=60)
    assert requests.get(download, timeout=10).content == b"{}\n"
    assert [
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="accounts/a/datasets/d 2/")["Contents"]
    ]


def _retarget(url: str, key: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{BUCKET}/{key}"))


@pytest.mark.parametrize(
    "attack",
    ["forged", "retargeted", "other_method", "other_content_type", "foreign_key", "unsigned", "expired"],
)
def test_requests_not_signed_by_the_stack_are_refused_and_the_data_stays(
    endpoint: str, s3: Any, attack: str
) -> None:
    victim = "accounts/a/datasets/d1/data.jsonl"
    own_url = presigned_put(s3, "accounts/b/datasets/d9/data.jsonl")
    method, headers, url = "PUT", dict(PUT_HEADERS), own_url
    if attack == "forged":
        url = own_url[:-4] + ("0000" if not own_url.endswith("0000") else "1111")
    elif attack == "retargeted":  # another tenant's upload URL moved onto this dataset's key
        url = _retarget(own_url, victim)
    elif attack == "other_method":
        method = "DELETE"
    elif attack == "other_content_type":
        headers["Content-Type"] = "text/plain"
    elif attack == "foreign_key":
        url = presigned_put(client(endpoint, "s3", Credentials.fresh()), victim)
    elif attack == "unsigned":
        url = f"{endpoint}/{BUCKET}/{victim}"
    elif attack == "expired":
        signed_at = datetime.now(UTC) - timedelta(hours=1)
        with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at.replace(tzinfo=None)):
            url = _retarget(presigned_put(s3, victim), victim)
    answer = requests.request(method, url, data=b'{"input": "injected"}\n', headers=headers, timeout=10)
    assert answer.status_code == 403, answer.text
    assert "<Error><Code>" in answer.text
    assert s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read() == b'{"input": "a"}\n'


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", f"/{BUCKET}/accounts/a/datasets/d1/data.jsonl", {}),  # read an object
        ("GET", f"/{BUCKET}?list-type=2", {}),  # list the bucket
        ("GET", "/", {}),  # list the buckets
        (
            "POST",
            "/",
            {"X-Amz-Target": "DynamoDB_20120810.Scan", "Content-Type": "application/x-amz-json-1.0"},
        ),
        ("POST", "/moto-api/reset", {}),  # wipe every emulated service
        (
            "OPTIONS",
            f"/{BUCKET}/x",
            {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        ),
    ],
)
def test_unsigned_requests_are_refused_without_cors_headers(
    endpoint: str, s3: Any, method: str, path: str, headers: dict[str, str]
) -> None:
    body = b'{"TableName": "%s"}' % TABLE.encode() if "X-Amz-Target" in headers else None
    answer = requests.request(
        method, endpoint + path, headers={"Origin": "http://evil.example", **headers}, data=body, timeout=10
    )
    assert answer.status_code == 403, answer.text
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
    assert s3.get_object(Bucket=BUCKET, Key="accounts/a/datasets/d1/data.jsonl")["Body"].read()


def test_signed_answers_carry_no_cors_headers(endpoint: str, s3: Any) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "accounts/a/datasets/d1/data.jsonl"}, ExpiresIn=60
    )
    answer = requests.get(url, headers={"Origin": "http://evil.example"}, timeout=10)
    assert answer.status_code == 200
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def _signed_put(body: bytes) -> tuple[str, dict[str, str]]:
    """A header-signed S3 PUT of `body`: its path and headers."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest("PUT", f"http://127.0.0.1:1/{BUCKET}/k", data=body, headers={"Content-Type": "x/y"})
    S3SigV4Auth(BotoCredentials(CREDENTIALS.access_key, CREDENTIALS.secret_key), "s3", "us-east-1").add_auth(
        request
    )
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:1"
    return f"/{BUCKET}/k", headers


def test_a_body_that_differs_from_its_signed_hash_is_refused() -> None:
    path, headers = _signed_put(b"signed")
    now = datetime.now(UTC)
    verify(CREDENTIALS, "PUT", path, headers, lambda: b"signed", now)  # as signed: accepted
    with pytest.raises(SignatureRefused, match="body does not match"):
        verify(CREDENTIALS, "PUT", path, headers, lambda: b"injected", now)


def test_a_header_signature_is_only_good_within_the_clock_skew() -> None:
    path, headers = _signed_put(b"x")
    signed_at = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    verify(CREDENTIALS, "PUT", path, headers, lambda: b"x", signed_at + timedelta(minutes=14))
    for now in (signed_at + timedelta(minutes=16), signed_at - timedelta(minutes=16)):
        with pytest.raises(SignatureRefused):
            verify(CREDENTIALS, "PUT", path, headers, lambda: b"x", now)
