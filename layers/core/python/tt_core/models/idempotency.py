"""Idempotency records for POSTs that honour `Idempotency-Key` (PRODUCT.md §2.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from tt_core.models.common import Model


class IdempotencyRecord(Model):
    account_id: str
    scope: str  # the request path: a key is scoped to the account and the path
    key: str
    body_hash: str
    status: Literal["in_progress", "completed"] = "in_progress"
    response_status: int | None = None
    response_body: Any = None
    expires_at: datetime
