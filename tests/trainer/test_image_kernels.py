"""training_image/linear_attention_kernels.py: Qwen3.5's kernels enter the image only where a wheel exists."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

IMAGE_DIR = Path(__file__).resolve().parents[2] / "training_image"
sys.path.insert(0, str(IMAGE_DIR))
try:
    from linear_attention_kernels import FLA, requirements
finally:
    sys.path.remove(str(IMAGE_DIR))

# The public base image's torch (pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime), the SageMaker base's Python.
BASE: dict[str, Any] = {
    "torch_version": "2.9.0+cu128",
    "cuda": "12.8",
    "cxx11_abi": True,
    "python": (3, 12),
    "machine": "x86_64",
    "has_triton": True,
}
WHEEL = (
    "causal-conv1d @ https://github.com/Dao-AILab/causal-conv1d/releases/download/v1.6.1.post4/"
    "causal_conv1d-1.6.1+cu12torch2.9cxx11abiTRUE-cp312-cp312-linux_x86_64.whl"
)
TORCH_2_6_WHEEL = WHEEL.replace("torch2.9cxx11abiTRUE", "torch2.6cxx11abiFALSE")


def test_the_base_images_get_both_kernels() -> None:
    assert requirements(**BASE) == [FLA, WHEEL]
    assert requirements(**{**BASE, "python": (3, 11)})[1].endswith("-cp311-cp311-linux_x86_64.whl")
    assert "+cu13torch2.9" in requirements(**{**BASE, "cuda": "13.0"})[1]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"torch_version": "2.13.0", "cuda": "13.0"}, [FLA]),  # no causal-conv1d build for torch 2.13
        ({"python": (3, 14)}, [FLA]),
        ({"machine": "aarch64"}, [FLA]),
        ({"cxx11_abi": False}, [FLA]),  # torch 2.7+ wheels are built for the C++11 ABI only
        ({"has_triton": False}, [WHEEL]),  # flash-linear-attention is Triton code
        ({"torch_version": "2.6.0+cu124", "cuda": "12.4", "cxx11_abi": False}, [TORCH_2_6_WHEEL]),  # no fla
        ({"torch_version": "2.13.0+cpu", "cuda": None}, []),  # the kernels are CUDA-only
    ],
)  # fmt: skip
def test_nothing_is_installed_without_a_published_build(change: dict[str, Any], expected: list[str]) -> None:
    assert requirements(**{**BASE, **change}) == expected


def test_the_dockerfile_installs_them_without_failing_the_build() -> None:
    dockerfile = (IMAGE_DIR / "Dockerfile").read_text()
    assert "RUN python /opt/tt/linear_attention_kernels.py > /opt/tt/kernels.txt" in dockerfile
    assert '|| echo "kernel not installed' in dockerfile  # a missing wheel leaves the (warned) fallback
    assert dockerfile.index("kernels.txt") < dockerfile.index("COPY tt_trainer/")
