"""Trainer throughput: tokens/s and peak memory with sequence packing vs plain padding on mixed-length rows.

Run: python bench/trainer_throughput.py [--rows 256] [--steps 8] [--repeats 3]. Every measurement is a
child process (so that its peak memory is its own), on the tiny model, on CUDA when available, else CPU;
the modes alternate (padded, packed, padded, ...) so that a busy machine slows both alike, and each mode
reports its median run. Prints a table and writes bench/results/trainer_throughput.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
RESULTS = ROOT / "bench" / "results" / "trainer_throughput.json"
MAX_SEQ_LENGTH = 512
TARGET_SPEEDUP = 1.3
WORD_LINES = (
    "the customer asked about an order and the assistant gave a short answer with the total price city",
    "address status item number value list data summary because when while after before red blue green",
)
WORDS = [word for line in WORD_LINES for word in line.split()]


def mixed_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Chat rows from ~20 to ~500 tokens, as real datasets are: mostly short, with a long tail."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        # Squaring a uniform draw skews towards short rows.
        prompt_words = 4 + int(380 * rng.random() ** 2)
        answer_words = 2 + int(100 * rng.random() ** 2)
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "You answer customer questions."},
                    {"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(prompt_words))},
                    {
                        "role": "assistant",
                        "content": " ".join(rng.choice(WORDS) for _ in range(answer_words)),
                    },
                ]
            }
        )
    return rows


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(packing: bool, n_rows: int, steps: int, batch_size: int, micro_batch_size: int) -> dict[str, Any]:
    """One measurement in this process: `steps` optimizer steps after a one-step warm-up."""
    import torch

    from tt_trainer.base_model import load_model, load_tokenizer, resolve_base_model
    from tt_trainer.config import Hyperparameters
    from tt_trainer.data import ChatEncoder, ChatRow, tokenize_rows
    from tt_trainer.progress import ProgressReporter
    from tt_trainer.train import attach_lora, pick_precision, seed_everything, train

    precision = pick_precision("auto")
    source = resolve_base_model("tunedtensor/tiny-chat", None, staged_dir=None, scratch=Path("/tmp"))
    tokenizer = load_tokenizer(source, trust_remote_code=False)
    chat = [ChatRow(r["messages"], f"row {i}") for i, r in enumerate(mixed_rows(n_rows))]
    rows, report = tokenize_rows(
        chat, ChatEncoder(tokenizer), max_seq_length=MAX_SEQ_LENGTH, long_examples="truncate"
    )

    def hp(max_steps: int) -> Hyperparameters:
        return Hyperparameters(
            batch_size=batch_size,
            micro_batch_size=micro_batch_size,
            packing=packing,
            max_steps=max_steps,
            max_seq_length=MAX_SEQ_LENGTH,
            logging_steps=max_steps,
        )

    def run(max_steps: int) -> Any:
        seed_everything(0)
        model = load_model(
            source, dtype=precision.load_dtype, device=precision.device, trust_remote_code=False
        )
        model = attach_lora(model, hp(max_steps), parent_dir=None, gradient_checkpointing=False)
        quiet = ProgressReporter(None, io.StringIO())
        return train(
            model, rows, hp(max_steps), precision=precision, pad_id=tokenizer.pad_token_id, reporter=quiet
        )

    run(1)  # warm-up: first-call allocations and kernel selection are not throughput
    rss_before = _rss_bytes()
    if precision.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = run(steps)
    if precision.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = result.peak_memory_bytes
    return {
        "mode": "packed" if packing else "padded",
        "device": precision.device.type,
        "precision": precision.name,
        "rows": report.kept,
        "tokens": result.tokens,
        "positions": result.positions,
        "seconds": seconds,
        "final_loss": result.step_losses[-1],
        "peak_memory_bytes": peak,
        # CPU: growth of the resident set during training (ru_maxrss also counts torch's own start-up).
        "peak_memory_growth_bytes": None if precision.device.type == "cuda" else peak - rss_before,
    }


def _child(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--rows",
        str(args.rows),
        "--steps",
        str(args.steps),
    ]
    command += ["--batch-size", str(args.batch_size), "--micro-batch-size", str(args.micro_batch_size)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} measurement failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    seconds = statistics.median(r["seconds"] for r in runs)
    growth = [r["peak_memory_growth_bytes"] for r in runs if r["peak_memory_growth_bytes"] is not None]
    return {
        "mode": first["mode"],
        "device": first["device"],
        "precision": first["precision"],
        "rows": first["rows"],
        "tokens": first["tokens"],
        "positions": first["positions"],
        "padding_share": round(1 - first["tokens"] / first["positions"], 4),
        "seconds": round(seconds, 3),
        "seconds_per_run": [round(r["seconds"], 3) for r in runs],
        "tokens_per_second": round(first["tokens"] / seconds, 1),
        "final_loss": round(first["final_loss"], 4),
        "peak_memory_mb": round(max(r["peak_memory_bytes"] for r in runs) / 2**20, 1),
        "peak_memory_growth_mb": round(max(growth) / 2**20, 1) if growth else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--micro-batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["packed", "padded"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        shape = (args.rows, args.steps, args.batch_size, args.micro_batch_size)
        print(json.dumps(measure(args.child == "packed", *shape)))
        return 0

    runs: dict[str, list[dict[str, Any]]] = {"padded": [], "packed": []}
    for _ in range(args.repeats):
        for mode in runs:
            runs[mode].append(_child(mode, args))
    results = {mode: summarize(mode_runs) for mode, mode_runs in runs.items()}
    packed, padded = results["packed"], results["padded"]
    speedup = packed["tokens_per_second"] / padded["tokens_per_second"]
    print(
        f"trainer throughput on {packed['device']} ({packed['precision']}, {_cpus()} cores): "
        f"{packed['rows']} mixed-length rows, {args.steps} steps of {args.batch_size} rows, "
        f"micro-batch {args.micro_batch_size}, median of {args.repeats} runs"
    )
    print(
        f"{'mode':<8}{'tokens/s':>10}{'tokens':>8}{'positions':>11}{'padding':>9}{'seconds':>9}{'peak MB':>9}"
    )
    for mode, r in results.items():
        print(
            f"{mode:<8}{r['tokens_per_second']:>10.1f}{r['tokens']:>8}{r['positions']:>11}"
            f"{r['padding_share']:>9.1%}{r['seconds']:>9.2f}{r['peak_memory_mb']:>9.1f}"
        )
    print(f"packing speed-up: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "trainer_throughput",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": _cpus()},
        "settings": {
            "rows": args.rows,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "micro_batch_size": args.micro_batch_size,
            "max_seq_length": MAX_SEQ_LENGTH,
            "repeats": args.repeats,
        },
        "results": results,
        "packing_speedup": round(speedup, 3),
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": speedup >= TARGET_SPEEDUP,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
