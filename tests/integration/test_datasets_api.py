"""Datasets through the in-process gateway and moto: the upload flow, validation events, isolation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

GOOD = b'{"input": "How do I reset my password?", "output": "Go to Settings > Security."}\n' * 3


def request_upload(client: Any, data: bytes, **overrides: Any) -> dict[str, Any]:
    body = {"name": "faq", "filename": "faq.jsonl", "size": len(data), "contentType": "application/jsonl"}
    response = client.post("/datasets/upload-url", {**body, **overrides})
    assert response.status == 201, response.json()
    return response.json()["data"]


def put(upload: dict[str, Any], data: bytes) -> requests.Response:
    return requests.request(
        upload["method"], upload["upload_url"], data=data, headers=upload["headers"], timeout=30
    )


def upload(client: Any, aws: dict[str, Any], data: bytes, **overrides: Any) -> dict[str, Any]:
    issued = request_upload(client, data, **overrides)
    assert put(issued, data).status_code == 200
    aws["lambdas"].wait()
    finalized = client.post("/datasets/finalize", {"path": issued["path"], "name": "faq", "description": "d"})
    assert finalized.status == 200, finalized.json()
    return finalized.json()["data"]


def test_the_three_step_flow_validates(client: Any, aws: dict[str, Any]) -> None:
    issued = request_upload(client, GOOD)
    assert issued["method"] == "PUT"
    assert issued["path"].startswith(f"s3://{aws['bucket']}/accounts/")
    assert issued["headers"]["Content-Type"] == "application/jsonl"
    assert issued["expires_at"].endswith("Z")
    pending = client.get(f"/datasets/{issued['dataset_id']}").json()["data"]
    assert pending["status"] == "pending_upload" and pending["row_count"] is None
    dataset = upload(client, aws, GOOD)
    assert dataset["status"] == "validated"
    assert dataset["row_count"] == 3 and dataset["duplicate_rows"] == 2
    assert dataset["file_size_bytes"] == len(GOOD)
    assert dataset["estimated_tokens"] > 0
    assert dataset["validation_errors"] is None and dataset["validation_error_count"] == 0
    assert dataset["source"] == "upload" and dataset["format"] == "jsonl" and dataset["description"] == "d"


def test_an_invalid_file_reports_line_and_code(client: Any, aws: dict[str, Any]) -> None:
    data = GOOD + b'{"input": "x"}\n'
    dataset = upload(client, aws, data)
    assert dataset["status"] == "invalid"
    assert dataset["validation_error_count"] == 1
    assert dataset["validation_errors"][0] | {"message": ""} == {
        "line": 4, "field": "output", "code": "missing_field", "message": ""
    }  # fmt: skip


def test_a_file_larger_than_declared_is_a_size_mismatch(client: Any, aws: dict[str, Any]) -> None:
    issued = request_upload(client, GOOD, size=10)
    assert put(issued, GOOD).status_code == 200
    aws["lambdas"].wait()
    dataset = client.get(f"/datasets/{issued['dataset_id']}").json()["data"]
    assert dataset["status"] == "invalid"
    assert dataset["validation_errors"][0]["code"] == "size_mismatch"


def test_the_server_reports_a_size_rule_as_the_cli_check_does(
    client: Any, aws: dict[str, Any], tmp_path: Path
) -> None:
    from tt_core.datasets.validator import validate_file

    issued = request_upload(client, GOOD, size=10)
    assert put(issued, GOOD).status_code == 200
    aws["lambdas"].wait()
    dataset = client.get(f"/datasets/{issued['dataset_id']}").json()["data"]
    path = tmp_path / "data.jsonl"
    path.write_bytes(GOOD)
    checked = validate_file(path, declared_size=10)
    assert dataset["validation_errors"] == [issue.model_dump() for issue in checked.errors]


def test_the_upload_url_is_write_once(client: Any, aws: dict[str, Any]) -> None:
    issued = request_upload(client, GOOD)
    assert put(issued, GOOD).status_code == 200
    assert put(issued, b'{"input": "evil", "output": "x"}\n' + GOOD[34:]).status_code == 412
    aws["lambdas"].wait()
    assert client.get(f"/datasets/{issued['dataset_id']}").json()["data"]["status"] == "validated"


def test_duplicate_and_early_events_give_one_transition(client: Any, aws: dict[str, Any]) -> None:
    from functions.dataset_validation.handler import lambda_handler
    from tt_local.gateway import LambdaContext

    issued = request_upload(client, GOOD)
    key = issued["path"].split("/", 3)[3]
    event = {
        "Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key.replace("/", "%2F")}}}]
    }
    # The event arrives before the object can be read (and before finalize): nothing breaks.
    assert put(issued, GOOD).status_code == 200
    aws["lambdas"].wait()
    first = client.get(f"/datasets/{issued['dataset_id']}").json()["data"]
    for _ in range(3):
        assert lambda_handler(event, LambdaContext("validator")) == {"validated": 0}
    finalized = client.post("/datasets/finalize", {"path": issued["path"], "name": "renamed"}).json()["data"]
    assert finalized["status"] == first["status"] == "validated"
    assert {k: v for k, v in finalized.items() if k not in ("name", "updated_at", "description")} == {
        k: v for k, v in first.items() if k not in ("name", "updated_at", "description")
    }
    assert finalized["name"] == "renamed"


def test_size_rules_of_the_upload_request(client: Any) -> None:
    too_big = client.post("/datasets/upload-url", {"name": "n", "filename": "f", "size": 104_857_601})
    assert too_big.status == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    for size, field in ((0, "size"), ("ten", "size")):
        response = client.post("/datasets/upload-url", {"name": "n", "filename": "f", "size": size})
        assert response.status == 400
        assert response.json()["error"]["details"][0]["field"] == field
    missing = client.post("/datasets/upload-url", {"filename": "f", "size": 1})
    assert missing.json()["error"]["details"][0]["field"] == "name"
    assert (
        client.post("/datasets/upload-url", {"name": "n", "filename": "f", "size": 1, "format": "csv"}).status
        == 400
    )


def test_list_get_and_delete(client: Any, aws: dict[str, Any]) -> None:
    import boto3

    dataset = upload(client, aws, GOOD)
    listed = client.get("/datasets").json()
    assert listed["meta"]["total"] == 1 and listed["data"][0]["id"] == dataset["id"]
    assert client.delete(f"/datasets/{dataset['id']}").status == 204
    assert client.get(f"/datasets/{dataset['id']}").status == 404
    key = dataset["storage_path"].split("/", 3)[3]
    objects = boto3.client("s3").list_objects_v2(Bucket=aws["bucket"], Prefix=key).get("KeyCount")
    assert objects == 0


def test_other_accounts_get_404(client: Any, other_client: Any, aws: dict[str, Any]) -> None:
    dataset = upload(client, aws, GOOD)
    assert other_client.get(f"/datasets/{dataset['id']}").status == 404
    assert other_client.delete(f"/datasets/{dataset['id']}").status == 404
    finalize = other_client.post("/datasets/finalize", {"path": dataset["storage_path"], "name": "mine"})
    assert finalize.status == 404
    assert other_client.get("/datasets").json()["meta"]["total"] == 0
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["name"] == "faq"


@pytest.mark.parametrize("path", ["s3://elsewhere/accounts/x/datasets/y/data.jsonl", "not a path"])
def test_finalize_of_a_path_never_issued_is_404(client: Any, path: str) -> None:
    assert client.post("/datasets/finalize", {"path": path, "name": "n"}).status == 404


def test_objects_that_are_not_issued_uploads_are_ignored(aws: dict[str, Any]) -> None:
    from functions.dataset_validation.handler import lambda_handler
    from tt_local.gateway import LambdaContext

    keys = ["accounts/notes.jsonl", "accounts/00000000-0000-4000-8000-000000000001/datasets/x/data.jsonl"]
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": k}}} for k in keys]}
    assert lambda_handler(event, LambdaContext("validator")) == {"validated": 0}
    assert lambda_handler({"Event": "s3:TestEvent"}, LambdaContext("validator")) == {"validated": 0}


CORPUS = [
    "truncated JSON",
    "a JSON array line",
    "input a number",
    "output null",
    "input missing",
    "an extra key",
    "empty input",
    "invalid UTF-8 byte",
    "raw NUL in input",
    "escaped BEL",
    "raw C1",
    "a 2 MiB line",
    "errors on several lines",
]


@pytest.mark.parametrize("case", CORPUS)
def test_bad_files_end_invalid_with_line_and_code(client: Any, aws: dict[str, Any], case: str) -> None:
    from tests.unit.test_dataset_validator import BAD

    data, expected = BAD[case]
    dataset = upload(client, aws, data)
    assert dataset["status"] == "invalid"
    found = [(e["line"], e["field"], e["code"]) for e in dataset["validation_errors"]]
    assert found == expected
    assert dataset["validation_error_count"] == len(expected)
    assert dataset["row_count"] is not None and dataset["estimated_tokens"] is None


@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n"], ids=["empty file", "only blank lines"])
def test_files_without_rows_are_empty_file(client: Any, aws: dict[str, Any], data: bytes) -> None:
    issued = request_upload(client, data or b"x", size=max(1, len(data)))
    assert put(issued, data).status_code == 200
    aws["lambdas"].wait()
    dataset = client.get(f"/datasets/{issued['dataset_id']}").json()["data"]
    assert dataset["status"] == "invalid"
    codes = [e["code"] for e in dataset["validation_errors"]]
    assert codes == (["size_mismatch"] if not data else ["empty_file"])


def test_a_file_over_100_mb_despite_a_smaller_declared_size(client: Any, aws: dict[str, Any]) -> None:
    from tt_core.models.datasets import MAX_DATASET_BYTES

    data = GOOD * (MAX_DATASET_BYTES // len(GOOD) + 1)
    issued = request_upload(client, GOOD, size=1000)
    assert put(issued, data).status_code == 200
    del data
    aws["lambdas"].wait()
    dataset = client.get(f"/datasets/{issued['dataset_id']}").json()["data"]
    assert dataset["status"] == "invalid"
    assert [(e["line"], e["field"], e["code"]) for e in dataset["validation_errors"]] == [
        (None, None, "file_too_large")
    ]
    assert dataset["file_size_bytes"] > MAX_DATASET_BYTES


def test_a_failed_validation_is_handed_back_for_the_retry(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_core import wiring
    from tt_core.services.datasets import DatasetService

    issued = request_upload(client, GOOD)
    key = issued["path"].split("/", 3)[3]
    service = wiring.dataset_service()

    def s3_read_fails(*_: Any) -> Any:
        raise ConnectionError("S3 read timed out")

    with monkeypatch.context() as patch:
        patch.setattr(DatasetService, "_validate", s3_read_fails)
        assert put(issued, GOOD).status_code == 200
        aws["lambdas"].wait()
        with pytest.raises(ConnectionError):
            service.validate_object(key)  # what Lambda's retry of the failed event does
    assert client.get(f"/datasets/{issued['dataset_id']}").json()["data"]["status"] == "pending_upload"
    assert service.validate_object(key) is not None  # the next retry succeeds
    assert client.get(f"/datasets/{issued['dataset_id']}").json()["data"]["status"] == "validated"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": "n"}, "path"), ({"path": "s3://b/k"}, "name"), ({"path": "s3://b/k", "name": ""}, "name"),
     ({"path": "s3://b/k", "name": "n", "colour": "red"}, "colour")],
)  # fmt: skip
def test_finalize_body_rules(client: Any, body: dict[str, Any], field: str) -> None:
    response = client.post("/datasets/finalize", body)
    assert response.status == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"][0]["field"] == field


def test_only_uploads_invoke_the_validator(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack installs the template's notification in moto, which applies its filter as S3 does:
    a run's .jsonl files (the training log is synced at every step) never reach the validator."""
    from urllib.parse import unquote_plus

    import boto3

    from tt_core.adapters.sagemaker import TRAINING_LOG_OBJECT
    from tt_core.runs.artifacts import checkpoint_prefix, input_prefix
    from tt_core.services.datasets import object_key

    account, run = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    invoked: list[str] = []
    monkeypatch.setattr(
        aws["lambdas"],
        "invoke_async",
        lambda name, event: invoked.extend(unquote_plus(r["s3"]["object"]["key"]) for r in event["Records"]),
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    upload_key = object_key(account, run)
    for key in (
        input_prefix(account, run, "train") + "train.jsonl",
        input_prefix(account, run, "eval") + "eval.jsonl",
        f"{checkpoint_prefix(account, run)}/{TRAINING_LOG_OBJECT}",
        upload_key,
    ):
        s3.put_object(Bucket=aws["bucket"], Key=key, Body=GOOD)
    assert invoked == [upload_key]
