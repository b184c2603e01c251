"""The job's GPUs: a job given GPUs that torch cannot use fails at once instead of training on the CPU."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from tt_trainer.errors import DeviceError


def expected_gpus(environ: Mapping[str, str]) -> int:
    """GPUs the job was given: SageMaker's SM_NUM_GPUS when set (0: a CPU job), else what nvidia-smi lists."""
    value = (environ.get("SM_NUM_GPUS") or "").strip()
    if value:
        try:
            return max(0, int(value))
        except ValueError:
            pass
    nvidia_smi = shutil.which("nvidia-smi", path=environ.get("PATH"))
    if nvidia_smi is None:
        return 0
    try:
        listed = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))


def _why_torch_cannot(torch: object) -> str:
    version = getattr(torch, "__version__", "?")
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    if cuda is None:
        return f"torch {version} is a CPU-only build"
    try:
        torch.cuda.init()  # type: ignore[attr-defined]
    except Exception as exc:  # what torch.cuda.is_available() swallowed: often "driver too old"
        detail = " ".join(str(exc).split())[:240]
        return f"torch {version} is built for CUDA {cuda}: {detail}"
    return f"torch {version} is built for CUDA {cuda} but sees no CUDA device"


def require_usable_gpu(environ: Mapping[str, str]) -> None:
    """Fail fast when the job has GPUs but torch cannot use them: a 3B model on CPU in fp32 only times out."""
    expected = expected_gpus(environ)
    if expected == 0:
        return
    import torch

    if torch.cuda.is_available():
        return
    raise DeviceError(
        f"This job has {expected} GPU(s) but PyTorch cannot use them ({_why_torch_cannot(torch)}), so it "
        "would train on the CPU. The training image's torch must match the host's NVIDIA driver: build the "
        "image on its base image's own torch (training_image/README.md §8). To train on the CPU on purpose, "
        "set SM_NUM_GPUS=0."
    )
