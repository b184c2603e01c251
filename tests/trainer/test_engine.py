"""The Trainer-based engine trains every catalogue family exactly as the hand-written loop it replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.trainer import engine_reference


@pytest.mark.parametrize("family", engine_reference.FAMILIES)
def test_the_first_20_step_losses_equal_the_hand_written_loops(family: str, tiny_model_dir: Path) -> None:
    recorded = json.loads(engine_reference.RECORDED.read_text())[family]
    losses = engine_reference.step_losses(family, tiny_model_dir)
    assert len(losses) == len(recorded) == engine_reference.STEPS
    assert losses == pytest.approx(recorded, abs=1e-4)
