"""Prints the pip constraint that keeps the base image's own torch (`torch==<its version>`), or exits 1.

The image is built on a CUDA PyTorch image whose torch matches its CUDA libraries; a torch from PyPI is
built for whatever CUDA its release chose, which an older host driver cannot run. The Dockerfile installs the
requirements with this constraint, so no dependency can replace the base torch, and a base image without a
CUDA build of torch (>= 2.6, what transformers 5 needs) fails the build instead of training on the CPU.
"""

from __future__ import annotations

import sys

MIN_TORCH = (2, 6)


def constraint(version: str, cuda: str | None) -> str:
    """`torch==<version>`; ValueError when that torch cannot run the trainer on a GPU."""
    release = tuple(int(part) for part in version.split("+")[0].split(".")[:2])
    if cuda is None:
        raise ValueError(
            f"the base image's torch {version} is a CPU-only build: use a CUDA PyTorch base image"
        )
    if release < MIN_TORCH:
        wanted = ".".join(map(str, MIN_TORCH))
        raise ValueError(
            f"the base image's torch {version} is older than {wanted}, what transformers 5 needs"
        )
    return f"torch=={version}"


def main() -> int:
    try:
        import torch
    except ImportError:
        print("the base image has no torch: use a CUDA PyTorch base image", file=sys.stderr)
        return 1
    try:
        print(constraint(torch.__version__, torch.version.cuda))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
