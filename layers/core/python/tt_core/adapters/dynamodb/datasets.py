"""Datasets in the table: the upload record and its one-way status transitions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tt_core.adapters.dynamodb.table import DynamoTable, account_pk, readable
from tt_core.models.common import PageQuery, format_timestamp
from tt_core.models.datasets import DatasetRecord, ValidationReport
from tt_core.schema import GSI1_PARTITION_KEY, GSI1_SORT_KEY, TTL_ATTRIBUTE


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
        return readable(items, self._record), total

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
