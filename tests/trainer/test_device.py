"""GPUs: a job whose GPUs torch cannot use fails fast with a reason; bf16 only where it is native."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from tests.trainer.jobs import Job, item_rows, run_in_process
from tt_trainer.device import expected_gpus, require_usable_gpu
from tt_trainer.errors import DeviceError
from tt_trainer.train import pick_precision


def _fake_nvidia_smi(directory: Path, gpus: int) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "nvidia-smi"
    lines = "".join(f"echo 'GPU {i}: NVIDIA A10G (UUID: GPU-{i})'\n" for i in range(gpus))
    script.write_text(f"#!/bin/sh\n{lines}")
    script.chmod(0o755)
    return str(directory)


def test_the_gpus_a_job_has(tmp_path: Path) -> None:
    path = _fake_nvidia_smi(tmp_path / "bin", 2)
    assert expected_gpus({"SM_NUM_GPUS": "4"}) == 4
    assert expected_gpus({"SM_NUM_GPUS": "0", "PATH": path}) == 0  # SageMaker's count wins
    assert expected_gpus({"PATH": path}) == 2
    assert expected_gpus({"PATH": str(tmp_path / "empty")}) == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that cannot use a GPU")
def test_gpus_that_torch_cannot_use_fail_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as info:
        require_usable_gpu({"PATH": _fake_nvidia_smi(tmp_path / "bin", 1)})
    reason = str(info.value)
    assert reason.startswith("This job has 1 GPU(s) but PyTorch cannot use them (torch ")
    assert "would train on the CPU" in reason and "SM_NUM_GPUS=0" in reason
    require_usable_gpu({"SM_NUM_GPUS": "0", "PATH": _fake_nvidia_smi(tmp_path / "bin", 1)})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that cannot use a GPU")
def test_a_sagemaker_gpu_job_without_cuda_fails_before_loading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_NUM_GPUS", "1")
    job = Job(tmp_path, {"max_steps": 1}).write(item_rows(4))
    started = time.perf_counter()
    result = run_in_process(job)
    assert result.code == 1
    assert time.perf_counter() - started < 10
    reason = job.failure_file.read_text().strip()
    assert reason.startswith("This job has 1 GPU(s) but PyTorch cannot use them")
    assert result.events[-1] == {"event": "failed", "reason": reason}
    assert [e["event"] for e in result.events] == ["start", "failed"]  # before any row or weight is read
    assert json.loads((job.output_dir / "progress.json").read_text())["status"] == "failed"


def test_bf16_only_where_the_gpu_runs_it_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    def t4(including_emulation: bool = True) -> bool:
        return including_emulation  # a T4 or V100: bf16 only emulated

    def a10g(including_emulation: bool = True) -> bool:
        return True

    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", t4)
    assert pick_precision("auto", cuda).name == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", a10g)
    assert pick_precision("auto", cuda).name == "bf16"
