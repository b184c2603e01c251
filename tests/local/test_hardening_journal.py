"""The local stack's journal: each write is on disk before it is answered, and restored after a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tt_local.snapshot import Snapshot, journaled_moto_server

TABLE, BUCKET = "tt-journal-table", "tt-journal-bucket"


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    server, middleware = journaled_moto_server()
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield endpoint, middleware
    finally:
        middleware.snapshot = None
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()


def provision() -> tuple[Any, Any]:
    """A fresh table and bucket (as after a restart: the services start empty)."""
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket=BUCKET)
    return dynamodb, s3


def start(endpoint: str, middleware: Any, data_dir: Path) -> tuple[Any, Any, Snapshot]:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    dynamodb, s3 = provision()
    snapshot = Snapshot(boto3.session.Session(), data_dir, [TABLE], [BUCKET])
    middleware.snapshot = snapshot
    snapshot.restore()
    return dynamodb, s3, snapshot


def key(pk: str, sk: str = "A") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def state(dynamodb: Any, s3: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    items = {
        item["pk"]["S"] + "/" + item["sk"]["S"]: item for item in dynamodb.scan(TableName=TABLE)["Items"]
    }
    objects = {
        entry["Key"]: s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        for entry in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    }
    return items, objects


def every_kind_of_write(dynamodb: Any, s3: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={**key("put"), "n": {"N": "1"}, "blob": {"B": b"\x00\xff"}})
    dynamodb.put_item(TableName=TABLE, Item={**key("gone"), "n": {"N": "1"}})
    dynamodb.update_item(
        TableName=TABLE,
        Key=key("put"),
        UpdateExpression="SET n = n + :one, tags = :tags",
        ExpressionAttributeValues={":one": {"N": "1"}, ":tags": {"SS": ["a", "b"]}},
    )
    dynamodb.delete_item(TableName=TABLE, Key=key("gone"))
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(
            TableName=TABLE,
            Item={**key("put"), "n": {"N": "99"}},
            ConditionExpression="n = :x",
            ExpressionAttributeValues={":x": {"N": "0"}},
        )
    dynamodb.batch_write_item(
        RequestItems={
            TABLE: [{"PutRequest": {"Item": {**key("batch", str(i)), "i": {"N": str(i)}}}} for i in range(25)]
        }
    )
    dynamodb.batch_write_item(RequestItems={TABLE: [{"DeleteRequest": {"Key": key("batch", "0")}}]})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {**key("tx", "1"), "v": {"S": "one"}}}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": key("batch", "1"),
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "updated"}},
                }
            },
            {"Delete": {"TableName": TABLE, "Key": key("batch", "2")}},
        ]
    )
    s3.put_object(Bucket=BUCKET, Key="a/plain.txt", Body=b"v1")
    s3.put_object(Bucket=BUCKET, Key="a/plain.txt", Body=b"v2")  # the newest bytes win
    s3.put_object(Bucket=BUCKET, Key="spaces and+plus/ünïcode.bin", Body=b"odd key")
    s3.copy_object(Bucket=BUCKET, Key="b/copy.txt", CopySource={"Bucket": BUCKET, "Key": "a/plain.txt"})
    s3.put_object_tagging(Bucket=BUCKET, Key="b/copy.txt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    for name in ("c/one", "c/two", "c/three"):
        s3.put_object(Bucket=BUCKET, Key=name, Body=name.encode())
    s3.delete_object(Bucket=BUCKET, Key="c/one")
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "c/two"}]})
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="d/multipart.bin")
    part = s3.upload_part(
        Bucket=BUCKET, Key="d/multipart.bin", PartNumber=1, UploadId=upload["UploadId"], Body=b"m" * 1024
    )
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="d/multipart.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    presigned = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "e/presigned.jsonl"})
    assert requests.put(presigned, data=b'{"a": 1}\n', timeout=10).status_code == 200


def test_every_write_is_restored_after_a_crash(moto_server: tuple[str, Any], tmp_path: Path) -> None:
    endpoint, middleware = moto_server
    dynamodb, s3, _ = start(endpoint, middleware, tmp_path)
    every_kind_of_write(dynamodb, s3)
    before = state(dynamodb, s3)
    assert before[1]["a/plain.txt"] == b"v2" and "c/one" not in before[1] and "gone/A" not in before[0]
    assert len(before[0]) == 1 + 24 - 1 + 1  # put, the batch less two deletes, tx
    # A crash: no save(), the services forget everything; only the data dir remains.
    dynamodb, s3, _ = start(endpoint, middleware, tmp_path)
    assert state(dynamodb, s3) == before
    # The restart folded the journal into the snapshot; a second restart reads the snapshot alone.
    assert (tmp_path / "state" / "journal.jsonl").stat().st_size == 0
    dynamodb, s3, _ = start(endpoint, middleware, tmp_path)
    assert state(dynamodb, s3) == before


def test_a_change_is_in_the_journal_before_the_caller_gets_its_answer(
    moto_server: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, middleware = moto_server
    dynamodb, s3, _ = start(endpoint, middleware, tmp_path)
    journal = tmp_path / "state" / "journal.jsonl"
    dynamodb.put_item(TableName=TABLE, Item={**key("now"), "v": {"S": "x"}})
    [line] = journal.read_text().splitlines()
    assert json.loads(line) == {"table": TABLE, "key": key("now"), "item": {**key("now"), "v": {"S": "x"}}}
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"bytes")
    assert json.loads(journal.read_text().splitlines()[1]) == {
        "bucket": BUCKET,
        "object": "k",
        "present": True,
    }
    dynamodb.get_item(TableName=TABLE, Key=key("now"))  # reads are not journaled
    assert len(journal.read_text().splitlines()) == 2


def test_save_folds_the_journal_and_a_cut_line_is_skipped(
    moto_server: tuple[str, Any], tmp_path: Path
) -> None:
    endpoint, middleware = moto_server
    dynamodb, s3, snapshot = start(endpoint, middleware, tmp_path)
    dynamodb.put_item(TableName=TABLE, Item=key("saved"))
    s3.put_object(Bucket=BUCKET, Key="saved", Body=b"1")
    snapshot.save()
    journal = tmp_path / "state" / "journal.jsonl"
    assert journal.stat().st_size == 0
    dynamodb.put_item(TableName=TABLE, Item=key("journaled"))
    with open(journal, "ab") as handle:
        handle.write(b'{"table": "tt-journal-table", "key": {"pk"')  # a write cut short by the crash
    dynamodb, s3, _ = start(endpoint, middleware, tmp_path)
    items, objects = state(dynamodb, s3)
    assert set(items) == {"saved/A", "journaled/A"} and objects == {"saved": b"1"}


def test_a_data_dir_of_the_earlier_layout_is_read_and_rewritten(
    moto_server: tuple[str, Any], tmp_path: Path
) -> None:
    """Before the journal, objects were saved as objects/<bucket>/<key> with an index of ETags."""
    endpoint, middleware = moto_server
    old = tmp_path / "state"
    (old / "tables").mkdir(parents=True)
    (old / "tables" / f"{TABLE}.json").write_text(json.dumps([{**key("old"), "b": {"B": "AP8="}}]))
    (old / "objects" / BUCKET / "x").mkdir(parents=True)
    (old / "objects" / BUCKET / "x" / "y.txt").write_bytes(b"old bytes")
    (old / "objects" / f"{BUCKET}.index.json").write_text(json.dumps({"x/y.txt": '"etag"'}))
    dynamodb, s3, _ = start(endpoint, middleware, tmp_path)
    items, objects = state(dynamodb, s3)
    assert items["old/A"]["b"] == {"B": b"\x00\xff"} and objects == {"x/y.txt": b"old bytes"}
    assert not (old / "objects" / BUCKET).exists() and not (old / "objects" / f"{BUCKET}.index.json").exists()
    dynamodb, s3, _ = start(endpoint, middleware, tmp_path)
    assert state(dynamodb, s3) == (items, objects)
