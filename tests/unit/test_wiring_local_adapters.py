"""The local stack installs its adapters into the composition root, which never imports the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tt_core import wiring
from tt_core.errors import InternalError


@pytest.fixture
def local_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"TT_MODE": "local", "TT_TABLE_NAME": "t", "TT_BUCKET_NAME": "b"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(wiring, "_local_adapters", None)
    wiring.reset()
    yield
    wiring.reset()


def test_local_mode_without_the_local_stack_says_so(local_mode: None) -> None:
    with pytest.raises(InternalError, match="no local stack installed its adapters"):
        wiring._launcher()


def test_the_installed_adapters_are_built_with_the_object_store_and_settings(local_mode: None) -> None:
    built: list[tuple[str, Any, Any]] = []

    def factory(kind: str) -> Any:
        return lambda objects, settings: built.append((kind, objects, settings)) or kind

    wiring.install_local_adapters(
        wiring.LocalAdapters(
            launcher=factory("launcher"), playground=factory("pg"), base_model_weights=factory("weights")
        )
    )
    assert wiring._launcher() == "launcher"
    assert wiring.playground_service()._generator == "pg"
    assert wiring._base_model_weights() == "weights"
    assert [kind for kind, _, _ in built] == ["launcher", "pg", "weights"]
    assert all(objects is wiring._objects() and settings.mode == "local" for _, objects, settings in built)
