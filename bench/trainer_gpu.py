"""Trainer on a GPU: tokens/s, peak memory and MFU of a random-init 1-3B catalogue model, packed vs padded.

Run: python bench/trainer_gpu.py [--arch llama-3.2-3b|llama-3.2-1b] [--steps 8] [--repeats 2]. The model has
the Llama 3.2 architecture (the default base model of AWS deployments) with random weights built on the GPU:
no download. It trains with the product's defaults (batch 8 rows, micro-batch 4, LoRA r16/alpha 32 on all
linear layers, dropout 0.05, bf16 autocast, gradient checkpointing, rows up to 2048 tokens) on mixed-length
rows: one epoch of `--steps` steps after a one-step warm-up, padded then packed, `--repeats` times; medians.

MFU = achieved model FLOP/s / the GPU's bf16 matmul peak, measured here on an 8192^3 matmul (not the data
sheet's). Model FLOPs count useful work only: per real token 2N forward + 2N backward (gradients of the
activations; the frozen weights get none) over the N weights of the decoder's linear layers, the LoRA
matrices' forward and weight gradients, the lm_head on label tokens only (the trainer computes no other
logits), and causal attention per row (forward 2 n(n+1) d per layer, backward twice that); padding and the
forward pass that gradient checkpointing repeats are not counted. Without a CUDA GPU it says so and exits 0.
Writes bench/results/trainer_gpu.json (or --out).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
RESULTS = ROOT / "bench" / "results" / "trainer_gpu.json"
MAX_SEQ_LENGTH = 2048
BATCH_SIZE = 8  # PRODUCT.md §9.1 default; the micro-batch is the trainer's default min(batch_size, 4)

# meta-llama/Llama-3.2-{3B,1B}-Instruct shapes (config.json), tied embeddings, llama3 rope.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "llama-3.2-3b": {
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 28,
        "num_attention_heads": 24,
        "num_key_value_heads": 8,
        "head_dim": 128,
    },
    "llama-3.2-1b": {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
    },
    # --smoke: the same code path in seconds on any device, for tests.
    "smoke": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
}
VOCAB = 128256


def llama_config(arch: str) -> Any:
    from transformers import LlamaConfig

    rope = {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    vocab = 512 if arch == "smoke" else VOCAB
    return LlamaConfig(
        **ARCHITECTURES[arch],
        vocab_size=vocab,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_parameters=rope,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def mixed_rows(n: int, vocab: int, max_len: int, seed: int = 0) -> list[Any]:
    """Token rows of ~30 to max_len tokens, mostly short with a long tail; labels on the answer part."""
    from tt_trainer.data import IGNORE_INDEX, TokenizedRow

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        # Squaring a uniform draw skews towards short rows, as real chat datasets are.
        prompt = 24 + int((max_len * 0.7) * rng.random() ** 2)
        answer = 4 + int((max_len * 0.25) * rng.random() ** 2)
        ids = [rng.randrange(3, vocab) for _ in range(min(prompt + answer, max_len))]
        labels = [IGNORE_INDEX] * min(prompt, len(ids) - 1) + ids[min(prompt, len(ids) - 1) :]
        rows.append(TokenizedRow(input_ids=ids, labels=labels))
    return rows


def linear_shapes(config: Any) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of one decoder layer: q, k, v, o and the gated MLP."""
    d, inter = config.hidden_size, config.intermediate_size
    q = config.num_attention_heads * config.head_dim
    kv = config.num_key_value_heads * config.head_dim
    return [(d, q), (d, kv), (d, kv), (q, d), (d, inter), (d, inter), (inter, d)]


def parameter_count(config: Any) -> int:
    """Weights of the model (tied embeddings counted once; norms left out)."""
    layer = sum(i * o for i, o in linear_shapes(config))
    return int(config.vocab_size * config.hidden_size + config.num_hidden_layers * layer)


def model_flops(config: Any, rows: list[Any], lora_rank: int) -> float:
    """Useful FLOPs of one training pass over rows (see the module docstring)."""
    from tt_trainer.data import IGNORE_INDEX

    d, layers = config.hidden_size, config.num_hidden_layers
    q = config.num_attention_heads * config.head_dim
    shapes = linear_shapes(config)
    frozen = layers * sum(i * o for i, o in shapes)
    lora = layers * sum(lora_rank * (i + o) for i, o in shapes)
    tokens = sum(len(r) for r in rows)
    label_tokens = sum(sum(1 for x in r.labels[1:] if x != IGNORE_INDEX) for r in rows)
    attention = sum(6 * layers * q * len(r) * (len(r) + 1) for r in rows)
    return (
        tokens * (4 * frozen + 6 * lora)  # forward 2N, activation grads 2N; LoRA also its weight grads
        + label_tokens * 4 * config.vocab_size * d  # lm_head where a label follows
        + attention
    )


