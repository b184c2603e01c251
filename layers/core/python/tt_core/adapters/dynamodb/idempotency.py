"""Idempotency records in the table, expiring through its TTL attribute."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from tt_core.adapters.dynamodb.documents import DocumentPacker
from tt_core.adapters.dynamodb.table import DynamoTable, account_pk
from tt_core.models.idempotency import IdempotencyRecord
from tt_core.schema import ACCOUNTS_PREFIX, TTL_ATTRIBUTE


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
        # Named by the key (not the body): two keys sending the same body must not share a response.
        key_hash = hashlib.sha256(f"{record.scope}#{record.key}".encode()).hexdigest()
        object_key = f"{ACCOUNTS_PREFIX}{record.account_id}/idempotency/{key_hash}.json.gz"
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
