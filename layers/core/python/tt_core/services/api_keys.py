"""Accounts, API keys and request authentication (PRODUCT.md §4)."""

from __future__ import annotations

from datetime import timedelta

from tt_core.errors import ForbiddenError, NotFoundError, UnauthorizedError
from tt_core.models.api_keys import (
    Account,
    ApiKey,
    ApiKeyRecord,
    CreatedApiKey,
    Principal,
    generate_api_key,
    hash_api_key,
    key_from_authorization,
)
from tt_core.models.common import PageQuery, normalize_id
from tt_core.observability import tracer
from tt_core.ports import AccountRepository, Clock, IdGenerator

# last_used_at is written at most once a minute per key: a busy key must not cost a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyService:
    def __init__(self, accounts: AccountRepository, clock: Clock, ids: IdGenerator) -> None:
        self._accounts = accounts
        self._clock = clock
        self._ids = ids

    def create_account(self, name: str, *, account_id: str | None = None) -> tuple[Account, CreatedApiKey]:
        """A new account with its first key, named `default` (the operator's and the local stack's path)."""
        account = Account(id=account_id or self._ids.new_id(), name=name, created_at=self._clock.now())
        self._accounts.create_account(account)
        return account, self.create_key(account.id, "default")

    @tracer.capture_method(capture_response=False)
    def create_key(self, account_id: str, name: str) -> CreatedApiKey:
        secret = generate_api_key()
        record = ApiKeyRecord(
            id=self._ids.new_id(),
            account_id=account_id,
            name=name,
            key_prefix=secret[:8],
            key_hash=hash_api_key(secret),
            created_at=self._clock.now(),
        )
        self._accounts.add_key(record)
        return CreatedApiKey(**record.public().model_dump(), key=secret)

    @tracer.capture_method(capture_response=False)
    def list_keys(self, account_id: str, page: PageQuery) -> tuple[list[ApiKey], int]:
        records, total = self._accounts.list_keys(account_id, page)
        return [record.public() for record in records], total

    @tracer.capture_method
    def revoke_key(self, account_id: str, key_id: str) -> None:
        normalized = normalize_id(key_id)
        record = self._accounts.get_key(account_id, normalized) if normalized else None
        if record is None:
            raise NotFoundError("API key not found")
        if record.revoked_at is None:
            self._accounts.revoke_key(account_id, key_id, self._clock.now())

    def find_key(self, secret: str) -> ApiKeyRecord | None:
        """The stored record of a key the caller holds in full (the local stack's saved key)."""
        return self._accounts.find_key_by_hash(hash_api_key(secret))

    @tracer.capture_method
    def authenticate(self, authorization: str | None) -> Principal:
        key = key_from_authorization(authorization)
        if key is None:
            raise UnauthorizedError("Missing or malformed API key: send 'Authorization: Bearer tt_…'.")
        record = self._accounts.find_key_by_hash(hash_api_key(key))
        if record is None:
            raise UnauthorizedError("Invalid API key.")
        if record.revoked_at is not None:
            raise ForbiddenError("API key has been revoked.")
        now = self._clock.now()
        if record.last_used_at is None or now - record.last_used_at >= LAST_USED_RESOLUTION:
            self._accounts.touch_key(
                account_id=record.account_id, key_id=record.id, at=now, not_since=now - LAST_USED_RESOLUTION
            )
        return Principal(account_id=record.account_id, api_key_id=record.id)