def matmul_peak(device: Any, size: int = 8192, iterations: int = 30) -> float:
    """The GPU's measured bf16 dense matmul FLOP/s."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(iterations):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * size**3 * iterations / (time.perf_counter() - started)


def measure(arch: str, packing: bool, rows: list[Any], steps: int, device: Any) -> dict[str, Any]:
    """One warm-up step, then one epoch of `steps` steps over rows, with the trainer's own loop."""
    import torch
    from transformers import AutoModelForCausalLM

    from tt_trainer.config import Hyperparameters
    from tt_trainer.progress import ProgressReporter
    from tt_trainer.train import attach_lora, pick_precision, seed_everything, train

    precision = pick_precision("auto", device)
    hp = Hyperparameters(
        batch_size=BATCH_SIZE, packing=packing, max_seq_length=MAX_SEQ_LENGTH, max_steps=steps
    )
    seed_everything(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(llama_config(arch), dtype=precision.load_dtype)
    model = attach_lora(model, hp, parent_dir=None, gradient_checkpointing=device.type == "cuda")
    quiet = ProgressReporter(None, io.StringIO())
    train(
        model,
        rows[:BATCH_SIZE],
        hp.model_copy(update={"max_steps": 1}),
        precision=precision,
        pad_id=0,
        reporter=quiet,
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    result = train(model, rows, hp, precision=precision, pad_id=0, reporter=quiet)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    out = {
        "mode": "packed" if packing else "padded",
        "precision": precision.name,
        "tokens": result.tokens,
        "positions": result.positions,
        "seconds": seconds,
        "peak_memory_bytes": result.peak_memory_bytes,
        "final_loss": result.step_losses[-1],
    }
    del model, result
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def summarize(runs: list[dict[str, Any]], flops: float, peak: float | None) -> dict[str, Any]:
    first = runs[0]
    seconds = statistics.median(r["seconds"] for r in runs)
    achieved = flops / seconds
    return {
        "mode": first["mode"],
        "precision": first["precision"],
        "tokens": first["tokens"],
        "positions": first["positions"],
        "padding_share": round(1 - first["tokens"] / first["positions"], 4),
        "seconds": round(seconds, 3),
        "seconds_per_run": [round(r["seconds"], 3) for r in runs],
        "tokens_per_second": round(first["tokens"] / seconds, 1),
        "model_tflops_per_second": round(achieved / 1e12, 2),
        "mfu": round(achieved / peak, 4) if peak else None,
        "peak_memory_gb": round(max(r["peak_memory_bytes"] for r in runs) / 2**30, 2),
        "final_loss": round(first["final_loss"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=[a for a in ARCHITECTURES if a != "smoke"], default="llama-3.2-3b")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps of 8 rows (one epoch)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny model on any device: checks the code path"
    )
    args = parser.parse_args(argv)

    import torch

    if not args.smoke and not torch.cuda.is_available():
        print(
            f"trainer_gpu: no CUDA GPU here (torch {torch.__version__}, CUDA build {torch.version.cuda}): "
            "nothing to measure. Run it on a GPU machine."
        )
        return 0
    arch = "smoke" if args.smoke else args.arch
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = llama_config(arch)
    max_len = 96 if args.smoke else MAX_SEQ_LENGTH
    rows = mixed_rows(args.steps * BATCH_SIZE, config.vocab_size, max_len)
    peak = matmul_peak(device, size=512 if args.smoke else 8192) if device.type == "cuda" else None
    flops = model_flops(config, rows, lora_rank=16)

    runs: dict[str, list[dict[str, Any]]] = {"padded": [], "packed": []}
    for _ in range(args.repeats):
        for mode in runs:
            runs[mode].append(measure(arch, mode == "packed", rows, args.steps, device))
    results = {mode: summarize(mode_runs, flops, peak) for mode, mode_runs in runs.items()}
    packed, padded = results["packed"], results["padded"]
    speedup = packed["tokens_per_second"] / padded["tokens_per_second"]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"trainer on {gpu} ({packed['precision']}), {arch} random-init ({parameter_count(config) / 1e9:.2f}B "
        f"parameters), {len(rows)} mixed-length rows "
        f"(≤ {max_len} tokens), {args.steps} steps of {BATCH_SIZE}, micro-batch 4, median of {args.repeats}"
    )
    if peak:
        print(f"measured bf16 matmul peak: {peak / 1e12:.1f} TFLOP/s")
    print(f"{'mode':<8}{'tokens/s':>11}{'padding':>9}{'seconds':>9}{'TFLOP/s':>9}{'MFU':>7}{'peak GB':>9}")
    for mode, r in results.items():
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(
            f"{mode:<8}{r['tokens_per_second']:>11.1f}{r['padding_share']:>9.1%}{r['seconds']:>9.2f}"
            f"{r['model_tflops_per_second']:>9.2f}{mfu:>7}{r['peak_memory_gb']:>9.2f}"
        )
    print(f"packing speed-up: {speedup:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "trainer_gpu",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda},
        "settings": {
            "arch": arch,
            "parameters": parameter_count(config),
            "rows": len(rows),
            "steps": args.steps,
            "batch_size": BATCH_SIZE,
            "max_seq_length": max_len,
            "repeats": args.repeats,
        },
        "matmul_peak_tflops": round(peak / 1e12, 1) if peak else None,
        "model_flops_per_epoch": flops,
        "results": results,
        "packing_speedup": round(speedup, 3),
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
