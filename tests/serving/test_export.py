"""`tt models export --merged`: merged weights in the base model's own dtype, checked on the file's bytes."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tt_serve.export import export_merged  # noqa: E402

SAFETENSORS_BYTES = {"BF16": 2, "F16": 2, "F32": 4}


def _header(path: Path) -> tuple[int, dict[str, Any]]:
    """The safetensors header: 8 bytes of little-endian length, then JSON naming each tensor's dtype."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return length, header


def _artifact(root: Path, base: Path, base_id: str) -> Path:
    """A random (non-zero) LoRA adapter on base, laid out as the trainer's artifact."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    torch.manual_seed(0)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    artifact = root / "artifact"
    get_peft_model(model, lora).save_pretrained(str(artifact))
    AutoTokenizer.from_pretrained(base).save_pretrained(artifact)
    (artifact / "base_model.json").write_text(json.dumps({"id": base_id, "revision": None}))
    return artifact


@pytest.fixture(scope="module")
def bf16_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-chat published in bf16, as every catalogue model is (config.json "dtype": "bfloat16")."""
    from transformers import AutoModelForCausalLM

    from tt_trainer.tiny import MARKER_FILE, ensure_tiny_model

    base = shutil.copytree(ensure_tiny_model(), tmp_path_factory.mktemp("bf16") / "base")
    (base / MARKER_FILE).unlink()
    AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16).save_pretrained(base)
    assert json.loads((base / "config.json").read_text())["dtype"] == "bfloat16"
    return base


def test_a_bf16_base_exports_bf16_weights(bf16_base: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    artifact = _artifact(tmp_path, bf16_base, "acme/tiny-bf16")
    out = export_merged(artifact, tmp_path / "merged", device="cpu", base_model_dir=bf16_base)
    weights = out / "model.safetensors"
    length, header = _header(weights)
    assert {t["dtype"] for t in header.values()} == {"BF16"}
    elements = sum(int(torch.Size(t["shape"]).numel()) for t in header.values())
    assert weights.stat().st_size == 8 + length + 2 * elements  # nothing but the header and 2 bytes a weight
    base_parameters = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(bf16_base).parameters())
    assert elements == base_parameters  # merged: no LoRA matrices left, tied embeddings stored once
    assert weights.stat().st_size == pytest.approx(2 * base_parameters, rel=0.01)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"

    # The adapter is in the weights: merged in fp32 on the CPU, rounded to bf16 once.
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(bf16_base)
    name = "model.layers.0.self_attn.q_proj.weight"
    delta = (merged.state_dict()[name].float() - base.state_dict()[name].float()).abs().max()
    assert merged.dtype == torch.bfloat16 and delta > 0


def test_an_fp32_base_stays_fp32(tmp_path: Path) -> None:
    from tt_trainer.tiny import ensure_tiny_model

    base = shutil.copytree(ensure_tiny_model(), tmp_path / "base")
    artifact = _artifact(tmp_path, base, "tunedtensor/tiny-chat")
    out = export_merged(artifact, tmp_path / "merged", device="cpu", base_model_dir=base)
    _, header = _header(out / "model.safetensors")
    assert {t["dtype"] for t in header.values()} == {"F32"}  # tiny-chat is published in fp32
