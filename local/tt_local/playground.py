"""Playground completions on the local stack (PRODUCT.md §12): the serving runtime, loaded models cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tt_core.errors import InvalidRequestError
from tt_core.models.playground import PlaygroundGeneration, PlaygroundTarget
from tt_core.ports import ObjectStore

LOADED_MODELS = 2  # each holds a model's weights in memory: keep the two used last
CHUNK_BYTES = 1024 * 1024


class LocalPlaygroundGenerator:
    def __init__(self, objects: ObjectStore, cache_dir: Path, *, capacity: int = LOADED_MODELS) -> None:
        self._objects = objects
        self._cache_dir = cache_dir
        self._capacity = capacity
        self._engines: OrderedDict[str, Any] = OrderedDict()
        self._engines_lock = threading.Lock()  # taken before _lock, never while holding it
        # One generation (or load) at a time, as `tt models serve` does.
        self._lock = threading.Lock()

    def has_weights(self, base_model: str) -> bool:
        import tempfile

        from tt_trainer.base_model import resolve_base_model
        from tt_trainer.errors import TrainerError

        with tempfile.TemporaryDirectory(prefix="tt-playground-") as scratch:
            try:
                # Builds tiny-chat on first use; other ids only from the local Hugging Face cache.
                resolve_base_model(base_model, None, staged_dir=None, scratch=Path(scratch))
            except TrainerError:
                return False
        return True

    def _artifact_dir(self, target: PlaygroundTarget) -> Path:
        from tt_serve.archive import UnsafeArchiveError
        from tt_serve.targets import extracted_model

        assert target.model_id is not None and target.artifact_key is not None
        root = self._cache_dir / target.model_id
        archive = root / "model.tar.gz"
        if not (root / "model" / "adapter_config.json").is_file():
            root.mkdir(parents=True, exist_ok=True)
            partial = archive.with_name(archive.name + ".part")
            with partial.open("wb") as out:
                for chunk in self._objects.iter_chunks(target.artifact_key, CHUNK_BYTES):
                    out.write(chunk)
            partial.replace(archive)
        try:
            return extracted_model(archive, root / "model", force=False)
        except (UnsafeArchiveError, FileNotFoundError) as error:
            archive.unlink(missing_ok=True)  # refused: nothing of it is kept
            raise InvalidRequestError.for_field(
                "model", f"its artifact is not a usable model archive: {error}"
            ) from None

    def _engine(self, target: PlaygroundTarget) -> Any:
        """The target's engine, loaded (waiting for any generation) unless it is one of the last used."""
        key = target.model_id or target.base_model
        if key in self._engines:
            self._engines.move_to_end(key)
            return self._engines[key]
        with self._lock:
            engine = self._load(target)
        self._engines[key] = engine
        while len(self._engines) > self._capacity:
            self._engines.popitem(last=False)
        return engine

    def _load(self, target: PlaygroundTarget) -> Any:
        from tt_serve.completions import ChatEngine, spec_prompt_from_file
        from tt_serve.runtime import SPEC_FILE, ModelRuntime, RuntimeLoadError

        if target.artifact_key is None:
            return ChatEngine(ModelRuntime.load(None, base_model=target.base_model))
        model_dir = self._artifact_dir(target)
        spec = model_dir / SPEC_FILE
        try:
            spec_prompt = spec_prompt_from_file(spec) if spec.is_file() else None
            runtime = ModelRuntime.load(model_dir)
        except (ValueError, RuntimeLoadError) as error:  # the artifact's own spec or config is unusable
            raise InvalidRequestError.for_field("model", f"its artifact cannot be loaded: {error}") from None
        return ChatEngine(runtime, spec_prompt=spec_prompt or None)

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
        from tt_serve.completions import ChatRequest, RequestError

        with self._engines_lock:
            engine = self._engine(target)
        request = ChatRequest(
            messages=[dict(m) for m in messages],
            max_tokens=max_tokens,
            temperature=temperature,
            stop=tuple(stop),
            seed=seed,
        )
        try:
            # The prompt is checked and tokenised first, outside the lock: only generating waits for it.
            completion = engine.complete(request, turn=self._lock)
        except RequestError as error:
            raise InvalidRequestError.for_field("messages", str(error)) from None
        return PlaygroundGeneration(
            content=completion.content,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )
