"""The local stack under parallel load: 200 simultaneous `GET /behavior-specs` against one at a time.

Starts a real `tt local up` (a subprocess, so the clients' threads do not share its interpreter),
stores a few specs, then alternates rounds: SEQUENTIAL requests one after another (the single-request
latency) and a burst of PARALLEL requests released together, each on its own connection. Prints p50/p99
per round, the medians over rounds and the ratio parallel p50 / single p50 (the issue's target: 5×).
`--against DIR` runs another checkout's stack too (e.g. `git worktree add /tmp/old <commit>`), its rounds
interleaved with this one's. Writes bench/results/local_concurrency.json.
"""

from __future__ import annotations

import argparse
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
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
PARALLEL = int(os.environ.get("BENCH_PARALLEL", "200"))
SEQUENTIAL = 20
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SPECS = 10
# Where each package of a checkout lives (pyproject's package-dir).
PACKAGE_ROOTS = (".", "local", "layers/core/python", "cli", "serving", "training_image")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Stack:
    def __init__(self, data_dir: Path, checkout: Path | None) -> None:
        data_dir.mkdir(parents=True)
        env = {**os.environ, "XDG_CONFIG_HOME": str(data_dir / "config"), "PYTHONUNBUFFERED": "1"}
        env.pop("AWS_ENDPOINT_URL", None)
        if checkout is not None:  # its packages ahead of this checkout's editable install
            env["PYTHONPATH"] = os.pathsep.join(str(checkout / root) for root in PACKAGE_ROOTS)
        command = [sys.executable, "-m", "tt_cli.main", "local", "up", "--port", "0"]
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(data_dir / "stack")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=data_dir,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "ready at" in line:
                info = json.loads((data_dir / "stack" / "local.json").read_text())
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                self.url = f"{info['base_url']}/api/v1/behavior-specs"
                self.headers = {"Authorization": f"Bearer {info['api_key']}"}
                break
        else:
            raise SystemExit(f"tt local up exited with {self.process.wait()}")
        example = json.loads((ROOT / "examples" / "customer-support" / "tunedtensor.json").read_text())
        for i in range(SPECS):
            answer = requests.post(
                self.url, json={**example, "name": f"Spec {i}"}, headers=self.headers, timeout=60
            )
            assert answer.status_code == 201, answer.text
        self.get()  # warm

    def get(self) -> float:
        started = time.perf_counter()
        with requests.Session() as session:  # its own connection, as separate clients have
            answer = session.get(self.url, headers=self.headers, timeout=600)
        assert answer.status_code == 200, answer.text
        return (time.perf_counter() - started) * 1000

    def burst(self, n: int) -> list[float]:
        samples: list[float] = []
        gate = threading.Barrier(n)

        def client() -> None:
            gate.wait()
            samples.append(self.get())

        threads = [threading.Thread(target=client) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return samples

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=120)


def measure(stack: Stack, round_: int) -> dict[str, Any]:
    single = [stack.get() for _ in range(SEQUENTIAL)]
    parallel = stack.burst(PARALLEL)
    row = {
        "round": round_,
        "single_p50_ms": statistics.median(single),
        "single_p99_ms": _percentile(single, 0.99),
        "parallel_p50_ms": statistics.median(parallel),
        "parallel_p99_ms": _percentile(parallel, 0.99),
    }
    row["ratio_p50"] = row["parallel_p50_ms"] / row["single_p50_ms"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout whose stack is measured too")
    args = parser.parse_args()
    checkouts: dict[str, Path | None] = {"this": None}
    if args.against:
        checkouts["against"] = args.against.resolve()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        stacks = {name: Stack(Path(tmp) / name, checkout) for name, checkout in checkouts.items()}
        try:
            for round_ in range(1, ROUNDS + 1):  # interleaved: this, against, this, against, …
                for name, stack in stacks.items():
                    results[name].append(measure(stack, round_))
        finally:
            for stack in stacks.values():
                stack.stop()
    print(f"{PARALLEL} parallel GET /behavior-specs vs one at a time ({SPECS} specs stored), ms")
    header = (
        f"{'stack':>8} {'round':>5} {'single p50':>11} {'single p99':>11} {'par. p50':>9} {'par. p99':>9}"
    )
    print(header + f" {'ratio':>6}")
    summary: dict[str, Any] = {"parallel": PARALLEL, "rounds": results}
    for name, rows in results.items():
        for row in rows:
            print(
                f"{name:>8} {row['round']:>5} {row['single_p50_ms']:>11.1f} {row['single_p99_ms']:>11.1f} "
                f"{row['parallel_p50_ms']:>9.1f} {row['parallel_p99_ms']:>9.1f} {row['ratio_p50']:>6.1f}"
            )
    for name, rows in results.items():
        medians = {key: statistics.median(row[key] for row in rows) for key in rows[0] if key != "round"}
        ratios = [row["ratio_p50"] for row in rows]
        summary[f"{name}_medians"] = medians
        print(
            f"{name}: medians single p50 {medians['single_p50_ms']:.0f} ms, parallel p50 "
            f"{medians['parallel_p50_ms']:.0f} ms / p99 {medians['parallel_p99_ms']:.0f} ms, ratio "
            f"{medians['ratio_p50']:.1f} (spread {min(ratios):.1f}–{max(ratios):.1f})"
        )
    out = ROOT / "bench" / "results" / "local_concurrency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
