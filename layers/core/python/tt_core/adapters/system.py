"""Clock and id generator of the real world."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        # Millisecond precision: what is stored is exactly what the API returns and ETags compare.
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


class UuidGenerator:
    def new_id(self) -> str:
        return str(uuid.uuid4())
