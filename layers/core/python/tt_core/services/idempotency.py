"""Replays a POST's response for a repeated `Idempotency-Key` (PRODUCT.md §2.5)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tt_core.errors import IdempotencyKeyInProgressError, IdempotencyKeyReusedError
from tt_core.models.idempotency import IdempotencyRecord
from tt_core.observability import tracer
from tt_core.ports import Clock, IdempotencyRepository

RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    body: Any
    replayed: bool


def canonical_hash(body: Any) -> str:
    """Bodies are compared as canonical JSON, so key order and spacing do not matter."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyService:
    def __init__(self, records: IdempotencyRepository, clock: Clock) -> None:
        self._records = records
        self._clock = clock

    @tracer.capture_method(capture_response=False)
    def run(
        self,
        *,
        account_id: str,
        scope: str,
        key: str | None,
        body: Any,
        action: Callable[[], tuple[int, Any]],
    ) -> IdempotentResult:
        """Runs `action` once per (account, scope, key); only 2xx responses are remembered."""
        if key is None:
            status, response = action()
            return IdempotentResult(status, response, replayed=False)
        record = IdempotencyRecord(
            account_id=account_id,
            scope=scope,
            key=key,
            body_hash=canonical_hash(body),
            expires_at=self._clock.now() + RETENTION,
        )
        existing = self._records.begin(record)
        if existing is not None:
            if existing.body_hash != record.body_hash:
                raise IdempotencyKeyReusedError(
                    "This Idempotency-Key was already used with a different request body."
                )
            if existing.status != "completed" or existing.response_status is None:
                raise IdempotencyKeyInProgressError(
                    "A request with this Idempotency-Key is still being processed; retry shortly."
                )
            return IdempotentResult(existing.response_status, existing.response_body, replayed=True)
        try:
            status, response = action()
        except BaseException:
            self._records.release(record)
            raise
        if 200 <= status < 300:
            self._records.complete(record, status, response)
        else:
            self._records.release(record)
        return IdempotentResult(status, response, replayed=False)
