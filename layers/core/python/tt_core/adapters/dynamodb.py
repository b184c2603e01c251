"""Repositories over the one DynamoDB table: tenant-first keys, conditional writes, versioned items."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from tt_core.errors import LastActiveKeyError, NotFoundError
from tt_core.models.api_keys import Account, ApiKeyRecord
from tt_core.models.behavior_specs import BehaviorSpecRecord
from tt_core.models.common import PageQuery, format_timestamp
from tt_core.models.datasets import DatasetRecord, ValidationReport
from tt_core.models.idempotency import IdempotencyRecord
from tt_core.ports import ObjectStore
from tt_core.schema import ACCOUNTS_PREFIX, GSI1_NAME, GSI1_PARTITION_KEY, GSI1_SORT_KEY, TTL_ATTRIBUTE

# An item may hold at most 400 KB; larger documents go to the object store and the item points at them.
INLINE_DOCUMENT_LIMIT = 300_000

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def account_pk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def _to_dynamo(value: Any, keep_nulls: bool = False) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, dict):
        return {k: _to_dynamo(v, keep_nulls) for k, v in value.items() if keep_nulls or v is not None}
    if isinstance(value, list):
        return [_to_dynamo(v, keep_nulls) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _marshal(item: Mapping[str, Any], keep_nulls: bool = False) -> dict[str, Any]:
    """DynamoDB JSON; None values are dropped from items, but kept (as NULL) when they are update values."""
    return {k: _serializer.serialize(v) for k, v in _to_dynamo(dict(item), keep_nulls).items()}


def _unmarshal(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def _condition_failed(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


class DynamoTable:
    """Thin typed access to the table through the low-level client (cheaper to import than resources)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.name = table_name

    def put(
        self, item: Mapping[str, Any], condition: str | None = None, values: Mapping[str, Any] | None = None
    ) -> bool:
        kwargs: dict[str, Any] = {"TableName": self.name, "Item": _marshal(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        if values:
            kwargs["ExpressionAttributeValues"] = _marshal(values)
        try:
            self.client.put_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.name, Key=_marshal({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        item = response.get("Item")
        return _unmarshal(item) if item else None

    def delete(self, pk: str, sk: str, condition: str | None = None) -> bool:
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": _marshal({"pk": pk, "sk": sk})}
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            self.client.delete_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        values: Mapping[str, Any],
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        keep_nulls: bool = False,
    ) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": _marshal({"pk": pk, "sk": sk}),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": _marshal(values, keep_nulls),
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        try:
            self.client.update_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of a query, page after page."""
        kwargs = {"TableName": self.name, **kwargs}
        if "ExpressionAttributeValues" in kwargs:
            kwargs["ExpressionAttributeValues"] = _marshal(kwargs["ExpressionAttributeValues"])
        while True:
            response = self.client.query(**kwargs)
            for item in response.get("Items", []):
                yield _unmarshal(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def batch_get(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        pending = [_marshal({"pk": pk, "sk": sk}) for pk, sk in keys]
        while pending:
            batch, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self.name: {"Keys": batch, "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.name, []):
                    item = _unmarshal(raw)
                    found[(item["pk"], item["sk"])] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    def transact(self, *operations: dict[str, Any]) -> bool:
        items = []
        for operation in operations:
            ((kind, body),) = operation.items()
            body = {"TableName": self.name, **body}
            for field in ("Item", "Key", "ExpressionAttributeValues"):
                if field in body:
                    body[field] = _marshal(body[field])
            items.append({kind: body})
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException:
            return False
        return True

    def page_by_index(self, partition: str, page: PageQuery) -> tuple[list[dict[str, Any]], int]:
        """Newest-first page of the items in one GSI1 partition, with the total.

        One keys-only pass over the index gives both the total and the page's keys; only the
        page's items are then read in full.
        """
        keys = [
            (item["pk"], item["sk"])
            for item in self.query(
                IndexName=GSI1_NAME,
                KeyConditionExpression=f"{GSI1_PARTITION_KEY} = :p",
                ExpressionAttributeValues={":p": partition},
                ProjectionExpression="pk, sk",
                ScanIndexForward=False,
            )
        ]
        wanted = keys[page.offset : page.offset + page.per_page]
        found = self.batch_get(wanted)
        return [found[key] for key in wanted if key in found], len(keys)


class DocumentPacker:
    """Stores a JSON document inline (gzip) or, when too large for an item, in the object store."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    def pack(self, document: Any, object_key: str) -> dict[str, Any]:
        data = gzip.compress(json.dumps(document, ensure_ascii=False).encode(), compresslevel=6)
        if len(data) <= INLINE_DOCUMENT_LIMIT:
            return {"doc": data}
        self._objects.put_bytes(object_key, data, "application/gzip")
        return {"doc_key": object_key}

    def unpack(self, item: Mapping[str, Any]) -> Any:
        data = item["doc"] if "doc" in item else self._objects.get_bytes(item["doc_key"])
        return json.loads(gzip.decompress(data))

    def discard(self, item: Mapping[str, Any] | None) -> None:
        if item and "doc_key" in item:
            self._objects.delete(item["doc_key"])


class DynamoAccountRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def create_account(self, account: Account) -> None:
        item = {"pk": account_pk(account.id), "sk": "ACCOUNT", **account.model_dump(), "active_keys": 0}
        if not self._table.put(item, "attribute_not_exists(pk)"):
            raise ValueError(f"account {account.id} already exists")

    def get_account(self, account_id: str) -> Account | None:
        item = self._table.get(account_pk(account_id), "ACCOUNT")
        return Account.model_validate(item) if item else None

    def add_key(self, key: ApiKeyRecord) -> None:
        pk = account_pk(key.account_id)
        item = {
            "pk": pk,
            "sk": f"APIKEY#{key.id}",
            GSI1_PARTITION_KEY: f"KEYHASH#{key.key_hash}",
            GSI1_SORT_KEY: "APIKEY",
            **key.model_dump(),
        }
        # The account's active-key counter moves in the same transaction, so revocation can refuse
        # to remove the last active key without a race.
        created = self._table.transact(
            {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {
                "Update": {
                    "Key": {"pk": pk, "sk": "ACCOUNT"},
                    "UpdateExpression": "ADD active_keys :one",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":one": 1},
                }
            },
        )
        if not created:
            raise NotFoundError("Account not found")

    def _record(self, item: Mapping[str, Any]) -> ApiKeyRecord:
        return ApiKeyRecord.model_validate(item)

    def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        items = self._table.query(
            IndexName=GSI1_NAME,
            KeyConditionExpression=f"{GSI1_PARTITION_KEY} = :h",
            ExpressionAttributeValues={":h": f"KEYHASH#{key_hash}"},
        )
        item = next(items, None)
        return self._record(item) if item else None

    def get_key(self, account_id: str, key_id: str) -> ApiKeyRecord | None:
        item = self._table.get(account_pk(account_id), f"APIKEY#{key_id}")
        return self._record(item) if item else None

    def list_keys(self, account_id: str, page: PageQuery) -> tuple[list[ApiKeyRecord], int]:
        # An account has few keys: read them all and order in memory (newest first, then id).
        items = self._table.query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": account_pk(account_id), ":s": "APIKEY#"},
        )
        records = sorted((self._record(i) for i in items), key=lambda r: (r.created_at, r.id), reverse=True)
        return records[page.offset : page.offset + page.per_page], len(records)

    def revoke_key(self, account_id: str, key_id: str, at: datetime) -> None:
        pk = account_pk(account_id)
        revoked = self._table.transact(
            {
                "Update": {
                    "Key": {"pk": pk, "sk": f"APIKEY#{key_id}"},
                    "UpdateExpression": "SET revoked_at = :at",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                    "ExpressionAttributeValues": {":at": at},
                }
            },
            {
                "Update": {
                    "Key": {"pk": pk, "sk": "ACCOUNT"},
                    "UpdateExpression": "ADD active_keys :minus",
                    "ConditionExpression": "active_keys > :one",
                    "ExpressionAttributeValues": {":minus": -1, ":one": 1},
                }
            },
        )
        if revoked:
            return
        current = self.get_key(account_id, key_id)
        if current is None:
            raise NotFoundError("API key not found")
        if current.revoked_at is None:
            raise LastActiveKeyError(
                "This is the account's only active API key: create another key before revoking it."
            )

    def touch_key(self, account_id: str, key_id: str, at: datetime, not_since: datetime) -> None:
        self._table.update(
            account_pk(account_id),
            f"APIKEY#{key_id}",
            "SET last_used_at = :at",
            {":at": at, ":since": not_since},
            condition="attribute_exists(pk) AND "
            "(attribute_not_exists(last_used_at) OR last_used_at < :since)",
        )


_SPEC_DOCUMENT_FIELDS = (
    "description",
    "system_prompt",
    "guidelines",
    "constraints",
    "examples",
    "eval_cases",
)


class DynamoSpecRepository:
    def __init__(self, table: DynamoTable, packer: DocumentPacker) -> None:
        self._table = table
        self._packer = packer

    @staticmethod
    def _key(account_id: str, spec_id: str) -> tuple[str, str]:
        return account_pk(account_id), f"SPEC#{spec_id}"

    def _item(self, spec: BehaviorSpecRecord) -> dict[str, Any]:
        pk, sk = self._key(spec.account_id, spec.id)
        data = spec.model_dump()
        document = {field: data.pop(field) for field in _SPEC_DOCUMENT_FIELDS}
        # A versioned object key: a new version never overwrites the object the stored item points at.
        object_key = f"{ACCOUNTS_PREFIX}{spec.account_id}/specs/{spec.id}/v{spec.version}.json.gz"
        return {
            "pk": pk,
            "sk": sk,
            GSI1_PARTITION_KEY: f"{pk}#SPECS",
            GSI1_SORT_KEY: f"{format_timestamp(spec.created_at)}#{spec.id}",
            **data,
            **self._packer.pack(document, object_key),
        }

    def _record(self, item: Mapping[str, Any]) -> BehaviorSpecRecord:
        return BehaviorSpecRecord.model_validate({**item, **self._packer.unpack(item)})

    def create(self, spec: BehaviorSpecRecord) -> None:
        item = self._item(spec)
        if not self._table.put(item, "attribute_not_exists(pk)"):
            self._packer.discard(item)
            raise ValueError(f"spec {spec.id} already exists")

    def get(self, account_id: str, spec_id: str) -> BehaviorSpecRecord | None:
        item = self._table.get(*self._key(account_id, spec_id))
        return self._record(item) if item else None

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[BehaviorSpecRecord], int]:
        items, total = self._table.page_by_index(f"{account_pk(account_id)}#SPECS", page)
        return [self._record(item) for item in items], total

    def replace(self, spec: BehaviorSpecRecord, expected_version: int) -> bool:
        previous = self._table.get(*self._key(spec.account_id, spec.id))
        item = self._item(spec)
        stored = self._table.put(item, "version = :v", {":v": expected_version})
        # Whichever document lost (the new one on a conflict, else the old one) is removed.
        self._packer.discard(previous if stored else item)
        return stored

    def delete(self, account_id: str, spec_id: str) -> bool:
        key = self._key(account_id, spec_id)
        item = self._table.get(*key)
        if item is None or not self._table.delete(*key, condition="attribute_exists(pk)"):
            return False
        self._packer.discard(item)
        return True


class DynamoIdempotencyRepository:
    def __init__(self, table: DynamoTable, packer: DocumentPacker) -> None:
        self._table = table
        self._packer = packer

    @staticmethod
    def _key(record: IdempotencyRecord) -> tuple[str, str]:
        return account_pk(record.account_id), f"IDEMPOTENCY#{record.scope}#{record.key}"

    def begin(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        pk, sk = self._key(record)
        item = {
            "pk": pk,
            "sk": sk,
            **record.model_dump(exclude={"expires_at", "response_body"}),
            TTL_ATTRIBUTE: int(record.expires_at.timestamp()),
        }
        now = int(datetime.now(tz=record.expires_at.tzinfo).timestamp())
        # TTL deletion is lazy: an expired record still in the table counts as absent.
        if self._table.put(item, f"attribute_not_exists(pk) OR {TTL_ATTRIBUTE} < :now", {":now": now}):
            return None
        existing = self._table.get(pk, sk)
        if existing is None:  # expired and deleted between the two calls: take the key again
            return self.begin(record)
        body = self._packer.unpack(existing) if ("doc" in existing or "doc_key" in existing) else None
        return IdempotencyRecord.model_validate(
            {
                **existing,
                "response_body": body,
                "expires_at": datetime.fromtimestamp(existing[TTL_ATTRIBUTE], tz=record.expires_at.tzinfo),
            }
        )

    def complete(self, record: IdempotencyRecord, status: int, body: Any) -> None:
        pk, sk = self._key(record)
        object_key = f"{ACCOUNTS_PREFIX}{record.account_id}/idempotency/{record.body_hash}.json.gz"
        document = self._packer.pack(body, object_key)
        ((field, value),) = document.items()
        self._table.update(
            pk,
            sk,
            f"SET #s = :c, response_status = :st, {field} = :d",
            {":c": "completed", ":st": status, ":d": value},
            names={"#s": "status"},
        )

    def release(self, record: IdempotencyRecord) -> None:
        self._table.delete(*self._key(record))


class DynamoDatasetRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    @staticmethod
    def _key(account_id: str, dataset_id: str) -> tuple[str, str]:
        return account_pk(account_id), f"DATASET#{dataset_id}"

    def create(self, dataset: DatasetRecord) -> None:
        pk, sk = self._key(dataset.account_id, dataset.id)
        item = {
            "pk": pk,
            "sk": sk,
            GSI1_PARTITION_KEY: f"{pk}#DATASETS",
            GSI1_SORT_KEY: f"{format_timestamp(dataset.created_at)}#{dataset.id}",
            **dataset.model_dump(exclude={"expires_at"}),
        }
        if dataset.expires_at is not None:
            item[TTL_ATTRIBUTE] = int(dataset.expires_at.timestamp())
        if not self._table.put(item, "attribute_not_exists(pk)"):
            raise ValueError(f"dataset {dataset.id} already exists")

    @staticmethod
    def _record(item: Mapping[str, Any]) -> DatasetRecord:
        return DatasetRecord.model_validate({k: v for k, v in item.items() if k != TTL_ATTRIBUTE})

    def get(self, account_id: str, dataset_id: str) -> DatasetRecord | None:
        item = self._table.get(*self._key(account_id, dataset_id))
        return self._record(item) if item else None

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[DatasetRecord], int]:
        items, total = self._table.page_by_index(f"{account_pk(account_id)}#DATASETS", page)
        return [self._record(item) for item in items], total

    def set_details(
        self, account_id: str, dataset_id: str, name: str, description: str | None, at: datetime
    ) -> None:
        self._table.update(
            *self._key(account_id, dataset_id),
            "SET #n = :n, description = :d, updated_at = :at",
            {":n": name, ":d": description, ":at": at},
            condition="attribute_exists(pk)",
            names={"#n": "name"},
            keep_nulls=True,
        )

    def claim_validation(
        self, account_id: str, dataset_id: str, at: datetime, stale_before: datetime
    ) -> bool:
        # The TTL goes too: a dataset being validated is no longer an abandoned upload.
        return self._table.update(
            *self._key(account_id, dataset_id),
            f"SET #s = :validating, validation_started_at = :at, updated_at = :at REMOVE {TTL_ATTRIBUTE}",
            {":validating": "validating", ":pending": "pending_upload", ":at": at, ":stale": stale_before},
            condition="#s = :pending OR (#s = :validating AND validation_started_at < :stale)",
            names={"#s": "status"},
        )

    def finish_validation(
        self, account_id: str, dataset_id: str, report: ValidationReport, claimed_at: datetime, at: datetime
    ) -> DatasetRecord | None:
        fields = report.dataset_fields()
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        stored = self._table.update(
            *self._key(account_id, dataset_id),
            f"SET {assignments}, #s = :final, updated_at = :at",
            {**values, ":final": "validated" if report.valid else "invalid", ":at": at,
             ":validating": "validating", ":claimed": claimed_at},
            condition="#s = :validating AND validation_started_at = :claimed",
            names={**names, "#s": "status"},
            keep_nulls=True,
        )  # fmt: skip
        return self.get(account_id, dataset_id) if stored else None

    def release_validation(self, account_id: str, dataset_id: str, claimed_at: datetime) -> None:
        self._table.update(
            *self._key(account_id, dataset_id),
            "SET #s = :pending REMOVE validation_started_at",
            {":pending": "pending_upload", ":validating": "validating", ":claimed": claimed_at},
            condition="#s = :validating AND validation_started_at = :claimed",
            names={"#s": "status"},
        )

    def delete(self, account_id: str, dataset_id: str) -> bool:
        return self._table.delete(*self._key(account_id, dataset_id), condition="attribute_exists(pk)")
