"""Fine-tuned models (PRODUCT.md §11): the record a completed run registers and the API object."""

from __future__ import annotations

from typing import Literal

from tt_core.models.common import Model, Timestamp


class TunedModel(Model):
    """The model object as the API returns it."""

    id: str
    name: str
    provider: Literal["tunedtensor"] = "tunedtensor"
    provider_model_id: str
    base_model: str
    run_id: str | None = None
    behavior_spec_id: str | None = None
    fine_tune_job_id: str
    description: str
    created_at: Timestamp


class ModelDownload(Model):
    """`GET /models/:id/download`: a signed GET URL of the artifact, valid 15 minutes."""

    url: str
    filename: Literal["model.tar.gz"] = "model.tar.gz"
    expires_at: Timestamp


class TunedModelRecord(TunedModel):
    """The stored model: the object plus its artifact key and the adapter's shape (for continued runs)."""

    account_id: str
    artifact_key: str
    lora_rank: int
    lora_alpha: int

    def public(self) -> TunedModel:
        return TunedModel.model_validate(self.model_dump(include=set(TunedModel.model_fields)))


def model_name(base_model: str, fine_tune_job_id: str) -> str:
    """`<base_model after "/">-ft-<first 8 chars of fine_tune_job_id>`."""
    return f"{base_model.split('/', 1)[-1]}-ft-{fine_tune_job_id[:8]}"
