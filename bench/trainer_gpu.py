"""Trainer on a GPU: tokens/s, MFU and peak memory of every catalogue model's real dimensions, random weights.

Run: python bench/trainer_gpu.py [--model ID ...] [--steps 4] [--repeats 1]. Each catalogue base model
(PRODUCT.md §5) is built from its published config.json dimensions (text model only: the vision and audio
towers are never trained and take no part in a text step) with random weights on the GPU: no download. It
trains with the trainer's own code and the product's defaults (batch 8 rows, LoRA r16/alpha 32 on the language
model's linear layers, dropout 0.05, bf16, gradient checkpointing, rows up to 2048 tokens, packing where the
family allows it, the attention kernel the trainer picks for the family) on mixed-length rows: one warm-up
step, then one epoch of `--steps` steps, `--repeats` times; medians. A model that does not fit the GPU gets an
`OOM` row.

MFU = achieved model FLOP/s / the GPU's bf16 matmul peak, measured here on an 8192^3 matmul (not the data
sheet's). Model FLOPs count useful work only: per real token 2N forward + 2N backward (gradients of the
activations; the frozen weights get none) over the N weights of the language model's linear layers (read
from the built model, so Gemma 4's shared-KV layers and per-layer projections and Qwen3.5's Gated DeltaNet
projections count as they are), the LoRA matrices' forward and weight gradients, the lm_head on label tokens
only (the trainer computes no other logits), causal attention per row and layer (forward 2 p d over the p
query-key pairs a row has in that layer: n(n+1)/2, or fewer within a sliding window; backward twice that) and
Gated DeltaNet's state updates (forward 4 d_k d_v per token and value head, backward twice that); padding and
the forward pass that gradient checkpointing repeats are not counted. Without a CUDA GPU it says so and exits
0 (`--smoke` runs tiny versions of every family on any device: the code path, not a measurement).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
RESULTS = ROOT / "bench" / "results" / "trainer_gpu.json"
MAX_SEQ_LENGTH = 2048
BATCH_SIZE = 8  # PRODUCT.md §9.1 default
LORA_RANK = 16


# --- the catalogue's text models, from their config.json ----------------------------------------------


def _llama_3_2_3b(smoke: bool) -> Any:  # meta-llama/Llama-3.2-3B-Instruct
    from transformers import LlamaConfig

    rope = {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    dims = _SMOKE if smoke else {"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28}
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16} if smoke else {}
    return LlamaConfig(
        **{"num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128, **dims, **heads},
        vocab_size=512 if smoke else 128256,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_parameters=rope,
        tie_word_embeddings=True,
    )


def _phi_4_mini(smoke: bool) -> Any:  # microsoft/Phi-4-mini-instruct (longrope left out: same compute)
    from transformers import Phi3Config

    dims = _SMOKE if smoke else {"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32}
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2} if smoke else {}
    return Phi3Config(
        **{"num_attention_heads": 24, "num_key_value_heads": 8, **dims, **heads},
        vocab_size=512 if smoke else 200064,
        partial_rotary_factor=0.75,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def _granite_3_3_2b(smoke: bool) -> Any:  # ibm-granite/granite-3.3-2b-instruct
    from transformers import GraniteConfig

    dims = _SMOKE if smoke else {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 40}
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2} if smoke else {}
    return GraniteConfig(
        **{"num_attention_heads": 32, "num_key_value_heads": 8, **dims, **heads},
        vocab_size=512 if smoke else 49159,
        max_position_embeddings=131072,
        embedding_multiplier=12.0,
        logits_scaling=8.0,
        residual_multiplier=0.22,
        attention_multiplier=0.015625,
        tie_word_embeddings=True,
    )


def _starcoder2_3b(smoke: bool) -> Any:  # bigcode/starcoder2-3b
    from transformers import Starcoder2Config

    dims = _SMOKE if smoke else {"hidden_size": 3072, "intermediate_size": 12288, "num_hidden_layers": 30}
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2} if smoke else {}
    return Starcoder2Config(
        **{"num_attention_heads": 24, "num_key_value_heads": 2, **dims, **heads},
        vocab_size=512 if smoke else 49152,
        sliding_window=32 if smoke else 4096,
        max_position_embeddings=16384,
        hidden_act="gelu_pytorch_tanh",
        use_bias=True,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )


def _qwen3_5(
    hidden: int, inter: int, layers: int, heads: int, kv: int, value_heads: int
) -> Callable[..., Any]:
    def build(smoke: bool) -> Any:  # Qwen/Qwen3.5-2B, -4B: 3 Gated DeltaNet layers to 1 gated attention layer
        from transformers import Qwen3_5TextConfig

        n = 4 if smoke else layers
        return Qwen3_5TextConfig(
            vocab_size=512 if smoke else 248320,
            hidden_size=64 if smoke else hidden,
            intermediate_size=128 if smoke else inter,
            num_hidden_layers=n,
            num_attention_heads=4 if smoke else heads,
            num_key_value_heads=2 if smoke else kv,
            head_dim=16 if smoke else 256,
            linear_num_key_heads=2 if smoke else 16,
            linear_num_value_heads=4 if smoke else value_heads,
            linear_key_head_dim=16 if smoke else 128,
            linear_value_head_dim=16 if smoke else 128,
            layer_types=["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n)],
            max_position_embeddings=262144,
            tie_word_embeddings=True,
        )

    return build


def _gemma_4(hidden: int, inter: int, layers: int, kv: int, shared: int, pattern: int) -> Callable[..., Any]:
    def build(smoke: bool) -> Any:  # google/gemma-4-E2B-it, -E4B-it: per-layer embeddings, shared KV layers
        from transformers import Gemma4Config

        # Two rounds of the pattern: the layers that keep their own KV then hold both kinds, as in the real
        # models (the last layer is a full-attention one).
        n = 2 * pattern if smoke else layers
        text = {
            "vocab_size": 512 if smoke else 262144,
            "vocab_size_per_layer_input": 512 if smoke else 262144,
            "hidden_size": 64 if smoke else hidden,
            "hidden_size_per_layer_input": 8 if smoke else 256,
            "intermediate_size": 128 if smoke else inter,
            "num_hidden_layers": n,
            "num_attention_heads": 4 if smoke else 8,
            "num_key_value_heads": min(kv, 2) if smoke else kv,
            "head_dim": 16 if smoke else 256,
            "global_head_dim": 32 if smoke else 512,
            "sliding_window": 32 if smoke else 512,
            "num_kv_shared_layers": pattern if smoke else shared,
            "use_double_wide_mlp": pattern == 5,
            "layer_types": [
                "full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n)
            ],
            "final_logit_softcapping": 30.0,
            "max_position_embeddings": 131072,
        }
        return Gemma4Config(text_config=text, vision_config=None, audio_config=None)

    return build


_SMOKE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
MODELS: dict[str, Callable[[bool], Any]] = {
    "google/gemma-4-E2B-it": _gemma_4(1536, 6144, 35, kv=1, shared=20, pattern=5),
    "google/gemma-4-E4B-it": _gemma_4(2560, 10240, 42, kv=2, shared=18, pattern=6),
    "Qwen/Qwen3.5-2B": _qwen3_5(2048, 6144, 24, heads=8, kv=2, value_heads=16),
    "Qwen/Qwen3.5-4B": _qwen3_5(2560, 9216, 32, heads=16, kv=4, value_heads=32),
    "meta-llama/Llama-3.2-3B-Instruct": _llama_3_2_3b,
    "microsoft/Phi-4-mini-instruct": _phi_4_mini,
    "ibm-granite/granite-3.3-2b-instruct": _granite_3_3_2b,
    "bigcode/starcoder2-3b": _starcoder2_3b,
}


def model_config(model_id: str, *, smoke: bool = False) -> Any:
    config = MODELS[model_id](smoke)
    for part in {id(config): config, id(config.get_text_config()): config.get_text_config()}.values():
        part.bos_token_id, part.eos_token_id, part.pad_token_id = 1, 2, 0
    return config


def build_model(config: Any, *, device: Any, dtype: Any) -> Any:
    """Random weights on the device, with the attention kernel the trainer would load the model with."""
    import torch
    from transformers import AutoModelForCausalLM

    from tt_trainer.architecture import attn_implementation, attn_implementation_argument

    choice = attn_implementation(config, device=device, dtype=dtype)
    options = {"attn_implementation": attn_implementation_argument(config, choice)} if choice else {}
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=dtype, **options)


def parameter_count(model: Any) -> int:
    """The model's weights, tied embeddings counted once (Gemma 4's per-layer embedding tables included)."""
    return sum(p.numel() for p in model.parameters())


# --- FLOPs ----------------------------------------------------------------------------------------------


def linear_shapes(model: Any) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of the language model: the layers LoRA adapts."""
    import torch

    from tt_trainer.architecture import language_model

    return [
        (m.in_features, m.out_features)
        for m in language_model(model).modules()
        if isinstance(m, torch.nn.Linear)
    ]


