"""Fine-tuned model reads (PRODUCT.md §11); models are created by the run workflow's Finish step."""

from __future__ import annotations

from tt_core.errors import NotFoundError
from tt_core.models.common import PageQuery, normalize_id
from tt_core.models.tuned_models import TunedModel
from tt_core.ports import TunedModelRepository


class TunedModelService:
    def __init__(self, models: TunedModelRepository) -> None:
        self._models = models

    def get(self, account_id: str, model_id: str) -> TunedModel:
        normalized = normalize_id(model_id)
        model = self._models.get(account_id, normalized) if normalized else None
        if model is None:
            raise NotFoundError("Model not found")
        return model.public()

    def list(self, account_id: str, page: PageQuery) -> tuple[list[TunedModel], int]:
        models, total = self._models.list_page(account_id, page)
        return [model.public() for model in models], total
