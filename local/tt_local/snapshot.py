"""The local stack's durable state: a snapshot of its tables and objects plus a journal of every change since.

Every write that reaches the emulated AWS services passes through `JournalMiddleware`: once the
service has applied it, the affected items are read back and appended to the journal (objects are
written to a file first), and only then does the caller get its answer. So nothing the API has
acknowledged can be lost when the process dies, even by `kill -9`. A restart loads the snapshot,
replays the journal over it and folds both into a fresh snapshot; the journal is also folded in
whenever it grows large, and at a clean stop.

Layout under <data-dir>/state/:
    tables/<table>.json        the table's items (DynamoDB JSON, binary values as base64)
    objects/<bucket>.keys.json the bucket's object keys
    blobs/<bucket>/<sha256>    each object's bytes, written through on every change
    journal.jsonl              one line per change since the snapshot
Earlier releases kept objects as objects/<bucket>/<key> with objects/<bucket>.index.json; such a
data dir is read once and rewritten in this layout.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

from tt_core.observability import logger
from tt_local.provision import ACCOUNT, REGION

if TYPE_CHECKING:
    from tt_local.signatures import Credentials

# The journal is folded into the snapshot once it is this large (it is replayed at every start).
COMPACT_JOURNAL_BYTES = 8 * 1024 * 1024
_DYNAMODB_TARGET = "DynamoDB_20120810."
_DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
# Object sub-resources whose change leaves the object's bytes as they were (tags are not kept).
_METADATA_QUERIES = ("tagging", "acl", "retention", "legal-hold")


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


def _write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Replaces the file whole (never half written), synced to disk before it is renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        for chunk in [data] if isinstance(data, bytes) else data:
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _dynamodb_backend() -> Any:
    """moto's DynamoDB in this process: bulk loads and scans skip HTTP (seconds for thousands of items)."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT][REGION]


def _s3_backend() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT]["aws"]


def _table_items(table: str) -> list[dict[str, Any]]:
    """Every item of the table as DynamoDB JSON, binary as base64 (what a scan answers)."""
    moto_table = _dynamodb_backend().get_table(table)
    # list() copies a dict in one step: writers on other threads cannot change it mid-iteration.
    return [
        _encode_binary(item.to_json()["Attributes"])
        for partition in list(moto_table.items.values())
        for item in (list(partition.values()) if moto_table.range_key_attr else [partition])
    ]


