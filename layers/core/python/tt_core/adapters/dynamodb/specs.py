"""Behaviour specs in the table, their prose and examples packed as a document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tt_core.adapters.dynamodb.documents import DocumentPacker
from tt_core.adapters.dynamodb.table import DynamoTable, account_pk, readable
from tt_core.models.behavior_specs import BehaviorSpecRecord
from tt_core.models.common import PageQuery, format_timestamp
from tt_core.schema import ACCOUNTS_PREFIX, GSI1_PARTITION_KEY, GSI1_SORT_KEY

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
        return readable(items, self._record), total

    def replace(self, spec: BehaviorSpecRecord, expected_version: int) -> bool:
        item = self._item(spec)
        previous = self._table.replace(item, "version = :v", {":v": expected_version})
        # Whichever document lost (the new one on a conflict, else the old one) is removed.
        self._packer.discard(item if previous is None else previous)
        return previous is not None

    def delete(self, account_id: str, spec_id: str) -> bool:
        key = self._key(account_id, spec_id)
        item = self._table.get(*key)
        if item is None or not self._table.delete(*key, condition="attribute_exists(pk)"):
            return False
        self._packer.discard(item)
        return True
