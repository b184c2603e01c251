"""Dataset use cases (PRODUCT.md §8): the upload flow, reads, delete, and validation of stored objects."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta

from tt_core.errors import DatasetInUseError, NotFoundError, PayloadTooLargeError
from tt_core.models.common import PageQuery, normalize_id
from tt_core.models.datasets import (
    MAX_DATASET_BYTES,
    Dataset,
    DatasetRecord,
    FinalizeDatasetRequest,
    UploadUrl,
    UploadUrlRequest,
    ValidationReport,
)
from tt_core.observability import count, tracer
from tt_core.ports import Clock, DatasetRepository, DatasetUsage, IdGenerator, ObjectStore, UploadSigner
from tt_core.schema import ACCOUNTS_PREFIX, DATASET_OBJECT_SUFFIX

_NOT_FOUND = "Dataset not found"
UPLOAD_URL_TTL = timedelta(minutes=15)
# A dataset still pending_upload this long after its URL was issued is garbage (DynamoDB TTL).
PENDING_UPLOAD_TTL = timedelta(hours=24)
# Longer than the validator function's timeout: a claim older than this belongs to a crashed run.
VALIDATION_LEASE = timedelta(minutes=16)
FINALIZE_WAIT_S = 10.0
CHUNK_BYTES = 1024 * 1024
_OBJECT_KEY = re.compile(
    rf"^{ACCOUNTS_PREFIX}(?P<account>[0-9a-f-]{{36}})/datasets/(?P<dataset>[0-9a-f-]{{36}})/"
)


def object_key(account_id: str, dataset_id: str) -> str:
    """The server chooses the key: under the account's prefix, named by the dataset id, ending in the
    suffix the validator's notification filters on."""
    return f"{ACCOUNTS_PREFIX}{account_id}/datasets/{dataset_id}{DATASET_OBJECT_SUFFIX}"


class DatasetService:
    def __init__(
        self,
        datasets: DatasetRepository,
        objects: ObjectStore,
        signer: UploadSigner,
        clock: Clock,
        ids: IdGenerator,
        *,
        bucket: str,
        usage: DatasetUsage,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._usage = usage
        self._datasets = datasets
        self._objects = objects
        self._signer = signer
        self._clock = clock
        self._ids = ids
        self._bucket = bucket
        self._sleep = sleep

    def _uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    @tracer.capture_method(capture_response=False)
    def create_upload(self, account_id: str, request: UploadUrlRequest) -> UploadUrl:
        if request.size > MAX_DATASET_BYTES:
            raise PayloadTooLargeError(
                f"Dataset size exceeds the limit of {MAX_DATASET_BYTES} bytes (100 MB)."
            )
        now = self._clock.now()
        dataset_id = self._ids.new_id()
        key = object_key(account_id, dataset_id)
        record = DatasetRecord(
            id=dataset_id,
            account_id=account_id,
            name=request.name,
            description=request.description,
            status="pending_upload",
            storage_path=self._uri(key),
            declared_size=request.size,
            source="upload",
            created_at=now,
            updated_at=now,
            expires_at=now + PENDING_UPLOAD_TTL,
        )
        self._datasets.create(record)
        url, headers = self._signer.presign_put(key, request.contentType, UPLOAD_URL_TTL)
        return UploadUrl(
            dataset_id=dataset_id,
            path=record.storage_path,
            upload_url=url,
            method="PUT",
            headers=headers,
            expires_at=now + UPLOAD_URL_TTL,
        )

    def _record(self, account_id: str, dataset_id: str) -> DatasetRecord:
        normalized = normalize_id(dataset_id)
        record = self._datasets.get(account_id, normalized) if normalized else None
        if record is None:
            raise NotFoundError(_NOT_FOUND)
        return record

    @tracer.capture_method(capture_response=False)
    def get(self, account_id: str, dataset_id: str) -> Dataset:
        return self._record(account_id, dataset_id).public()

    @tracer.capture_method(capture_response=False)
    def list(self, account_id: str, page: PageQuery) -> tuple[list[Dataset], int]:
        records, total = self._datasets.list_page(account_id, page)
        return [record.public() for record in records], total

    @tracer.capture_method(capture_response=False)
    def finalize(self, account_id: str, request: FinalizeDatasetRequest) -> Dataset:
        match = _OBJECT_KEY.match(request.path.removeprefix(f"s3://{self._bucket}/"))
        record = None
        if match is not None and match["account"] == account_id:
            record = self._datasets.get(account_id, match["dataset"])
        if record is None or record.storage_path != request.path:
            raise NotFoundError("Dataset upload path not found for this account")
        self._datasets.set_details(
            account_id, record.id, request.name, request.description, self._clock.now()
        )
        # Give validation a moment to settle so most clients get the final status in one call.
        deadline = time.monotonic() + FINALIZE_WAIT_S
        dataset = self.get(account_id, record.id)
        while dataset.status in ("pending_upload", "validating") and time.monotonic() < deadline:
            self._sleep(0.25)
            dataset = self.get(account_id, record.id)
        return dataset

    @tracer.capture_method
    def delete(self, account_id: str, dataset_id: str) -> None:
        record = self._record(account_id, dataset_id)
        if self._usage.dataset_in_use(account_id, record.id):
            raise DatasetInUseError(
                "Dataset is used by an active run: wait for the run to finish or cancel it."
            )
        if not self._datasets.delete(account_id, record.id):
            raise NotFoundError(_NOT_FOUND)
        self._objects.delete(record.storage_path.removeprefix(f"s3://{self._bucket}/"))

    @tracer.capture_method(capture_response=False)
    def validate_object(self, key: str) -> DatasetRecord | None:
        """Validates a stored upload once, whatever the number or order of events (None: nothing to do)."""
        match = _OBJECT_KEY.match(key)
        if match is None:
            return None
        account_id, dataset_id = match["account"], match["dataset"]
        record = self._datasets.get(account_id, dataset_id)
        if record is None or record.storage_path != self._uri(key):
            return None
        claimed_at = self._clock.now()
        stale_before = claimed_at - VALIDATION_LEASE
        if not self._datasets.claim_validation(account_id, dataset_id, claimed_at, stale_before=stale_before):
            return None  # another event already validated it, or is validating it now
        try:
            report = self._validate(key, record.declared_size)
        except Exception:
            # A transient failure (S3 read, timeout budget): hand the claim back so the retried
            # event can validate it, instead of leaving the dataset in `validating`.
            self._datasets.release_validation(account_id, dataset_id, claimed_at)
            raise
        finished = self._datasets.finish_validation(
            account_id, dataset_id, report, claimed_at, self._clock.now()
        )
        if finished is not None:  # None: the claim was lost meanwhile
            count("DatasetsValidated" if report.valid else "DatasetsInvalid")
        return finished

    def _validate(self, key: str, declared_size: int | None) -> ValidationReport:
        size = self._objects.size(key)
        if size is None:
            raise FileNotFoundError(f"{key} is not readable yet")  # retried by the event's redelivery
        self._objects.clear_tags(key)  # no longer an abandoned upload for the lifecycle rule
        # Imported here: only the validator function checks files; the API's cold start skips it.
        from tt_core.datasets.validator import check_size, validate_stream

        # The size rules end validation at once, before a single line is read, as in the CLI's check.
        report = check_size(size, declared_size=declared_size)
        if report is not None:
            return report
        return validate_stream(self._objects.iter_chunks(key, CHUNK_BYTES), declared_size=declared_size)
