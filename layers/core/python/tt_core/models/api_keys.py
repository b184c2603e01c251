"""Accounts and API keys (PRODUCT.md §4)."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

from tt_core.models.common import Model, Name, RequestModel, Timestamp

KEY_PREFIX = "tt_"
KEY_BODY_LENGTH = 48
KEY_LENGTH = len(KEY_PREFIX) + KEY_BODY_LENGTH
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}[0-9A-Za-z]{{{KEY_BODY_LENGTH}}}$")
_ALPHABET = string.ascii_letters + string.digits
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def generate_api_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(KEY_BODY_LENGTH))


def hash_api_key(key: str) -> str:
    """Only this digest is stored: a leaked table never yields a usable key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_authorization(header: str | None) -> str | None:
    """The key of a well-formed `Bearer tt_…` header, else None."""
    match = _BEARER.match(header or "")
    if not match or not KEY_PATTERN.match(match.group(1)):
        return None
    return match.group(1)


class Account(Model):
    id: str
    name: str
    created_at: Timestamp


class CreateApiKeyRequest(RequestModel):
    name: Name


class ApiKey(Model):
    """The key object as the API returns it; `key` only in the create response."""

    id: str
    name: str
    key_prefix: str
    last_used_at: Timestamp | None = None
    created_at: Timestamp
    revoked_at: Timestamp | None = None


class CreatedApiKey(ApiKey):
    key: str


class ApiKeyRecord(ApiKey):
    account_id: str
    key_hash: str

    def public(self) -> ApiKey:
        return ApiKey.model_validate(self.model_dump(include=set(ApiKey.model_fields)))


class Principal(Model):
    """Who a request acts for, as the authorizer established it."""

    account_id: str
    api_key_id: str
