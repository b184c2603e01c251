"""Prints, one per line, the pip requirements of Qwen3.5's linear-attention kernels that have a published
build for the base image's torch, CUDA, Python and CPU; nothing for a kernel without one.

transformers runs Qwen3.5's Gated DeltaNet layers with flash-linear-attention's Triton kernels and
causal-conv1d's CUDA kernel when they import, else with a PyTorch fallback that is correct but several times
slower (the trainer then says so in a `warning` event). The image has no CUDA compiler (a runtime base), so a
kernel is only installed where a built wheel exists:

- flash-linear-attention is pure Python over Triton (py3-none-any on PyPI): any torch >= 2.7 with Triton,
  which CUDA builds of torch bring along.
- causal-conv1d publishes CUDA wheels on its GitHub release only (the PyPI sdist compiles, or fetches the
  release wheel of its own version tag, which the 1.6.1 tag lacks). Release v1.6.1.post4 holds
  causal_conv1d-1.6.1+cu<CUDA major>torch<major.minor>cxx11abi<TRUE|FALSE>-cp3XX-cp3XX-linux_<arch>.whl for
  torch 2.6 to 2.10, CUDA 12 (CUDA 11 up to torch 2.7, CUDA 13 from torch 2.9), CPython 3.10 to 3.13, the
  C++11 ABI only from torch 2.7 (what pip's torch uses); x86_64 (the image's platform; some aarch64 builds
  are missing). The SageMaker base (torch 2.9, CUDA 12 or 13, Python 3.12) and the public one (torch 2.9, CUDA
  12.8) both have one.
"""

from __future__ import annotations

import platform
import sys

FLA = "flash-linear-attention==0.6.0"
CAUSAL_CONV1D_RELEASE = "v1.6.1.post4"
CAUSAL_CONV1D_VERSION = "1.6.1"
CAUSAL_CONV1D_URL = (
    "https://github.com/Dao-AILab/causal-conv1d/releases/download/{tag}/"
    "causal_conv1d-{version}+cu{cuda}torch{torch}cxx11abi{abi}-{py}-{py}-linux_{arch}.whl"
)
CAUSAL_CONV1D_TORCH = ((2, 6), (2, 10))
CAUSAL_CONV1D_PYTHON = ((3, 10), (3, 13))


def _release(version: str) -> tuple[int, int]:
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def requirements(
    *,
    torch_version: str,
    cuda: str | None,
    cxx11_abi: bool,
    python: tuple[int, int],
    machine: str,
    has_triton: bool,
) -> list[str]:
    """The kernels' requirement lines for this environment (a CPU-only torch gets none)."""
    if cuda is None:
        return []
    torch_release = _release(torch_version)
    found = [FLA] if torch_release >= (2, 7) and has_triton and python >= (3, 10) else []
    cuda_major = int(cuda.split(".")[0])
    low, high = CAUSAL_CONV1D_TORCH
    built = (
        low <= torch_release <= high
        and CAUSAL_CONV1D_PYTHON[0] <= python <= CAUSAL_CONV1D_PYTHON[1]
        and machine == "x86_64"
        and (
            cuda_major == 12
            or (cuda_major == 11 and torch_release <= (2, 7))
            or (cuda_major == 13 and torch_release >= (2, 9))
        )
        and (cxx11_abi or torch_release < (2, 7))
    )
    if built:
        wheel = CAUSAL_CONV1D_URL.format(
            tag=CAUSAL_CONV1D_RELEASE,
            version=CAUSAL_CONV1D_VERSION,
            cuda=cuda_major,
            torch=f"{torch_release[0]}.{torch_release[1]}",
            abi="TRUE" if cxx11_abi else "FALSE",
            py=f"cp{python[0]}{python[1]}",
            arch=machine,
        )
        found.append(f"causal-conv1d @ {wheel}")
    return found


def main() -> int:
    try:
        import torch
    except ImportError:
        return 0
    try:
        import triton  # noqa: F401
    except ImportError:
        has_triton = False
    else:
        has_triton = True
    for line in requirements(
        torch_version=torch.__version__,
        cuda=torch.version.cuda,
        cxx11_abi=bool(torch._C._GLIBCXX_USE_CXX11_ABI),
        python=sys.version_info[:2],
        machine=platform.machine(),
        has_triton=has_triton,
    ):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
