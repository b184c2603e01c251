"""Serving throughput: `tt models serve` (plain and streamed) against a plain transformers generate loop.

Run: python bench/serve_throughput.py [--model-dir DIR] [--prompts 6] [--max-tokens 128] [--rounds 5]
[--threads 1].
Without --model-dir it benchmarks tunedtensor/tiny-chat with a random LoRA adapter (built in a temporary
directory). The server runs as its own process (`python -m tt_serve.server`, as `tt models serve`
starts it) and is called over HTTP on loopback; the plain loop is peft + `model.generate` in this process,
on the same weights, device, prompts and greedy decoding, so both produce the same tokens. Each round
runs every prompt through the three modes back to back, in a rotating order, so that a busy machine slows
them alike. Reported: tokens/s (median of the rounds, with min and max), the server's overhead (per
request, its time ÷ the plain loop's time for the same prompt in the same round − 1; median, p10, p90), and
time to first token (median over all requests, with p10 and p90): for the plain loop a one-token
generate, for the streamed server the first content chunk, for the plain server the whole response.
Writes bench/results/serve_throughput.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in ("cli", "layers/core/python", "training_image"):
    sys.path.insert(0, str(ROOT / path))
RESULTS = ROOT / "bench" / "results" / "serve_throughput.json"
TARGET_OVERHEAD_PCT = 10.0
QUESTIONS = (
    "How do I cancel my plan?",
    "Where can I see my invoices from last year?",
    "How do I add a teammate to the workspace?",
    "Can I change the billing email address?",
    "Why was my card declined yesterday?",
    "How do I export all of my data as a file?",
    "What does the status page say about the outage?",
    "How do I turn on two-factor authentication?",
)


def build_artifact(out: Path) -> Path:
    """tiny-chat plus a random (untrained) LoRA adapter, laid out as a model artifact."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tt_trainer.tiny import ensure_tiny_model

    base = ensure_tiny_model()
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(0)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(base).save_pretrained(str(out))
    (out / "base_model.json").write_text(json.dumps({"id": "tunedtensor/tiny-chat", "revision": "v1"}))
    return out


class PlainLoop:
    """What a user would write without the server: transformers + peft, greedy generate."""

    def __init__(self, model_dir: Path, device: str) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoTokenizer, GenerationConfig

        from tt_serve.runtime import _dtype, base_identity, pick_device
        from tt_trainer.base_model import load_model, resolve_base_model, stop_token_ids

        self.torch = torch
        self.device = pick_device(device)
        base_id, revision = base_identity(model_dir)
        source = resolve_base_model(base_id, revision, staged_dir=None, scratch=Path(tempfile.gettempdir()))
        base = load_model(source, dtype=_dtype(self.device), device=self.device, trust_remote_code=False)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.stop_ids = stop_token_ids(self.tokenizer, base)
        base.generation_config = GenerationConfig(
            eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id
        )
        self.model = PeftModel.from_pretrained(base, str(model_dir)).eval()
        self.config = GenerationConfig

    def generate(self, messages: list[dict[str, str]], max_tokens: int) -> int:
        ids: Any = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        input_ids = self.torch.tensor([ids["input_ids"]], device=self.device)
        config = self.config(
            do_sample=False, max_new_tokens=max_tokens, eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id,
        )  # fmt: skip
        with self.torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=self.torch.ones_like(input_ids), generation_config=config
            )
        return int(out.shape[1] - input_ids.shape[1])


