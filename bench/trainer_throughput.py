"""Trainer throughput: tokens/s and peak memory with sequence packing vs plain padding on mixed-length rows.

Run: python bench/trainer_throughput.py [--rows 256] [--steps 8] [--repeats 3]. Each mode runs in its
own child process (so that peak memory is its own), on the tiny model, on CUDA when available, else CPU.
Prints a table and writes bench/results/trainer_throughput.json.
"""

from __future__ import annotations

import argparse
import io
import json
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
WORD_LINES = (
    "the customer asked about an order and the assistant gave a short answer with the total price city",
    "address status item number value list data summary because when while after before red blue green",
)
WORDS = [word for line in WORD_LINES for word in line.split()]


def mixed_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Chat rows whose lengths spread from ~20 to ~500 tokens, as real datasets do (most short, some long)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        # Squaring a uniform draw skews towards short rows with a long tail.
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


def run_mode(
    packing: bool, n_rows: int, steps: int, batch_size: int, micro_batch_size: int, repeats: int
) -> dict[str, Any]:
    """Measure in this process: `repeats` runs of `steps` optimizer steps after a one-step warm-up."""
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

    def fresh_model() -> Any:
        seed_everything(0)
        model = load_model(
            source, dtype=precision.load_dtype, device=precision.device, trust_remote_code=False
        )
        return attach_lora(model, hp(steps), parent_dir=None, gradient_checkpointing=False)

    quiet = ProgressReporter(None, io.StringIO())
    # Warm-up: first-call allocations and kernel selection are not throughput.
    train(fresh_model(), rows, hp(1), precision=precision, pad_id=tokenizer.pad_token_id, reporter=quiet)
    rss_before = _rss_bytes()
    timings = []
    for _ in range(repeats):
        model = fresh_model()
        if precision.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = train(
            model, rows, hp(steps), precision=precision, pad_id=tokenizer.pad_token_id, reporter=quiet
        )
        if precision.device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    # The median of a few runs: shared CPUs make single timings noisy.
    seconds = statistics.median(timings)
    peak = result.peak_memory_bytes
    return {
        "mode": "packed" if packing else "padded",
        "device": precision.device.type,
        "precision": precision.name,
        "rows": report.kept,
        "steps": steps,
        "batch_size": batch_size,
        "micro_batch_size": micro_batch_size,
        "tokens": result.tokens,
        "positions": result.positions,
        "padding_share": round(1 - result.tokens / result.positions, 4),
        "seconds": round(seconds, 3),
        "seconds_per_run": [round(t, 3) for t in timings],
        "tokens_per_second": round(result.tokens / seconds, 1),
        "final_loss": round(result.step_losses[-1], 4),
        "peak_memory_mb": round(peak / 2**20, 1),
        # CPU: growth of the resident set during training (ru_maxrss also counts torch's own start-up).
        "peak_memory_growth_mb": None
        if precision.device.type == "cuda"
        else round((peak - rss_before) / 2**20, 1),
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
    shape = (args.rows, args.steps, args.batch_size, args.micro_batch_size, args.repeats)
    if args.child:
        print(json.dumps(run_mode(args.child == "packed", *shape)))
        return 0

    results = {}
    for mode in ("padded", "packed"):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--rows",
                str(args.rows),
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--micro-batch-size",
                str(args.micro_batch_size),
                "--repeats",
                str(args.repeats),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    speedup = results["packed"]["tokens_per_second"] / results["padded"]["tokens_per_second"]
    header = (
        f"{'mode':<8}{'tokens/s':>11}{'tokens':>9}{'positions':>11}{'padding':>9}{'seconds':>9}{'peak MB':>9}"
    )
    print(
        f"trainer throughput on {results['packed']['device']} ({results['packed']['precision']}), "
        f"{results['packed']['rows']} mixed-length rows, {args.steps} steps of {args.batch_size} rows"
    )
    print(header)
    for mode, r in results.items():
        print(
            f"{mode:<8}{r['tokens_per_second']:>11.1f}{r['tokens']:>9}{r['positions']:>11}"
            f"{r['padding_share']:>9.1%}{r['seconds']:>9.2f}{r['peak_memory_mb']:>9.1f}"
        )
    print(f"packing speed-up: {speedup:.2f}x (target >= 1.3x)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "trainer_throughput",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": _cpus()},
        "results": results,
        "packing_speedup": round(speedup, 3),
        "target_speedup": 1.3,
        "meets_target": speedup >= 1.3,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
