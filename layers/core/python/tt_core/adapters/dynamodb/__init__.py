"""Repositories over the one DynamoDB table: tenant-first keys, conditional writes, versioned items."""

from __future__ import annotations

from tt_core.adapters.dynamodb.accounts import DynamoAccountRepository
from tt_core.adapters.dynamodb.datasets import DynamoDatasetRepository
from tt_core.adapters.dynamodb.documents import DocumentPacker
from tt_core.adapters.dynamodb.idempotency import DynamoIdempotencyRepository
from tt_core.adapters.dynamodb.runs import DynamoRunRepository
from tt_core.adapters.dynamodb.specs import DynamoSpecRepository
from tt_core.adapters.dynamodb.table import DynamoTable
from tt_core.adapters.dynamodb.tuned_models import DynamoTunedModelRepository

__all__ = [
    "DocumentPacker",
    "DynamoAccountRepository",
    "DynamoDatasetRepository",
    "DynamoIdempotencyRepository",
    "DynamoRunRepository",
    "DynamoSpecRepository",
    "DynamoTable",
    "DynamoTunedModelRepository",
]
