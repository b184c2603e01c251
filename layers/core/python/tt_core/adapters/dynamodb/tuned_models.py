"""Fine-tuned models in the table (`MODEL#<id>`), listed newest first through GSI1."""

from __future__ import annotations

from tt_core.adapters.dynamodb.table import DynamoTable, account_pk, readable
from tt_core.models.common import PageQuery, format_timestamp
from tt_core.models.tuned_models import TunedModelRecord
from tt_core.schema import GSI1_PARTITION_KEY, GSI1_SORT_KEY


class DynamoTunedModelRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def create(self, model: TunedModelRecord) -> None:
        pk = account_pk(model.account_id)
        item = {
            "pk": pk,
            "sk": f"MODEL#{model.id}",
            GSI1_PARTITION_KEY: f"{pk}#MODELS",
            GSI1_SORT_KEY: f"{format_timestamp(model.created_at)}#{model.id}",
            **model.model_dump(),
        }
        if not self._table.put(item, "attribute_not_exists(pk)"):
            raise ValueError(f"model {model.id} already exists")

    def get(self, account_id: str, model_id: str) -> TunedModelRecord | None:
        item = self._table.get(account_pk(account_id), f"MODEL#{model_id}")
        return TunedModelRecord.model_validate(item) if item else None

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[TunedModelRecord], int]:
        items, total = self._table.page_by_index(f"{account_pk(account_id)}#MODELS", page)
        return readable(items, TunedModelRecord.model_validate), total

    def list_all(self, account_id: str) -> list[TunedModelRecord]:
        """Every model of the account, newest first (the playground's inventory is not paginated)."""
        models: list[TunedModelRecord] = []
        page = 1
        while True:
            batch, total = self.list_page(account_id, PageQuery(page=page, per_page=100))
            models.extend(batch)
            if not batch or page * 100 >= total:
                return models
            page += 1

    def delete(self, account_id: str, model_id: str) -> bool:
        """False when there was no such model (deleted meanwhile)."""
        return self._table.delete(
            account_pk(account_id), f"MODEL#{model_id}", condition="attribute_exists(pk)"
        )

    def detach_spec(self, account_id: str, spec_id: str) -> None:
        """The spec and its runs are gone: its models keep living with null run and spec ids."""
        models = self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="behavior_spec_id = :spec",
            ExpressionAttributeValues={":pk": account_pk(account_id), ":prefix": "MODEL#", ":spec": spec_id},
        )
        for item in models:
            self._table.update(item["pk"], item["sk"], "REMOVE run_id, behavior_spec_id", {})