def start_server(model_dir: Path, device: str) -> tuple[subprocess.Popen[bytes], str]:
    import requests

    from tt_serve.managed import free_port

    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("cli", "layers/core/python", "training_image")),
    }
    command = [sys.executable, "-m", "tt_serve.server", "--model-dir", str(model_dir), "--port",
               str(port), "--device", device, "--temperature", "0", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start in 180 s")


def server_call(
    session: Any, url: str, messages: list[dict[str, str]], max_tokens: int, stream: bool
) -> tuple[int, float]:
    """(completion tokens, seconds to the first content) of one request."""
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": stream}
    started = time.perf_counter()
    if not stream:
        response = session.post(f"{url}/v1/chat/completions", json=body, timeout=600)
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"]), time.perf_counter() - started
    # http.client reads each event as it arrives (requests' iter_lines waits for 512 bytes, which would
    # delay the first token).
    body["stream_options"] = {"include_usage": True}
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    try:
        connection.request(
            "POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        first: float | None = None
        tokens = 0
        while line := response.readline():
            if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = int(event["usage"]["completion_tokens"])
            for choice in event.get("choices") or []:
                if first is None and choice["delta"].get("content"):
                    first = time.perf_counter() - started
    finally:
        connection.close()
    return tokens, first if first is not None else time.perf_counter() - started


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"median": round(statistics.median(ordered), 3), "min": round(ordered[0], 3),
            "p10": round(pick(0.1), 3), "p90": round(pick(0.9), 3), "max": round(ordered[-1], 3)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, help="a model artifact directory (default: tiny + random LoRA)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads on both sides (default: 1; 0: torch's own choice)",
    )
    args = parser.parse_args()
    if args.threads:
        # Read by both processes before torch starts its thread pool. One thread by default: torch's CPU
        # pool spin-waits between the tiny model's small ops, and on a small or busy machine that noise
        # (it slowed both the plain loop and the server 5-7x on 2 busy cores) swamps the server's cost.
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    import requests

    scratch = tempfile.TemporaryDirectory(prefix="tt-bench-serve-")
    model_dir = args.model_dir or build_artifact(Path(scratch.name) / "model")
    prompts = [[{"role": "user", "content": q}] for q in (QUESTIONS * 4)[: args.prompts]]
    plain = PlainLoop(model_dir, args.device)
    process, url = start_server(model_dir, args.device)
    session = requests.Session()
    modes = ("plain_loop", "server", "server_stream")
    tps: dict[str, list[float]] = {m: [] for m in modes}
    ttft: dict[str, list[float]] = {m: [] for m in modes}
    paired: dict[str, list[float]] = {m: [] for m in modes}
    tokens_per_round: dict[str, int] = {}
    try:
        for messages in prompts[:2]:  # warm-up: kernels, caches, the connection
            plain.generate(messages, args.max_tokens)
            server_call(session, url, messages, args.max_tokens, stream=False)
            server_call(session, url, messages, args.max_tokens, stream=True)
        for round_index in range(args.rounds):
            totals = {m: [0, 0.0] for m in modes}  # tokens, seconds
            for prompt_index, messages in enumerate(prompts):
                shift = (round_index + prompt_index) % 3
                seconds_of: dict[str, float] = {}
                for mode in modes[shift:] + modes[:shift]:  # back to back, in a rotating order
                    if mode == "plain_loop":
                        started = time.perf_counter()
                        plain.generate(messages, 1)
                        ttft[mode].append(time.perf_counter() - started)
                        started = time.perf_counter()
                        tokens = plain.generate(messages, args.max_tokens)
                        seconds = time.perf_counter() - started
                    else:
                        started = time.perf_counter()
                        tokens, first = server_call(
                            session, url, messages, args.max_tokens, mode == "server_stream"
                        )
                        seconds = time.perf_counter() - started
                        ttft[mode].append(first)
                    totals[mode][0] += tokens
                    totals[mode][1] += seconds
                    seconds_of[mode] = seconds
                for mode in modes:  # the same tokens (greedy): a ratio of times is one of speeds
                    paired[mode].append((seconds_of[mode] / seconds_of["plain_loop"] - 1) * 100)
            for mode in modes:
                tps[mode].append(totals[mode][0] / totals[mode][1])
                tokens_per_round[mode] = int(totals[mode][0])
    finally:
        process.terminate()
        process.wait(timeout=30)
        scratch.cleanup()

    if len(set(tokens_per_round.values())) != 1:
        print(f"! the modes generated different token counts: {tokens_per_round}", file=sys.stderr)
    results: dict[str, Any] = {}
    for mode in modes:
        results[mode] = {
            "tokens_per_second": spread(tps[mode]),
            "time_to_first_token_ms": spread([s * 1000 for s in ttft[mode]]),
            # Paired per request (each prompt's modes ran back to back): robust to the load drifting.
            "overhead_pct": spread(paired[mode]),
        }
    report = {
        "benchmark": "serve_throughput",
        "model": str(args.model_dir) if args.model_dir else "tunedtensor/tiny-chat + random LoRA r=16",
        "device": str(plain.device),
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "threads": args.threads or "torch default",
        "torch_threads_here": torch_threads(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "tokens_per_round": tokens_per_round,
        "target_overhead_pct": TARGET_OVERHEAD_PCT,
        "results": results,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"serve throughput on {report['device']}: {len(prompts)} prompts × ≤{args.max_tokens} tokens, "
          f"{args.rounds} rounds ({tokens_per_round.get('plain_loop')} tokens per round)")  # fmt: skip
    print(f"{'mode':<15}{'tokens/s (median [min–max])':<32}{'TTFT ms (median [p10–p90])':<30}overhead")
    for mode in modes:
        t, f = results[mode]["tokens_per_second"], results[mode]["time_to_first_token_ms"]
        overhead = results[mode]["overhead_pct"]["median"]
        print(f"{mode:<15}{t['median']:>8.1f} [{t['min']:.1f}–{t['max']:.1f}]{'':<12}"
              f"{f['median']:>8.1f} [{f['p10']:.1f}–{f['p90']:.1f}]{'':<8}{overhead:+.1f}%")  # fmt: skip
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    worst = max(
        results["server"]["overhead_pct"]["median"], results["server_stream"]["overhead_pct"]["median"]
    )
    print(
        f"target: server overhead ≤ {TARGET_OVERHEAD_PCT:g}% — "
        f"{'met' if worst <= TARGET_OVERHEAD_PCT else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
