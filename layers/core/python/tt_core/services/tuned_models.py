"""Fine-tuned models (PRODUCT.md §11): reads, signed downloads and delete; runs create them (Finish step)."""

from __future__ import annotations

import builtins
from datetime import timedelta

from tt_core.errors import ModelInUseError, NotFoundError
from tt_core.models.common import PageQuery, normalize_id
from tt_core.models.tuned_models import ModelDownload, TunedModel, TunedModelRecord
from tt_core.observability import tracer
from tt_core.ports import Clock, DownloadSigner, ModelUsage, ObjectStore, TunedModelStore

MODEL_NOT_FOUND = "Model not found"
DOWNLOAD_URL_TTL = timedelta(minutes=15)
ARTIFACT_FILENAME = "model.tar.gz"


class TunedModelService:
    def __init__(
        self,
        models: TunedModelStore,
        objects: ObjectStore,
        signer: DownloadSigner,
        usage: ModelUsage,
        clock: Clock,
    ) -> None:
        self._models = models
        self._objects = objects
        self._signer = signer
        self._usage = usage
        self._clock = clock

    def record(self, account_id: str, model_id: str) -> TunedModelRecord:
        """The stored model; another account's model is not found, like a missing one."""
        normalized = normalize_id(model_id)
        model = self._models.get(account_id, normalized) if normalized else None
        if model is None:
            raise NotFoundError(MODEL_NOT_FOUND)
        return model

    @tracer.capture_method
    def get(self, account_id: str, model_id: str) -> TunedModel:
        return self.record(account_id, model_id).public()

    @tracer.capture_method
    def list(self, account_id: str, page: PageQuery) -> tuple[list[TunedModel], int]:
        models, total = self._models.list_page(account_id, page)
        return [model.public() for model in models], total

    def list_all(self, account_id: str) -> builtins.list[TunedModelRecord]:
        return self._models.list_all(account_id)

    @tracer.capture_method(capture_response=False)
    def download(self, account_id: str, model_id: str) -> ModelDownload:
        model = self.record(account_id, model_id)
        expires_at = self._clock.now() + DOWNLOAD_URL_TTL
        url = self._signer.presign_get(model.artifact_key, DOWNLOAD_URL_TTL, ARTIFACT_FILENAME)
        return ModelDownload(url=url, expires_at=expires_at)

    @tracer.capture_method
    def delete(self, account_id: str, model_id: str) -> None:
        model = self.record(account_id, model_id)
        if self._usage.model_in_use(account_id, model.id):
            raise ModelInUseError(
                "Model is the parent of an active run: wait for the run to finish or cancel it."
            )
        if not self._models.delete(account_id, model.id):
            raise NotFoundError(MODEL_NOT_FOUND)
        self._objects.delete(model.artifact_key)
