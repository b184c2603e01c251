"""The composition root: cached factories that build services from settings and adapters.

Nothing here runs at import time; tests call reset() between cases. Each factory imports its
service and adapters when first called, so a function's cold start loads only what its requests
use (the authorizer never loads datasets, the validator never loads specs).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from tt_core.settings import Settings

if TYPE_CHECKING:
    from tt_core.adapters.dynamodb import DocumentPacker, DynamoTable
    from tt_core.services.api_keys import ApiKeyService
    from tt_core.services.behavior_specs import SpecService
    from tt_core.services.datasets import DatasetService
    from tt_core.services.idempotency import IdempotencyService


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def _client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


@cache
def _presigning_s3() -> Any:
    import boto3
    from botocore.config import Config

    # SigV4 signs the headers the client must send (Content-Type, If-None-Match).
    return boto3.session.Session().client("s3", config=Config(signature_version="s3v4"))


@cache
def _table() -> DynamoTable:
    from tt_core.adapters.dynamodb import DynamoTable

    return DynamoTable(_client("dynamodb"), settings().table_name)


@cache
def _packer() -> DocumentPacker:
    from tt_core.adapters.dynamodb import DocumentPacker
    from tt_core.adapters.s3 import S3ObjectStore

    return DocumentPacker(S3ObjectStore(_client("s3"), settings().bucket_name))


@cache
def api_key_service() -> ApiKeyService:
    from tt_core.adapters.dynamodb import DynamoAccountRepository
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.api_keys import ApiKeyService

    return ApiKeyService(DynamoAccountRepository(_table()), SystemClock(), UuidGenerator())


@cache
def spec_service() -> SpecService:
    from tt_core.adapters.dynamodb import DynamoSpecRepository
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.behavior_specs import SpecService

    return SpecService(
        DynamoSpecRepository(_table(), _packer()),
        SystemClock(),
        UuidGenerator(),
        default_base_model=settings().default_base_model,
    )


@cache
def dataset_service() -> DatasetService:
    from tt_core.adapters.dynamodb import DynamoDatasetRepository
    from tt_core.adapters.s3 import S3ObjectStore, S3UploadSigner
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.datasets import DatasetService

    bucket = settings().bucket_name
    return DatasetService(
        DynamoDatasetRepository(_table()),
        S3ObjectStore(_client("s3"), bucket),
        S3UploadSigner(_presigning_s3(), bucket),
        SystemClock(),
        UuidGenerator(),
        bucket=bucket,
    )


@cache
def idempotency_service() -> IdempotencyService:
    from tt_core.adapters.dynamodb import DynamoIdempotencyRepository
    from tt_core.adapters.system import SystemClock
    from tt_core.services.idempotency import IdempotencyService

    return IdempotencyService(DynamoIdempotencyRepository(_table(), _packer()), SystemClock())


def reset() -> None:
    """Forget every cached object, e.g. after a test changed the environment."""
    factories = (settings, _client, _presigning_s3, _table, _packer)
    services = (api_key_service, spec_service, dataset_service, idempotency_service)
    for factory in (*factories, *services):
        factory.cache_clear()
