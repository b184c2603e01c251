"""Repositories over the one DynamoDB table: tenant-first keys, conditional writes, versioned items."""

from __future__ import annotations

from tt_core.adapters.dynamodb.accounts import DynamoAccountRepository
from tt_core.adapters.dynamodb.datasets import DynamoDatasetRepository
from tt_core.adapters.dynamodb.documents import DocumentPacker
from tt_core.adapters.dynamodb.idempotency import DynamoIdempotencyRepository
from tt_core.adapters.dynamodb.specs import DynamoSpecRepository
from tt_core.adapters.dynamodb.table import DynamoTable

__all__ = [
    "DocumentPacker",
    "DynamoAccountRepository",
    "DynamoDatasetRepository",
    "DynamoIdempotencyRepository",
    "DynamoSpecRepository",
    "DynamoTable",
]
