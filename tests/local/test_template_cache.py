"""The synthesized template's cache, shared by processes that start together (two stacks, test workers)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from tt_local import template as template_cache

TEMPLATE = {"Resources": {"Table": {"Type": "AWS::DynamoDB::Table"}}}


@pytest.fixture
def synthesized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The cache in tmp_path, and a synthesizer that counts its calls (the real one takes seconds)."""
    calls: list[int] = []

    def synth_template() -> dict[str, Any]:
        calls.append(1)
        return TEMPLATE

    monkeypatch.setattr(template_cache, "CACHE_DIR", tmp_path)
    monkeypatch.setitem(sys.modules, "infra.app", types.SimpleNamespace(synth_template=synth_template))
    return calls


def test_the_template_is_synthesized_once_and_stale_copies_go(tmp_path: Path, synthesized: list[int]) -> None:
    (tmp_path / "TunedTensor-0000000000000000.template.json").write_text("{}")
    assert template_cache.load_template() == TEMPLATE
    assert template_cache.load_template() == TEMPLATE
    assert synthesized == [1]
    current = f"TunedTensor-{template_cache._fingerprint()}.template.json"
    assert [path.name for path in tmp_path.iterdir()] == [current]


def test_a_reader_never_sees_a_half_written_template(
    synthesized: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_text = Path.write_text
    read_meanwhile: list[dict[str, Any]] = []

    def interrupted(path: Path, text: str, *args: Any, **kwargs: Any) -> int:
        if read_meanwhile:
            return write_text(path, text, *args, **kwargs)
        write_text(path, text[: len(text) // 2])
        read_meanwhile.append({})  # another process loads the template while this one writes it
        read_meanwhile[0] = template_cache.load_template()
        return write_text(path, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", interrupted)
    assert template_cache.load_template() == TEMPLATE
    assert read_meanwhile == [TEMPLATE]
    assert json.loads(next(template_cache.CACHE_DIR.glob("*.template.json")).read_text()) == TEMPLATE