def _blob_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _key_id(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


@dataclass(frozen=True)
class Change:
    """What a write request may have changed: table items by key, and objects by key."""

    items: tuple[tuple[str, dict[str, Any]], ...] = ()
    objects: tuple[tuple[str, str], ...] = ()


class Snapshot:
    """Saves, journals and restores the tables and buckets the local stack emulates."""

    def __init__(self, session: Any, data_dir: Path, tables: list[str], buckets: list[str]) -> None:
        self._dynamodb = session.client("dynamodb")
        self._s3 = session.client("s3")
        self._root = data_dir / "state"
        self._tables = tables
        self._buckets = buckets
        self._key_names = {
            table: [
                part["AttributeName"]
                for part in self._dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            ]
            for table in tables
        }
        self._lock = threading.Lock()
        self._journal: Any = None  # open (append) once restore() has run: changes are recorded from then on

    @property
    def journal_path(self) -> Path:
        return self._root / "journal.jsonl"

    def _table_path(self, table: str) -> Path:
        return self._root / "tables" / f"{table}.json"

    def _keys_path(self, bucket: str) -> Path:
        return self._root / "objects" / f"{bucket}.keys.json"

    def _blob_path(self, bucket: str, key: str) -> Path:
        return self._root / "blobs" / bucket / _blob_name(key)

    # --- restore --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Snapshot plus journal into the emulated services; then both are folded into a new snapshot."""
        items = {table: self._saved_items(table) for table in self._tables}
        objects = {bucket: self._saved_objects(bucket) for bucket in self._buckets}
        for entry in self._journal_entries():
            if entry.get("table") in items:
                table_items = items[entry["table"]]
                key = _key_id(entry["key"])
                if entry["item"] is None:
                    table_items.pop(key, None)
                else:
                    table_items[key] = entry["item"]
            elif entry.get("bucket") in objects:
                bucket_objects = objects[entry["bucket"]]
                if entry["present"]:
                    bucket_objects[entry["object"]] = self._blob_path(entry["bucket"], entry["object"])
                else:
                    bucket_objects.pop(entry["object"], None)
        for table, table_items in items.items():
            self._load_items(table, list(table_items.values()))
        for bucket, bucket_objects in objects.items():
            present = self._load_objects(bucket, bucket_objects)
            objects[bucket] = {key: bucket_objects[key] for key in present}
        self._write_snapshot(
            {table: list(table_items.values()) for table, table_items in items.items()},
            {bucket: sorted(bucket_objects) for bucket, bucket_objects in objects.items()},
        )
        self._remove_legacy_objects()
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        self._journal = open(self.journal_path, "wb")  # noqa: SIM115 - closed in close()
        self._sync_journal()

    def _saved_items(self, table: str) -> dict[str, dict[str, Any]]:
        path = self._table_path(table)
        if not path.exists():
            return {}
        items = json.loads(path.read_text())
        names = self._key_names[table]
        return {_key_id({name: item[name] for name in names}): item for item in items}

    def _saved_objects(self, bucket: str) -> dict[str, Path]:
        """Object key → the file holding its bytes."""
        keys_path = self._keys_path(bucket)
        if keys_path.exists():
            return {key: self._blob_path(bucket, key) for key in json.loads(keys_path.read_text())}
        legacy_index = self._root / "objects" / f"{bucket}.index.json"
        if legacy_index.exists():
            folder = self._root / "objects" / bucket
            return {key: folder / key for key in json.loads(legacy_index.read_text())}
        return {}

    def _journal_entries(self) -> Iterator[dict[str, Any]]:
        if not self.journal_path.exists():
            return
        with open(self.journal_path, "rb") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except ValueError:  # a line cut short by a crash: its write was never acknowledged
                    logger.warning(
                        "Skipped an incomplete journal line", extra={"journal": str(self.journal_path)}
                    )

    def _load_items(self, table: str, items: list[dict[str, Any]]) -> None:
        backend = _dynamodb_backend()
        for item in items:  # the items are DynamoDB JSON as the service receives it: binary as base64
            backend.put_item(table, item)

    def _load_objects(self, bucket: str, objects: dict[str, Path]) -> list[str]:
        present = []
        for key, path in objects.items():
            if not path.exists():  # its change was never acknowledged (see Snapshot.save)
                logger.warning(
                    "Skipped an object without its saved bytes", extra={"bucket": bucket, "key": key}
                )
                continue
            blob = self._blob_path(bucket, key)
            if path != blob:  # from the earlier layout
                _write_atomic(blob, path.read_bytes())
            # Not through the API: a restored object must not notify (dataset validation ran already).
            _s3_backend().put_object(bucket, key, blob.read_bytes(), disable_notification=True)
            present.append(key)
        return present

    def _remove_legacy_objects(self) -> None:
        for bucket in self._buckets:
            legacy_index = self._root / "objects" / f"{bucket}.index.json"
            if legacy_index.exists():
                legacy_index.unlink()
                shutil.rmtree(self._root / "objects" / bucket, ignore_errors=True)

    # --- snapshot -------------------------------------------------------------------------------
    def _write_snapshot(self, items: dict[str, list[dict[str, Any]]], objects: dict[str, list[str]]) -> None:
        for table, table_items in items.items():
            _write_atomic(self._table_path(table), json.dumps(table_items).encode())
        for bucket, keys in objects.items():
            _write_atomic(self._keys_path(bucket), json.dumps(keys).encode())
            folder = self._root / "blobs" / bucket
            wanted = {_blob_name(key) for key in keys}
            for blob in folder.iterdir() if folder.exists() else ():
                if blob.name not in wanted:
                    blob.unlink(missing_ok=True)

    def save(self) -> None:
        """Folds the journal into a new snapshot of the services' current state, then empties it.

        Holding the lock keeps new changes out of the journal meanwhile; a change the services
        applied during the scan but not yet journaled is journaled after, so it is replayed over
        the snapshot: its read-back state is at least as new as what the scan saw.
        """
        with self._lock:
            items = {table: _table_items(table) for table in self._tables}
            objects = {}
            for bucket in self._buckets:
                keys: list[str] = []
                for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    keys.extend(entry["Key"] for entry in page.get("Contents", []))
                objects[bucket] = keys
            self._write_snapshot(items, objects)
            if self._journal is not None:
                self._journal.truncate(0)
                self._journal.seek(0)
                self._sync_journal()

    def compact_if_large(self) -> None:
        if self._journal is not None and self.journal_path.stat().st_size > COMPACT_JOURNAL_BYTES:
            self.save()

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # --- journal --------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._journal is not None

    def change_of(
        self, method: str, host: str, raw_path: str, query: str, target: str, body: Callable[[], bytes]
    ) -> Change | None:
        """What a request to the emulated services may change in our tables and buckets, or None."""
        if target.startswith(_DYNAMODB_TARGET):
            action = target[len(_DYNAMODB_TARGET) :]
            return (
                self._item_change(action, json.loads(body() or b"{}")) if action in _DYNAMODB_WRITES else None
            )
        if method not in ("PUT", "POST", "DELETE"):
            return None
        bucket, key = self._bucket_and_key(host, raw_path)
        if bucket is None:
            return None
        params = parse_qs(query, keep_blank_values=True)
        if not key:
            if method == "POST" and "delete" in params:  # DeleteObjects
                keys = [
                    node.text or ""
                    for node in ElementTree.fromstring(body()).iter()
                    if node.tag.endswith("Key")
                ]
                return Change(objects=tuple((bucket, k) for k in keys))
            return None
        if any(name in params for name in _METADATA_QUERIES):
            return None
        if ("uploadId" in params and method != "POST") or "uploads" in params:
            return None  # a part, an abort or the start of a multipart upload: the object is unchanged
        return Change(objects=((bucket, key),))

    def _item_change(self, action: str, request: dict[str, Any]) -> Change | None:
        changed: list[tuple[str, dict[str, Any]]] = []

        def add(table: str | None, item: dict[str, Any] | None) -> None:
            if table in self._key_names and item is not None:
                changed.append((table, {name: item[name] for name in self._key_names[table]}))

        table = request.get("TableName")
        if action == "PutItem":
            add(table, request.get("Item"))
        elif action in ("UpdateItem", "DeleteItem"):
            add(table, request.get("Key"))
        elif action == "BatchWriteItem":
            for name, writes in (request.get("RequestItems") or {}).items():
                for write in writes:
                    add(
                        name,
                        (write.get("PutRequest") or {}).get("Item")
                        or (write.get("DeleteRequest") or {}).get("Key"),
                    )
        else:  # TransactWriteItems
            for operation in request.get("TransactItems") or []:
                for kind in ("Put", "Update", "Delete"):
                    if kind in operation:
                        body = operation[kind]
                        add(body.get("TableName"), body.get("Item") if kind == "Put" else body.get("Key"))
        return Change(items=tuple(changed)) if changed else None

    def _bucket_and_key(self, host: str, raw_path: str) -> tuple[str | None, str]:
        path = unquote(raw_path)
        hostname = host.split(":", 1)[0]
        for bucket in self._buckets:
            if hostname.startswith(f"{bucket}."):  # virtual-hosted style
                return bucket, path.lstrip("/")
        bucket, _, key = path.lstrip("/").partition("/")
        return (bucket, key) if bucket in self._buckets else (None, "")

    def record(self, change: Change) -> None:
        """Reads back what the change touched and journals it; returns once it is on disk."""
        with self._lock:
            if self._journal is None:
                return
            lines = [self._item_line(table, key) for table, key in change.items]
            lines += [self._object_line(bucket, key) for bucket, key in change.objects]
            self._journal.write(b"".join(lines))
            self._journal.flush()  # in the file now: a killed process cannot lose it any more
            descriptor = os.dup(self._journal.fileno())
        # Synced outside the lock, so concurrent writers share the wait for the disk.
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _item_line(self, table: str, key: dict[str, Any]) -> bytes:
        found = self._dynamodb.get_item(TableName=table, Key=_decode_binary(key), ConsistentRead=True).get(
            "Item"
        )
        entry = {"table": table, "key": key, "item": _encode_binary(found) if found else None}
        return json.dumps(entry).encode() + b"\n"

    def _object_line(self, bucket: str, key: str) -> bytes:
        blob = self._blob_path(bucket, key)
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except self._s3.exceptions.NoSuchKey:
            present = False
        else:
            _write_atomic(blob, iter(lambda: body.read(1024 * 1024), b""))
            present = True
        entry = {"bucket": bucket, "object": key, "present": present}
        line = json.dumps(entry).encode() + b"\n"
        if not present:
            blob.unlink(missing_ok=True)
        return line

    def _sync_journal(self) -> None:
        self._journal.flush()
        os.fsync(self._journal.fileno())


class JournalMiddleware:
    """WSGI middleware in front of the emulated services: journals each applied write before answering."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._app = app
        self.snapshot: Snapshot | None = None  # set once the data dir is known; nothing is journaled before

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        snapshot = self.snapshot
        if snapshot is None or not snapshot.recording:
            return self._app(environ, start_response)
        raw_path = urlsplit(environ.get("REQUEST_URI") or environ.get("RAW_URI") or "").path
        try:
            change = snapshot.change_of(
                environ.get("REQUEST_METHOD", ""),
                environ.get("HTTP_HOST", ""),
                raw_path or environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
                environ.get("HTTP_X_AMZ_TARGET", ""),
                lambda: buffered_body(environ),
            )
        except (ValueError, ElementTree.ParseError):  # a body the service refuses: nothing changes
            logger.warning("Unreadable write request to the emulated services", extra={"path": raw_path})
            change = None
        if change is None:
            return self._app(environ, start_response)
        statuses: list[str] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        result = self._app(environ, capture)
        if not statuses:  # an app that answers lazily: run it to its end first
            result = [b"".join(result)]
        if statuses and statuses[-1].startswith("2"):
            snapshot.record(change)
        return result


def buffered_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for the application behind."""
    if "tt.body" not in environ:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["tt.body"] = body
    body_bytes: bytes = environ["tt.body"]
    return body_bytes


def journaled_moto_server(
    port: int = 0,
    credentials: Credentials | None = None,
    cors_origin: Callable[[], str | None] = lambda: None,
) -> tuple[Any, JournalMiddleware]:
    """moto's threaded server with the journal middleware in front of its application and, given the
    stack's credentials, the signature check in front of both (signatures.py); `cors_origin` names the
    dashboard's origin, allowed to use presigned URLs from a browser."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from tt_local.signatures import SignedRequestsOnly

    middleware = JournalMiddleware(DomainDispatcherApplication(create_backend_app))
    app = middleware if credentials is None else SignedRequestsOnly(middleware, credentials, cors_origin)

    class RequestHandler(MotoRequestHandler):
        # Without it each answer's body waits for the client's delayed ACK of its headers (40 ms).
        disable_nagle_algorithm = True

    class JournaledMotoServer(ThreadedMotoServer):
        request_handler = RequestHandler

        def _server_entry(self) -> None:  # as moto's, with the middleware around the application
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=self.request_handler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return JournaledMotoServer(ip_address="127.0.0.1", port=port, verbose=False), middleware