def _layer_attention(text: Any) -> list[tuple[str, int, int | None]]:
    """(kind, query width, sliding window or None) of each layer."""
    layers = int(text.num_hidden_layers)
    declared = getattr(text, "layer_types", None)
    per_layer = getattr(text, "per_layer_config", None)
    out: list[tuple[str, int, int | None]] = []
    for i, kind in enumerate(declared or ["attention"] * layers):
        if kind == "linear_attention":
            out.append((kind, int(text.linear_num_value_heads) * int(text.linear_key_head_dim), None))
            continue
        layer = per_layer[i] if per_layer is not None else text
        head_dim = getattr(layer, "head_dim", None) or text.hidden_size // text.num_attention_heads
        # Families without layer types (StarCoder2, Phi-3) slide in every layer when they set a window.
        slides = kind == "sliding_attention" or declared is None
        window = getattr(text, "sliding_window", None) if slides else None
        out.append((kind, int(text.num_attention_heads) * int(head_dim), window))
    return out


def _pairs(n: int, window: int | None) -> int:
    """Query-key pairs of a causal row of n tokens, within a sliding window if any."""
    if window is None or window >= n:
        return n * (n + 1) // 2
    return window * (window + 1) // 2 + (n - window) * window


def model_flops(model: Any, rows: list[Any], lora_rank: int) -> float:
    """Useful FLOPs of one training pass over rows (see the module docstring)."""
    from tt_trainer.architecture import text_config
    from tt_trainer.data import IGNORE_INDEX

    text = text_config(model.config)
    shapes = linear_shapes(model)
    frozen = sum(i * o for i, o in shapes)
    lora = sum(lora_rank * (i + o) for i, o in shapes)
    tokens = sum(len(r) for r in rows)
    label_tokens = sum(sum(1 for x in r.labels[1:] if x != IGNORE_INDEX) for r in rows)
    attention = 0
    for kind, width, window in _layer_attention(text):
        for r in rows:
            if kind == "linear_attention":
                attention += 3 * 4 * len(r) * width * int(text.linear_value_head_dim)
            else:
                attention += 3 * 4 * _pairs(len(r), window) * width
    return (
        tokens * (4 * frozen + 6 * lora)  # forward 2N, activation grads 2N; LoRA also its weight grads
        + label_tokens * 4 * int(text.vocab_size) * int(text.hidden_size)  # lm_head where a label follows
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


# --- one model ------------------------------------------------------------------------------------------


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


def measure(model_id: str, rows: list[Any], steps: int, device: Any, *, smoke: bool) -> dict[str, Any]:
    """Build the model, one warm-up step, then one epoch of `steps` steps with the trainer's own loop."""
    import torch

    from tt_trainer.architecture import attention_of, linear_attention_warning
    from tt_trainer.config import Hyperparameters
    from tt_trainer.progress import ProgressReporter
    from tt_trainer.train import attach_lora, pick_precision, seed_everything, settle_packing, train

    precision = pick_precision("auto", device)
    quiet = ProgressReporter(None, io.StringIO())
    config = model_config(model_id, smoke=smoke)
    hp = settle_packing(
        Hyperparameters(batch_size=BATCH_SIZE, max_seq_length=MAX_SEQ_LENGTH, max_steps=steps), config, quiet
    )
    seed_everything(0)
    model = build_model(config, device=device, dtype=precision.load_dtype)
    info = {
        "model": model_id,
        "parameters": parameter_count(model),
        "attn_implementation": attention_of(model),
        "mode": "packed" if hp.packing else "padded",
        "precision": precision.name,
        "kernels_warning": linear_attention_warning(config, device),
        "flops": model_flops(model, rows, LORA_RANK),
    }
    model = attach_lora(model, hp, parent_dir=None, gradient_checkpointing=device.type == "cuda")
    warm_up = hp.model_copy(update={"max_steps": 1})
    train(model, rows[:BATCH_SIZE], warm_up, precision=precision, pad_id=0, reporter=quiet)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    result = train(model, rows, hp, precision=precision, pad_id=0, reporter=quiet)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    info.update(
        tokens=result.tokens,
        positions=result.positions,
        seconds=time.perf_counter() - started,
        peak_memory_bytes=result.peak_memory_bytes,
        final_loss=result.step_losses[-1],
    )
    return info


def summarize(runs: list[dict[str, Any]], peak: float | None) -> dict[str, Any]:
    first = runs[0]
    seconds = statistics.median(r["seconds"] for r in runs)
    achieved = first["flops"] / seconds
    return {
        "model": first["model"],
        "parameters": first["parameters"],
        "attn_implementation": first["attn_implementation"],
        "mode": first["mode"],
        "precision": first["precision"],
        "kernels_warning": first["kernels_warning"],
        "tokens": first["tokens"],
        "padding_share": round(1 - first["tokens"] / first["positions"], 4),
        "seconds": round(seconds, 3),
        "seconds_per_run": [round(r["seconds"], 3) for r in runs],
        "tokens_per_second": round(first["tokens"] / seconds, 1),
        "model_tflops_per_second": round(achieved / 1e12, 2),
        "mfu": round(achieved / peak, 4) if peak else None,
        "peak_memory_gb": round(max(r["peak_memory_bytes"] for r in runs) / 2**30, 2),
        "final_loss": round(first["final_loss"], 4),
    }


def _release(device: Any) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", choices=list(MODELS), help="a catalogue model (repeatable; default: all)"
    )
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps of 8 rows (one epoch)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny versions of each family on any device: checks the code path",
    )
    args = parser.parse_args(argv)

    import torch

    if not args.smoke and not torch.cuda.is_available():
        print(
            f"trainer_gpu: no CUDA GPU here (torch {torch.__version__}, CUDA build {torch.version.cuda}): "
            "nothing to measure. Run it on a GPU machine."
        )
        return 0
    models = args.model or list(MODELS)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    max_len = 96 if args.smoke else MAX_SEQ_LENGTH
    peak = matmul_peak(device, size=512 if args.smoke else 8192) if device.type == "cuda" else None
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"trainer on {gpu}, random-init catalogue models{' (smoke: tiny dimensions)' if args.smoke else ''}, "
        f"{args.steps} steps of {BATCH_SIZE} mixed-length rows (≤ {max_len} tokens), LoRA r{LORA_RANK}, "
        f"median of {args.repeats}"
    )
    if peak:
        print(f"measured bf16 matmul peak: {peak / 1e12:.1f} TFLOP/s")
    header = (
        f"{'model':<38}{'params':>8}{'attention':>19}{'mode':>8}{'tokens/s':>10}{'TFLOP/s':>9}"
        f"{'MFU':>7}{'peak GB':>9}"
    )
    print(header)
    results: dict[str, dict[str, Any]] = {}
    for model_id in models:
        vocab = int(model_config(model_id, smoke=args.smoke).get_text_config().vocab_size)
        rows = mixed_rows(args.steps * BATCH_SIZE, vocab, max_len)
        try:
            runs = []
            for _ in range(args.repeats):
                runs.append(measure(model_id, rows, args.steps, device, smoke=args.smoke))
                _release(device)
        except torch.cuda.OutOfMemoryError:
            _release(device)
            results[model_id] = {"model": model_id, "oom": True}
            print(f"{model_id:<38}{'OOM: does not fit this GPU at these settings':>70}")
            continue
        r = results[model_id] = summarize(runs, peak)
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(
            f"{model_id:<38}{r['parameters'] / 1e9:>7.2f}B{r['attn_implementation']:>19}{r['mode']:>8}"
            f"{r['tokens_per_second']:>10.1f}{r['model_tflops_per_second']:>9.2f}{mfu:>7}"
            f"{r['peak_memory_gb']:>9.2f}"
        )
        if r["kernels_warning"]:
            print(f"  note: {r['kernels_warning']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "trainer_gpu",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda},
        "settings": {
            "smoke": args.smoke,
            "steps": args.steps,
            "batch_size": BATCH_SIZE,
            "max_seq_length": max_len,
            "lora_rank": LORA_RANK,
            "repeats": args.repeats,
        },
        "matmul_peak_tflops": round(peak / 1e12, 1) if peak else None,
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
