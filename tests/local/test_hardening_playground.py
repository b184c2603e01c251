"""The local playground (PRODUCT.md §12) with crafted artifacts: a clean 400, never a 500, nothing written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.test_archive import THROUGH_THE_PRODUCT, _archive, _file, _tree, crafted_archive
from tests.serving.test_model_services import ACCOUNT, Models, _record
from tt_core.errors import InvalidRequestError
from tt_core.models.playground import PlaygroundCompletionRequest
from tt_core.services.playground import PlaygroundService
from tt_local.playground import LocalPlaygroundGenerator


class Objects:
    """The object store the generator downloads an artifact from: one object."""

    def __init__(self, key: str, body: bytes) -> None:
        self.objects = {key: body}

    def iter_chunks(self, key: str, chunk_bytes: int) -> Iterator[bytes]:
        body = self.objects[key]
        for start in range(0, len(body), chunk_bytes):
            yield body[start : start + chunk_bytes]


class Generator(LocalPlaygroundGenerator):
    def has_weights(self, base_model: str) -> bool:
        return True  # the base weights are never reached: the artifact is refused first


def _refusal(archive: Path, cache: Path) -> InvalidRequestError:
    """What the playground answers for a fine-tuned model whose artifact is `archive`."""
    record = _record()
    objects = Objects(str(record.artifact_key), archive.read_bytes())
    service = PlaygroundService(Models(record), Generator(objects, cache))  # type: ignore[arg-type]
    request = PlaygroundCompletionRequest.model_validate(
        {"model": record.provider_model_id, "messages": [{"role": "user", "content": "hi"}]}
    )
    with pytest.raises(InvalidRequestError) as refused:
        service.complete(ACCOUNT, request)
    # The API answers a TtError with its own status and code: 400 validation_error on `model`.
    assert refused.value.http_status == 400 and refused.value.code == "validation_error"
    assert refused.value.details[0].field == "model"
    return refused.value


@pytest.mark.parametrize("case", THROUGH_THE_PRODUCT)
def test_a_crafted_artifact_is_a_validation_error_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    archive = crafted_archive(tmp_path, case)
    before = _tree(tmp_path)
    assert "archive" in _refusal(archive, tmp_path / "cache").details[0].message
    # Only the (empty) cache folders: no model, no staging, no download kept, nothing outside.
    assert {p for p in _tree(tmp_path) - before if (tmp_path / p).is_file()} == set()
    assert (tmp_path / "outside" / "secret").read_text() == "keep"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [(b'{"system_prompt": "Hi."}', "does not name its base model"), (b"{nope", "not a readable JSON spec")],
)
def test_an_artifact_that_extracts_but_cannot_load_is_a_validation_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: bytes, reason: str
) -> None:
    from tt_serve.runtime import ModelRuntime, RuntimeLoadError

    def load(model_dir: Path) -> ModelRuntime:
        raise RuntimeLoadError(f"{model_dir / 'adapter_config.json'} does not name its base model.")

    monkeypatch.setattr(ModelRuntime, "load", load)
    files = [_file("adapter_config.json", b"{}"), _file("tunedtensor.json", spec)]
    archive = _archive(tmp_path / "model.tar.gz", *files)
    assert reason in _refusal(archive, tmp_path / "cache").details[0].message


def test_an_oversized_prompt_is_refused_without_waiting_for_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.serving.fakes import FakeRuntime
    from tt_core.models.playground import PlaygroundTarget
    from tt_serve.completions import BYTES_PER_TOKEN
    from tt_serve.runtime import ModelRuntime

    runtime = FakeRuntime("fine", context_length=100)
    monkeypatch.setattr(ModelRuntime, "load", lambda *args, **kwargs: runtime)
    generator = Generator(Objects("unused", b""), tmp_path)
    target = PlaygroundTarget(name="tunedtensor/tiny-chat", base_model="tunedtensor/tiny-chat")
    user = [{"role": "user", "content": "hi"}]
    assert generator.complete(target, user, temperature=0, max_tokens=8).content == "fine"
    huge = [{"role": "user", "content": "x" * (100 * BYTES_PER_TOKEN + 1)}]
    refusals: list[InvalidRequestError] = []

    def ask() -> None:
        try:
            generator.complete(target, huge, temperature=0, max_tokens=8)
        except InvalidRequestError as error:
            refusals.append(error)

    with generator._lock:  # the model is busy: the refusal must not wait for it
        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(timeout=20)
        assert not asking.is_alive()
    assert refusals[0].details[0].field == "messages" and "bytes" in refusals[0].details[0].message
    assert huge[0]["content"] not in runtime.tokenised and len(runtime.calls) == 1


def test_stop_and_seed_reach_the_model_as_in_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.serving.fakes import FakeRuntime
    from tt_core.models.playground import PlaygroundTarget
    from tt_serve.runtime import ModelRuntime

    runtime = FakeRuntime("One two END three")
    monkeypatch.setattr(ModelRuntime, "load", lambda *args, **kwargs: runtime)
    generator = Generator(Objects("unused", b""), tmp_path)
    target = PlaygroundTarget(name="tunedtensor/tiny-chat", base_model="tunedtensor/tiny-chat")
    user = [{"role": "user", "content": "hi"}]
    answer = generator.complete(target, user, temperature=1, max_tokens=8, stop=["END"], seed=9)
    assert (answer.content, answer.finish_reason, answer.completion_tokens) == ("One two ", "stop", 3)
    assert generator.complete(target, user, temperature=0, max_tokens=8).content == "One two END three"
    assert [call["seed"] for call in runtime.calls] == [9, None]
