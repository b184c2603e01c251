"""Fakes of the ports, in one place for every test."""

from __future__ import annotations

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


class StagedWeights:
    """BaseModelWeights: the base models a test has staged (tiny-chat always is available)."""

    def __init__(self, *staged: str) -> None:
        self.staged = set(staged)
        self.asked: list[str] = []

    def available(self, base_model: str) -> bool:
        self.asked.append(base_model)
        return base_model == "tunedtensor/tiny-chat" or base_model in self.staged

    def stage_command(self, base_model: str) -> str:
        return f"tt admin stage-base-model {base_model}"
