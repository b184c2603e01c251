"""Fakes of the ports, in one place for every test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 3, 6, 8, 27, 33, 492000, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class SequentialIds:
    """Deterministic UUID v4-shaped ids: 00000000-0000-4000-8000-000000000001, …"""

    def __init__(self) -> None:
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return f"00000000-0000-4000-8000-{self.count:012d}"


class MemoryObjectStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = body

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]

    def size(self, key: str) -> int | None:
        return len(self.objects[key]) if key in self.objects else None

    def iter_chunks(self, key: str, chunk_bytes: int) -> Iterator[bytes]:
        data = self.objects[key]
        yield from (data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes))

    def clear_tags(self, key: str) -> None:
        pass  # the fake keeps no tags

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
