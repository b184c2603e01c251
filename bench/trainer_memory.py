"""The loss's peak extra memory: full logits + F.cross_entropy vs the chunked linear cross-entropy, on CPU.

Run: python bench/trainer_memory.py [--tokens 4096] [--vocab 151936] [--hidden 2048] [--repeats 3]
[--trainable-head]. One forward + backward of the loss over `--tokens` label positions in fp32: "full" is what
the trainer did before (the head's logits of every label position, F.cross_entropy summed), "chunked" is
tt_trainer.loss.linear_cross_entropy_sum with its default chunk. The head is frozen, as in LoRA training (its
gradient is computed only with --trainable-head). Each measurement runs in a fresh child process: the extra
memory is the peak resident set (ru_maxrss) minus the resident set once the inputs exist. The variants
alternate (full, chunked, full, ...) so that a busy machine affects both alike; medians and spread (max − min)
are reported. Prints a table, writes bench/results/trainer_memory.json, and ends with the ratio line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
RESULTS = ROOT / "bench" / "results" / "trainer_memory.json"
TARGET_RATIO = 0.25
VARIANTS = ("full", "chunked")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def measure(variant: str, tokens: int, vocab: int, hidden_size: int, trainable_head: bool) -> dict[str, Any]:
    """One forward + backward in this process; the memory it needed beyond its inputs."""
    import torch
    import torch.nn.functional as F

    from tt_trainer.loss import default_chunk_tokens, linear_cross_entropy_sum

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(tokens, hidden_size, generator=generator).requires_grad_()
    # In place: a scaled copy would set the process's peak before the measurement starts.
    weight = torch.randn(vocab, hidden_size, generator=generator).mul_(0.02).requires_grad_(trainable_head)
    targets = torch.randint(0, vocab, (tokens,), generator=generator)
    baseline = _rss_bytes()
    peak_before = _peak_rss_bytes()
    started = time.perf_counter()
    if variant == "full":
        logits = hidden @ weight.t()
        loss = F.cross_entropy(logits.float(), targets, reduction="sum")
    else:
        loss = linear_cross_entropy_sum(hidden, weight, targets)
    loss.backward()
    seconds = time.perf_counter() - started
    peak = _peak_rss_bytes()
    return {
        "variant": variant,
        "loss": float(loss),
        "seconds": seconds,
        "baseline_bytes": baseline,
        "peak_bytes": peak,
        # Setup (random inputs) must not have set the peak already, or the extra would be understated.
        "setup_peak_above_baseline_bytes": max(0, peak_before - baseline),
        "extra_bytes": max(0, peak - baseline),
        "chunk_tokens": default_chunk_tokens(vocab) if variant == "chunked" else tokens,
        "threads": torch.get_num_threads(),
    }


def _child(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", variant, "--tokens", str(args.tokens)]
    command += ["--vocab", str(args.vocab), "--hidden", str(args.hidden)]
    command += ["--trainable-head"] if args.trainable_head else []
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} measurement failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    extra = [r["extra_bytes"] for r in runs]
    seconds = [r["seconds"] for r in runs]
    return {
        "runs": len(runs),
        "chunk_tokens": runs[0]["chunk_tokens"],
        "loss": runs[0]["loss"],
        "extra_mb_median": round(statistics.median(extra) / 2**20, 1),
        "extra_mb_spread": round((max(extra) - min(extra)) / 2**20, 1),
        "extra_mb_per_run": [round(e / 2**20, 1) for e in extra],
        "seconds_median": round(statistics.median(seconds), 2),
        "seconds_spread": round(max(seconds) - min(seconds), 2),
        "setup_peak_above_baseline_mb": round(
            max(r["setup_peak_above_baseline_bytes"] for r in runs) / 2**20, 1
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trainable-head", action="store_true")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.tokens, args.vocab, args.hidden, args.trainable_head)))
        return 0

    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            runs[variant].append(_child(variant, args))
    results = {variant: summarize(variant_runs) for variant, variant_runs in runs.items()}
    full, chunked = results["full"], results["chunked"]
    ratio = chunked["extra_mb_median"] / full["extra_mb_median"]
    logits_mb = args.tokens * args.vocab * 4 / 2**20
    head = "trainable" if args.trainable_head else "frozen (LoRA)"
    print(
        f"loss memory on CPU (fp32, {_cpus()} cores): {args.tokens:,} label tokens × vocabulary "
        f"{args.vocab:,} × hidden {args.hidden:,}, head {head}; one fp32 logits tensor = "
        f"{logits_mb:,.0f} MB; median of {args.repeats} fresh processes, interleaved"
    )
    print(f"{'variant':<9}{'chunk':>7}{'extra MB':>11}{'spread':>9}{'seconds':>9}{'loss':>16}")
    for variant, r in results.items():
        print(
            f"{variant:<9}{r['chunk_tokens']:>7}{r['extra_mb_median']:>11.1f}{r['extra_mb_spread']:>9.1f}"
            f"{r['seconds_median']:>9.2f}{r['loss']:>16.3f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "trainer_memory",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": _cpus()},
        "settings": {
            "tokens": args.tokens,
            "vocab": args.vocab,
            "hidden": args.hidden,
            "repeats": args.repeats,
            "trainable_head": args.trainable_head,
            "dtype": "float32",
            "device": "cpu",
        },
        "results": results,
        "ratio": round(ratio, 4),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    print(f"loss memory ratio (chunked / full): {ratio:.2f}")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
