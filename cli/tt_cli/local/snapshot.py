"""Saves and restores the local stack's tables and objects under the data dir, so state survives restarts."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any


def _encode_binary(value: Any) -> Any:
    """DynamoDB JSON with binary (B/BS) values as base64 text, so it can be written as JSON."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _encode_binary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode_binary(v) for v in value]
    return value


def _decode_binary(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v)
            if k == "B"
            else [base64.b64decode(x) for x in v]
            if k == "BS"
            else _decode_binary(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_decode_binary(v) for v in value]
    return value


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Snapshot:
    """Tables as DynamoDB JSON files; objects as files plus an index of their ETags (only changes written)."""

    def __init__(self, session: Any, data_dir: Path, tables: list[str], buckets: list[str]) -> None:
        self._dynamodb = session.client("dynamodb")
        self._s3 = session.client("s3")
        self._root = data_dir / "state"
        self._tables = tables
        self._buckets = buckets

    def save(self) -> None:
        for table in self._tables:
            items: list[dict[str, Any]] = []
            for page in self._dynamodb.get_paginator("scan").paginate(TableName=table):
                items.extend(page.get("Items", []))
            _write_atomic(self._root / "tables" / f"{table}.json", json.dumps(_encode_binary(items)).encode())
        for bucket in self._buckets:
            self._save_bucket(bucket)

    def _save_bucket(self, bucket: str) -> None:
        index_path = self._root / "objects" / f"{bucket}.index.json"
        previous: dict[str, str] = json.loads(index_path.read_text()) if index_path.exists() else {}
        current: dict[str, str] = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                current[entry["Key"]] = entry["ETag"]
        folder = self._root / "objects" / bucket
        for key, etag in current.items():
            if previous.get(key) != etag or not (folder / key).exists():
                body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                _write_atomic(folder / key, body)
        for key in previous.keys() - current.keys():
            (folder / key).unlink(missing_ok=True)
        _write_atomic(index_path, json.dumps(current).encode())

    def restore(self) -> None:
        for table in self._tables:
            path = self._root / "tables" / f"{table}.json"
            if not path.exists():
                continue
            items = _decode_binary(json.loads(path.read_text()))
            for start in range(0, len(items), 25):
                batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
                request = {table: batch}
                while request:
                    request = (
                        self._dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
                    )
        for bucket in self._buckets:
            index_path = self._root / "objects" / f"{bucket}.index.json"
            if not index_path.exists():
                continue
            for key in json.loads(index_path.read_text()):
                path = self._root / "objects" / bucket / key
                if path.exists():
                    self._s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
