"""Accounts and API keys in the table (GSI1 maps a key hash to its account)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tt_core.adapters.dynamodb.table import DynamoTable, account_pk
from tt_core.errors import LastActiveKeyError, NotFoundError
from tt_core.models.api_keys import Account, ApiKeyRecord
from tt_core.models.common import PageQuery
from tt_core.schema import GSI1_NAME, GSI1_PARTITION_KEY, GSI1_SORT_KEY


class DynamoAccountRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def create_account(self, account: Account) -> None:
        item = {"pk": account_pk(account.id), "sk": "ACCOUNT", **account.model_dump(), "active_keys": 0}
        if not self._table.put(item, "attribute_not_exists(pk)"):
            raise ValueError(f"account {account.id} already exists")

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
