"""`make run`'s main job (scripts/demo.py) timed end to end, against another checkout in the same session.

Run: python bench/demo_time.py [--repeats 3] [--against DIR]. Runs `python scripts/demo.py` of this checkout
and, with `--against` (e.g. `git worktree add /tmp/old <commit>`), of that checkout, interleaved (this,
against, this, …), each in a fresh process with the checkout's packages first on PYTHONPATH. Prints the
wall time per run, the medians with min–max, and whether the printed steps are the same (the lines that
start with ▶, the CLI's table headings and the summary's labels; ids, times and numbers left out). Writes
bench/results/demo_time.json. Target: under 90 s on 2 cores, not slower than the checkout it replaces.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "demo_time.json"
PACKAGE_ROOTS = (".", "local", "layers/core/python", "cli", "serving", "training_image")
# Progress bars, ids, numbers and durations differ between runs; what is printed does not.
_VOLATILE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|\b[0-9a-f]{8}\b|\d[\d.,:]*|/tmp/\S+")


def _shape(output: str, checkout: Path) -> list[str]:
    lines = [line.strip().replace(str(checkout), "<checkout>") for line in output.splitlines()]
    kept = [line for line in lines if line and not re.match(r"^\d+%", line)]
    return [" ".join(_VOLATILE.sub("#", line.split(":")[0]).split()) for line in kept]


def _run(checkout: Path) -> tuple[float, str, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(checkout / r) for r in PACKAGE_ROOTS)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(checkout / "scripts" / "demo.py")],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, done.stdout + done.stderr, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout, run interleaved with this one")
    args = parser.parse_args()
    checkouts = {"this": ROOT}
    if args.against:
        checkouts["against"] = args.against.resolve()
    seconds: dict[str, list[float]] = {name: [] for name in checkouts}
    shapes: dict[str, list[str]] = {}
    for repeat in range(1, args.repeats + 1):
        for name, checkout in checkouts.items():
            wall, output, code = _run(checkout)
            if code != 0:
                print(output[-3000:])
                print(f"{name}: the demo failed (exit {code})")
                return 1
            seconds[name].append(round(wall, 2))
            shapes[name] = _shape(output, checkout)
            print(f"repeat {repeat}  {name:8} {wall:6.1f} s", flush=True)
    print(f"\n{'checkout':8}  {'median s':>8}  {'min':>6}  {'max':>6}")
    summary = {}
    for name, values in seconds.items():
        summary[name] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        print(f"{name:8}  {summary[name]['median']:8.1f}  {min(values):6.1f}  {max(values):6.1f}")
    same = len(shapes) < 2 or shapes["this"] == shapes["against"]
    if len(shapes) == 2:
        print(f"printed steps the same: {'yes' if same else 'no'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "against": str(args.against) if args.against else None,
                "seconds": seconds,
                "summary": summary,
                "same_output": same,
                "shapes": shapes,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
