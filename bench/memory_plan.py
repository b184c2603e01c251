"""The memory plan of every catalogue model on its training profile's GPU, at the profile's worst case.

Run: python bench/memory_plan.py [--max-seq-length 2048] [--batch-size 8] [--lora-rank 16]. For each base
model of the catalogue and the instance its training profile names (tt_core.schema.DEFAULT_TRAINING_PROFILES),
tt_core.runs.memory_plan plans one job with rows of max_seq_length tokens and micro-batches of up to
min(batch_size, 4) sequences, and prints the bytes of the frozen parameters, the LoRA adapters (weights and
gradients), AdamW's state, the activations and the chunked loss, the micro-batch the plan chose, whether
it checkpoints, the headroom and `fits yes/no` (at least 10 % of the GPU free). A CPU profile is planned
against its instance's memory. Pure arithmetic: no GPU, runs in a second. Writes
bench/results/memory_plan.json; exits 1 when a row does not fit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "core" / "python"))

from tt_core.models.base_models import CATALOGUE  # noqa: E402
from tt_core.runs.memory_plan import DEFAULT_MICRO_BATCH_SIZE, HEADROOM, MemoryPlan, plan_memory  # noqa: E402
from tt_core.schema import DEFAULT_TRAINING_PROFILES, TrainingProfile  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "memory_plan.json"
# Host memory of the CPU instances a profile may name (GB), for profiles without a GPU.
CPU_INSTANCE_MEMORY_GB = {"ml.m5.large": 8, "ml.m5.xlarge": 16, "ml.m5.2xlarge": 32}
GB = 1e9


def profile_for(model_id: str) -> TrainingProfile:
    return DEFAULT_TRAINING_PROFILES.get(model_id) or DEFAULT_TRAINING_PROFILES["default"]


def row(model_id: str, args: argparse.Namespace) -> dict[str, Any]:
    model = next(m for m in CATALOGUE if m.id == model_id)
    profile = profile_for(model_id)
    memory_gb = profile.gpu_memory_gb if profile.gpus else CPU_INSTANCE_MEMORY_GB[profile.instance_type]
    assert memory_gb is not None, f"{profile.instance_type} has GPUs but no gpu_memory_gb"
    plan: MemoryPlan = plan_memory(
        model.architecture,
        gpu_memory_gb=memory_gb,
        max_seq_length=min(args.max_seq_length, model.context_length),
        micro_batch_size=min(args.batch_size, DEFAULT_MICRO_BATCH_SIZE),
        lora_rank=args.lora_rank,
    )
    m = plan.memory
    return {
        "model": model_id,
        "instance_type": profile.instance_type,
        "device": f"{profile.gpus} GPU × {memory_gb:g} GB" if profile.gpus else f"CPU, {memory_gb:g} GB",
        "memory_gb": memory_gb,
        "max_seq_length": plan.max_seq_length,
        "micro_batch_sequences": plan.micro_batch_sequences,
        "micro_batch_tokens": plan.micro_batch_tokens,
        "gradient_checkpointing": plan.gradient_checkpointing,
        "bytes": {
            "parameters": m.parameters,
            "lora": m.lora,
            "optimizer": m.optimizer,
            "activations": m.activations,
            "loss": m.loss,
            "runtime": m.runtime,
            "total": m.total,
        },
        "headroom": round(plan.headroom, 4),
        "fits": plan.fits,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seq-length", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lora-rank", type=int, default=16)
    args = parser.parse_args()
    rows = [row(model.id, args) for model in CATALOGUE]
    sequences = min(args.batch_size, DEFAULT_MICRO_BATCH_SIZE)
    print(
        f"memory plan at max_seq_length {args.max_seq_length:,}, up to {sequences} sequences per "
        f"micro-batch, LoRA rank {args.lora_rank} (bf16 weights, fp32 adapters, AdamW); GB = 10^9 bytes; "
        f"fits = at least {HEADROOM:.0%} of the memory free"
    )
    header = (
        f"{'model':<36}{'instance':<15}{'memory':>8}{'micro-batch':>13}{'ckpt':>6}{'params':>8}{'LoRA':>7}"
        f"{'optim':>7}{'activ':>7}{'loss':>6}{'total':>7}{'free':>6}  fits"
    )
    print(header)
    for r in rows:
        b = {k: v / GB for k, v in r["bytes"].items()}
        batch = f"{r['micro_batch_sequences']}×{r['max_seq_length']}"
        print(
            f"{r['model']:<36}{r['instance_type']:<15}{r['memory_gb']:>6g}GB{batch:>13}"
            f"{'yes' if r['gradient_checkpointing'] else 'no':>6}{b['parameters']:>8.2f}{b['lora']:>7.2f}"
            f"{b['optimizer']:>7.2f}{b['activations']:>7.2f}{b['loss']:>6.2f}{b['total']:>7.2f}"
            f"{r['headroom']:>6.0%}  {'yes' if r['fits'] else 'no'}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "memory_plan",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": vars(args),
        "headroom": HEADROOM,
        "rows": rows,
        "all_fit": all(r["fits"] for r in rows),
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if payload["all_fit"] else 1


if __name__ == "__main__":
    sys.exit(main())
