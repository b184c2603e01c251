"""Cold import of the API handler module in a fresh interpreter vs Powertools + boto3 alone.

Prints a table and writes bench/results/api_cold_import.json. Target: ratio ≤ 1.5 and under 400 ms.
"""

from __future__ import annotations

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


# Both sides import from bytecode caches, as site-packages always does: the warm-up writes the
# project's .pyc files even where PYTHONDONTWRITEBYTECODE is set for everything else.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cold_import_ms(code: str) -> float:
    """Wall time of a fresh interpreter importing `code`."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=ENV)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    for code in CASES.values():  # warm the file cache and .pyc files once
        cold_import_ms(code)
    startup = statistics.median(cold_import_ms("pass") for _ in range(RUNS))
    results = {
        name: statistics.median(cold_import_ms(code) for _ in range(RUNS)) - startup
        for name, code in CASES.items()
    }
    baseline, reference, handler = results.values()
    ratio = handler / baseline
    print(f"{'module':<34} {'median import (ms)':>20}")
    for name, value in results.items():
        print(f"{name:<34} {value:>20.1f}")
    print(f"{'ratio to baseline (target ≤ 1.5)':<34} {ratio:>20.2f}")
    print(f"{'ratio to the validation reference':<34} {handler / reference:>20.2f}")
    print(f"{'handler under 400 ms':<34} {handler < 400!s:>20}")
    out = ROOT / "bench" / "results" / "api_cold_import.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"runs": RUNS, "interpreter_startup_ms": startup, "median_ms": results, "ratio": ratio}, indent=2
        )
    )


if __name__ == "__main__":
    main()
