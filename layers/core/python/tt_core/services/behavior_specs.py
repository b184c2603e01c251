"""Behaviour spec use cases (PRODUCT.md §6)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tt_core.errors import InvalidRequestError, NotFoundError, SpecModifiedError
from tt_core.models.behavior_specs import (
    BehaviorSpecDetail,
    BehaviorSpecListItem,
    BehaviorSpecRecord,
    CreateBehaviorSpecRequest,
    UpdateBehaviorSpecRequest,
)
from tt_core.models.common import PageQuery, normalize_id
from tt_core.observability import tracer
from tt_core.ports import Clock, IdGenerator, SpecDeletionHook, SpecRepository, SpecRunViews

_NOT_FOUND = "Behaviour spec not found"
# Without If-Match a PUT is last-writer-wins: a concurrent write only makes it re-read and retry.
_UNGUARDED_ATTEMPTS = 3


class SpecService:
    def __init__(
        self,
        specs: SpecRepository,
        clock: Clock,
        ids: IdGenerator,
        *,
        default_base_model: str,
        runs: SpecRunViews,
        deletion_hooks: Sequence[SpecDeletionHook] = (),
    ) -> None:
        self._runs = runs
        self._specs = specs
        self._clock = clock
        self._ids = ids
        self._default_base_model = default_base_model
        self._deletion_hooks = deletion_hooks

    @tracer.capture_method(capture_response=False)
    def create(self, account_id: str, request: CreateBehaviorSpecRequest) -> BehaviorSpecRecord:
        now = self._clock.now()
        fields = request.model_dump()
        fields["base_model"] = request.base_model or self._default_base_model
        record = BehaviorSpecRecord(
            **fields, id=self._ids.new_id(), account_id=account_id, created_at=now, updated_at=now
        )
        self._specs.create(record)
        return record

    @tracer.capture_method(capture_response=False)
    def list(self, account_id: str, page: PageQuery) -> tuple[list[BehaviorSpecListItem], int]:
        records, total = self._specs.list_page(account_id, page)
        stats = self._runs.spec_stats(account_id, [record.id for record in records])
        items = [
            BehaviorSpecListItem(
                **record.public().model_dump(),
                example_count=len(record.examples),
                **stats[record.id].model_dump(),
            )
            for record in records
        ]
        return items, total

    def _record(self, account_id: str, spec_id: str) -> BehaviorSpecRecord:
        normalized = normalize_id(spec_id)
        record = self._specs.get(account_id, normalized) if normalized else None
        if record is None:
            raise NotFoundError(_NOT_FOUND)
        return record

    @tracer.capture_method(capture_response=False)
    def get(self, account_id: str, spec_id: str) -> BehaviorSpecDetail:
        record = self._record(account_id, spec_id)
        run_count = self._runs.spec_stats(account_id, [record.id])[record.id].run_count
        return BehaviorSpecDetail(
            **record.public().model_dump(),
            run_count=run_count,
            runs=self._runs.spec_runs(account_id, record.id),
        )

    @tracer.capture_method(capture_response=False)
    def update(
        self,
        account_id: str,
        spec_id: str,
        request: UpdateBehaviorSpecRequest,
        *,
        expected_updated_at: datetime | None = None,
    ) -> BehaviorSpecRecord:
        attempts = 1 if expected_updated_at is not None else _UNGUARDED_ATTEMPTS
        for _ in range(attempts):
            current = self._record(account_id, spec_id)
            if request.id is not None and normalize_id(request.id) != current.id:
                raise InvalidRequestError.for_field("id", "must match the id in the path")
            if expected_updated_at is not None and expected_updated_at != current.updated_at:
                raise SpecModifiedError(
                    "Behaviour spec was modified since you read it: fetch it again and reapply your change."
                )
            # updated_at moves forward by at least 1 ms, so ETags of successive versions always differ.
            updated_at = max(self._clock.now(), current.updated_at + timedelta(milliseconds=1))
            updated = BehaviorSpecRecord.model_validate(
                {
                    **current.model_dump(),
                    **request.changes(),
                    "updated_at": updated_at,
                    "version": current.version + 1,
                }
            )
            if self._specs.replace(updated, expected_version=current.version):
                return updated
        raise SpecModifiedError("Behaviour spec was modified concurrently: fetch it again and retry.")

    @tracer.capture_method
    def delete(self, account_id: str, spec_id: str) -> None:
        record = self._record(account_id, spec_id)
        for hook in self._deletion_hooks:
            hook.spec_deleted(account_id, record.id)
        if not self._specs.delete(account_id, record.id):
            raise NotFoundError(_NOT_FOUND)
