"""Typed access to the one table: DynamoDB JSON marshalling, conditional writes, paging."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from tt_core.models.common import PageQuery, format_timestamp
from tt_core.observability import logger
from tt_core.schema import GSI1_NAME, GSI1_PARTITION_KEY

T = TypeVar("T")

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


def readable(items: Iterable[Mapping[str, Any]], read: Callable[[Mapping[str, Any]], T]) -> list[T]:
    """The items that `read` can turn into records; one that cannot is logged and left out.

    A list shows many items: one damaged item (a schema it no longer fits, a lost document) must
    not make the whole list unreadable, or the user could not even find it to delete it.
    """
    records = []
    for item in items:
        try:
            records.append(read(item))
        except Exception:
            logger.exception(
                "Unreadable item left out of a list", extra={"pk": item.get("pk"), "sk": item.get("sk")}
            )
    return records


def _marshal(item: Mapping[str, Any], keep_nulls: bool = False) -> dict[str, Any]:
    """DynamoDB JSON; None values are dropped from items, but kept (as NULL) when they are update values."""
    return {k: _serializer.serialize(v) for k, v in _to_dynamo(dict(item), keep_nulls).items()}


def _unmarshal(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


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

    def replace(
        self, item: Mapping[str, Any], condition: str, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Conditionally overwrites an item; the item it replaced, or None when the condition failed."""
        try:
            response = self.client.put_item(
                TableName=self.name,
                Item=_marshal(item),
                ConditionExpression=condition,
                ExpressionAttributeValues=_marshal(values),
                ReturnValues="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return _unmarshal(response.get("Attributes", {}))

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
        }
        if values:
            kwargs["ExpressionAttributeValues"] = _marshal(values, keep_nulls)
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
