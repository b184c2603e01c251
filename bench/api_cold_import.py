"""Cold import of the API handler module in a fresh interpreter vs Powertools + boto3 alone.

Prints a table and writes bench/results/api_cold_import.json. Target: ratio ≤ 1.5 and under 400 ms.
`--against DIR` also times the handler of another checkout (e.g. `git worktree add /tmp/old <commit>`),
each run of each case interleaved with the others so that a busy machine slows all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 10
CASES = {
    "baseline: powertools + boto3": (
        "import boto3\nfrom aws_lambda_powertools.event_handler import APIGatewayRestResolver"
    ),
    # Not the target's baseline, printed to show where the handler's time goes: Powertools with
    # request validation switched on (ARCHITECTURE.md), which imports pydantic and the OpenAPI models.
    "reference: + pydantic validation": (
        "import boto3, pydantic\n"
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
        "from aws_lambda_powertools.event_handler.openapi.params import Query\n"
        "APIGatewayRestResolver(enable_validation=True)"
    ),
    # The handler module itself loads boto3 only when its first request builds a client; importing
    # boto3 here too keeps the comparison with the baseline (which has it) honest.
    "functions.api.handler (+ boto3)": "import functions.api.handler, boto3",
}
HANDLER = "functions.api.handler (+ boto3)"
OTHER = "the same, other checkout"


# Both sides import from bytecode caches, as site-packages always does: the warm-up writes the
# project's .pyc files even where PYTHONDONTWRITEBYTECODE is set for everything else.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cold_import_ms(code: str, checkout: Path = ROOT) -> float:
    """Wall time of a fresh interpreter importing `code` from `checkout` (its own tt_core first)."""
    env = ENV
    if checkout != ROOT:  # ahead of this checkout's editable install
        env = {**ENV, "PYTHONPATH": os.pathsep.join([str(checkout / "layers/core/python"), str(checkout)])}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=checkout, env=env)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout whose API handler is timed too")
    args = parser.parse_args()
    cases = {name: (code, ROOT) for name, code in CASES.items()}
    if args.against:
        cases[OTHER] = (CASES[HANDLER], args.against.resolve())
    cases["interpreter startup"] = ("pass", ROOT)
    for code, checkout in cases.values():  # warm the file cache and .pyc files once
        cold_import_ms(code, checkout)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(RUNS):
        for name, (code, checkout) in cases.items():
            samples[name].append(cold_import_ms(code, checkout))
    startup = statistics.median(samples.pop("interpreter startup"))
    results = {name: statistics.median(values) - startup for name, values in samples.items()}
    spread = {name: max(values) - min(values) for name, values in samples.items()}
    baseline, reference, handler = (results[name] for name in CASES)
    ratio = handler / baseline
    print(f"{'module':<34} {'median import (ms)':>20} {'spread (ms)':>12}")
    for name, value in results.items():
        print(f"{name:<34} {value:>20.1f} {spread[name]:>12.1f}")
    print(f"{'ratio to baseline (target ≤ 1.5)':<34} {ratio:>20.2f}")
    print(f"{'ratio to the validation reference':<34} {handler / reference:>20.2f}")
    if args.against:
        print(f"{'ratio to the other checkout':<34} {handler / results[OTHER]:>20.2f}")
    print(f"{'handler under 400 ms':<34} {handler < 400!s:>20}")
    out = ROOT / "bench" / "results" / "api_cold_import.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"runs": RUNS, "interpreter_startup_ms": startup, "median_ms": results, "spread_ms": spread}
    out.write_text(json.dumps({**summary, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
