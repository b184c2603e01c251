"""Services over moto-backed repositories with a fixed clock: concurrency, timestamps, authentication."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import FixedClock, SequentialIds
from tt_core.errors import ForbiddenError, SpecModifiedError, UnauthorizedError
from tt_core.models.behavior_specs import CreateBehaviorSpecRequest, UpdateBehaviorSpecRequest


@pytest.fixture
def services(aws: Any) -> Any:
    import boto3

    from tt_core import wiring
    from tt_core.adapters.dynamodb import (
        DocumentPacker,
        DynamoAccountRepository,
        DynamoSpecRepository,
        DynamoTable,
    )
    from tt_core.adapters.s3 import S3ObjectStore
    from tt_core.services.api_keys import ApiKeyService
    from tt_core.services.behavior_specs import SpecService

    clock, ids = FixedClock(), SequentialIds()
    table = DynamoTable(boto3.client("dynamodb"), aws["table"])
    packer = DocumentPacker(S3ObjectStore(boto3.client("s3"), aws["bucket"]))
    specs = SpecService(
        DynamoSpecRepository(table, packer),
        clock,
        ids,
        default_base_model="tunedtensor/tiny-chat",
        runs=wiring.run_service(),
    )
    keys = ApiKeyService(DynamoAccountRepository(table), clock, ids)
    return clock, specs, keys


BODY = {"name": "s", "examples": [{"input": "q", "output": "a"}]}


def test_update_moves_updated_at_even_when_the_clock_does_not(services: Any) -> None:
    _clock, specs, _ = services
    created = specs.create("acct", CreateBehaviorSpecRequest.model_validate(BODY))
    first = specs.update("acct", created.id, UpdateBehaviorSpecRequest(name="a"))
    second = specs.update("acct", created.id, UpdateBehaviorSpecRequest(name="b"))
    assert created.updated_at < first.updated_at < second.updated_at
    assert (second.updated_at - created.updated_at).total_seconds() == pytest.approx(0.002)
    assert second.version == 3


def test_a_guarded_update_on_a_stale_read_changes_nothing(services: Any) -> None:
    _, specs, _ = services
    created = specs.create("acct", CreateBehaviorSpecRequest.model_validate(BODY))
    specs.update("acct", created.id, UpdateBehaviorSpecRequest(name="new"))
    with pytest.raises(SpecModifiedError):
        specs.update(
            "acct", created.id, UpdateBehaviorSpecRequest(name="lost"), expected_updated_at=created.updated_at
        )
    assert specs.get("acct", created.id).name == "new"


def test_last_used_at_is_written_at_most_once_a_minute(services: Any) -> None:
    clock, _, keys = services
    _account, key = keys.create_account("acme")
    keys.authenticate(f"Bearer {key.key}")
    first = keys.find_key(key.key).last_used_at
    clock.advance(seconds=30)
    keys.authenticate(f"Bearer {key.key}")
    assert keys.find_key(key.key).last_used_at == first
    clock.advance(seconds=31)
    keys.authenticate(f"Bearer {key.key}")
    assert keys.find_key(key.key).last_used_at > first


def test_authentication_outcomes(services: Any) -> None:
    _, _, keys = services
    account, key = keys.create_account("acme")
    spare = keys.create_key(account.id, "spare")
    assert keys.authenticate(f"Bearer {key.key}").account_id == account.id
    keys.revoke_key(account.id, spare.id)
    with pytest.raises(ForbiddenError):
        keys.authenticate(f"Bearer {spare.key}")
    with pytest.raises(UnauthorizedError):
        keys.authenticate("Bearer tt_" + "0" * 48)
    with pytest.raises(UnauthorizedError):
        keys.authenticate(None)
