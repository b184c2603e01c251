"""The local stack under parallel load: 200 simultaneous `GET /behavior-specs` against one at a time.

Starts a real `tt local up` (a subprocess, so the clients' threads do not share its interpreter),
stores a few specs, then alternates rounds: REQUESTS sequential requests (the single-request latency)
and a burst of PARALLEL requests released together, each on its own connection. Prints p50/p99 per
round, the medians over rounds and the ratio parallel p50 / single p50 (the issue's target: within 5×).
Writes bench/results/local_concurrency.json.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PARALLEL = int(os.environ.get("BENCH_PARALLEL", "200"))
SEQUENTIAL = 20
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SPECS = 10


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def start_stack(data_dir: Path) -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(data_dir / "config"), "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tt_cli.main",
            "local",
            "up",
            "--port",
            "0",
            "--data-dir",
            str(data_dir / "stack"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "ready at" in line:
            info = json.loads((data_dir / "stack" / "local.json").read_text())
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, info["base_url"], info["api_key"]
    raise SystemExit(f"tt local up exited with {process.wait()}")


def one_request(url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    with requests.Session() as session:  # its own connection, as separate clients have
        answer = session.get(url, headers=headers, timeout=300)
    assert answer.status_code == 200, answer.text
    return (time.perf_counter() - started) * 1000


def burst(url: str, headers: dict[str, str], n: int) -> list[float]:
    samples: list[float] = []
    gate = threading.Barrier(n)

    def client() -> None:
        gate.wait()
        samples.append(one_request(url, headers))

    threads = [threading.Thread(target=client) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        process, base_url, key = start_stack(Path(tmp))
        try:
            headers = {"Authorization": f"Bearer {key}"}
            url = f"{base_url}/api/v1/behavior-specs"
            example = json.loads((ROOT / "examples" / "customer-support" / "tunedtensor.json").read_text())
            for i in range(SPECS):
                spec = {**example, "name": f"Spec {i}"}
                answer = requests.post(url, json=spec, headers=headers, timeout=30)
                assert answer.status_code == 201, answer.text
            one_request(url, headers)  # warm
            for round_ in range(ROUNDS):  # interleaved: single, burst, single, burst, …
                single = [one_request(url, headers) for _ in range(SEQUENTIAL)]
                parallel = burst(url, headers, PARALLEL)
                rows.append(
                    {
                        "round": round_ + 1,
                        "single_p50_ms": statistics.median(single),
                        "single_p99_ms": _percentile(single, 0.99),
                        "parallel_p50_ms": statistics.median(parallel),
                        "parallel_p99_ms": _percentile(parallel, 0.99),
                    }
                )
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    print(f"{PARALLEL} parallel GET /behavior-specs vs one at a time ({SPECS} specs stored), ms")
    print(f"{'round':>5} {'single p50':>11} {'single p99':>11} {'par. p50':>9} {'par. p99':>9} {'ratio':>6}")
    for row in rows:
        row["ratio_p50"] = row["parallel_p50_ms"] / row["single_p50_ms"]
        print(
            f"{row['round']:>5} {row['single_p50_ms']:>11.1f} {row['single_p99_ms']:>11.1f} "
            f"{row['parallel_p50_ms']:>9.1f} {row['parallel_p99_ms']:>9.1f} {row['ratio_p50']:>6.1f}"
        )
    ratios = [row["ratio_p50"] for row in rows]
    summary = {
        "parallel": PARALLEL,
        "rounds": rows,
        "median_ratio_p50": statistics.median(ratios),
        "ratio_spread": [min(ratios), max(ratios)],
    }
    print(f"median ratio {summary['median_ratio_p50']:.1f} (spread {min(ratios):.1f}–{max(ratios):.1f})")
    out = ROOT / "bench" / "results" / "local_concurrency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
