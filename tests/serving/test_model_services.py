"""TunedModelService and PlaygroundService with fakes: downloads, delete guards, model resolution, 501."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.fakes import FixedClock
from tt_core.errors import (
    InvalidRequestError,
    ModelInUseError,
    NotFoundError,
    PlaygroundUnavailableError,
    details_from_errors,
)
from tt_core.models.playground import PlaygroundCompletionRequest, PlaygroundGeneration, PlaygroundTarget
from tt_core.models.tuned_models import TunedModelRecord
from tt_core.services.playground import PlaygroundService
from tt_core.services.tuned_models import TunedModelService

ACCOUNT = "acc00000-0000-4000-8000-000000000001"
MODEL_ID = "0dd10000-0000-4000-8000-000000000009"


def _record(**fields: Any) -> TunedModelRecord:
    return TunedModelRecord.model_validate(
        {
            "id": MODEL_ID,
            "account_id": ACCOUNT,
            "name": "tiny-chat-ft-b3e2b918",
            "provider_model_id": f"s3://bucket/accounts/{ACCOUNT}/models/{MODEL_ID}/model.tar.gz",
            "base_model": "tunedtensor/tiny-chat",
            "run_id": None,
            "behavior_spec_id": None,
            "fine_tune_job_id": "b3e2b918-0000-4000-8000-000000000005",
            "description": "Bot run #1",
            "created_at": "2026-03-06T08:27:33.492Z",
            "artifact_key": f"accounts/{ACCOUNT}/models/{MODEL_ID}/model.tar.gz",
            "lora_rank": 16,
            "lora_alpha": 32,
            **fields,
        }
    )


class Models:
    def __init__(self, *records: TunedModelRecord) -> None:
        self.records = {r.id: r for r in records}

    def get(self, account_id: str, model_id: str) -> TunedModelRecord | None:
        record = self.records.get(model_id)
        return record if record and record.account_id == account_id else None

    def list_all(self, account_id: str) -> list[TunedModelRecord]:
        return [r for r in self.records.values() if r.account_id == account_id]

    def delete(self, account_id: str, model_id: str) -> bool:
        return self.records.pop(model_id, None) is not None

    def list_page(self, account_id: str, page: Any) -> tuple[list[TunedModelRecord], int]:
        found = self.list_all(account_id)
        return found, len(found)


class Objects:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, key: str) -> None:
        self.deleted.append(key)


class Signer:
    def presign_get(self, key: str, expires: timedelta, filename: str) -> str:
        return f"https://storage/{key}?expires={int(expires.total_seconds())}&name={filename}"


class Usage:
    def __init__(self, busy: bool = False) -> None:
        self.busy = busy

    def model_in_use(self, account_id: str, model_id: str) -> bool:
        return self.busy


def _service(models: Models, busy: bool = False) -> tuple[TunedModelService, Objects]:
    objects = Objects()
    return TunedModelService(models, objects, Signer(), Usage(busy), FixedClock()), objects  # type: ignore[arg-type]


def test_download_is_a_15_minute_url_of_the_artifact() -> None:
    service, _ = _service(Models(_record()))
    download = service.download(ACCOUNT, MODEL_ID.upper())
    assert download.url == f"https://storage/{_record().artifact_key}?expires=900&name=model.tar.gz"
    assert download.model_dump(mode="json")["expires_at"] == "2026-03-06T08:42:33.492Z"
    with pytest.raises(NotFoundError):
        service.download("acc00000-0000-4000-8000-000000000002", MODEL_ID)


def test_delete_removes_record_and_artifact_unless_a_run_continues_it() -> None:
    service, objects = _service(Models(_record()), busy=True)
    with pytest.raises(ModelInUseError):
        service.delete(ACCOUNT, MODEL_ID)
    assert objects.deleted == []
    models = Models(_record())
    service, objects = _service(models)
    service.delete(ACCOUNT, MODEL_ID)
    assert models.records == {} and objects.deleted == [_record().artifact_key]
    with pytest.raises(NotFoundError):
        service.delete(ACCOUNT, MODEL_ID)


class Generator:
    def __init__(self, weights: bool = True) -> None:
        self.weights = weights
        self.targets: list[PlaygroundTarget] = []
        self.settings: list[dict[str, Any]] = []

    def has_weights(self, base_model: str) -> bool:
        return self.weights

    def complete(
        self,
        target: PlaygroundTarget,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> PlaygroundGeneration:
        self.targets.append(target)
        self.settings.append({"stop": list(stop), "seed": seed})
        return PlaygroundGeneration("Hi.", "stop", prompt_tokens=12, completion_tokens=3)


def _request(model: str) -> PlaygroundCompletionRequest:
    return PlaygroundCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "x"}]}
    )


def test_playground_resolves_catalogue_aliases_and_the_accounts_models() -> None:
    ticks = iter([10.0, 10.25])
    generator = Generator()
    service = PlaygroundService(Models(_record()), generator, timer=lambda: next(ticks))
    completion = service.complete(ACCOUNT, _request("TINY-CHAT"))
    assert completion.model == "tunedtensor/tiny-chat" and completion.latency_ms == 250.0
    assert completion.usage.total_tokens == 15 and generator.targets[0].artifact_key is None
    for name in (_record().provider_model_id, MODEL_ID, "tiny-chat-ft-b3e2b918"):
        service = PlaygroundService(Models(_record()), generator, timer=lambda: 0.0)
        assert service.complete(ACCOUNT, _request(name)).model == _record().provider_model_id
    assert generator.targets[-1].artifact_key == _record().artifact_key
    with pytest.raises(InvalidRequestError) as unknown:
        service.complete(ACCOUNT, _request("gpt-4o"))
    assert unknown.value.details and unknown.value.details[0].field == "model"
    with pytest.raises(InvalidRequestError):
        service.complete("acc00000-0000-4000-8000-000000000002", _request(MODEL_ID))  # another account's


def test_playground_without_weights_is_400_and_without_a_generator_501() -> None:
    with pytest.raises(InvalidRequestError, match="not on this machine"):
        PlaygroundService(Models(), Generator(weights=False)).complete(ACCOUNT, _request("Qwen/Qwen3.5-2B"))
    with pytest.raises(PlaygroundUnavailableError) as hosted:
        PlaygroundService(Models(), None).complete(ACCOUNT, _request("Qwen/Qwen3.5-2B"))
    assert (hosted.value.http_status, hosted.value.code) == (501, "playground_unavailable")
    assert hosted.value.message == "Playground inference is unavailable for hosted fine-tuned models."
    listed = PlaygroundService(Models(_record()), None).models(ACCOUNT)
    assert [m.id for m in listed.fine_tuned_models] == [_record().provider_model_id]
    assert listed.base_models[0].model_dump() == {
        "id": "google/gemma-4-E2B-it", "name": "gemma-4-E2B-it", "type": "base", "context_length": 128_000,
    }  # fmt: skip


def test_playground_takes_stop_seed_and_n_as_serving_does() -> None:
    generator = Generator()
    service = PlaygroundService(Models(), generator, timer=lambda: 0.0)
    user = [{"role": "user", "content": "x"}]
    for stop, seed, expected in [("END", 4, ["END"]), (["a", "b"], None, ["a", "b"]), (None, -1, [])]:
        body = {"model": "tiny-chat", "messages": user, "stop": stop, "seed": seed, "n": 1}
        service.complete(ACCOUNT, PlaygroundCompletionRequest.model_validate(body))
        assert generator.settings[-1] == {"stop": expected, "seed": seed}
    bad = [("stop", ["a", "b", "c", "d", "e"]), ("stop", ""), ("stop", ["a", ""]), ("stop", 3),
           ("seed", "1"), ("seed", True), ("seed", 1.5), ("n", 2), ("n", True)]  # fmt: skip
    for field, value in bad:
        with pytest.raises(ValidationError) as refused:
            PlaygroundCompletionRequest.model_validate({"model": "tiny-chat", "messages": user, field: value})
        # The API answers 400 validation_error with one detail per error, on the field itself.
        assert [detail.field for detail in details_from_errors(refused.value.errors())] == [field]
