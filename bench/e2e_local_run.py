"""The example run on the local stack, stage by stage, beside the trainer alone on the same rows.

Run: python bench/e2e_local_run.py [--repeats 3]. Starts the local stack in this process (moto, the
synthesized state machine, the trainer as a subprocess), pushes the example spec and, `--repeats` times,
alternates (a) a default run through the HTTP API, timed per stage from its events, and (b) the trainer
run directly (`python -m tt_trainer`) on a copy of that run's job inputs. The workflow's overhead is
(run − trainer) ÷ run. Prints medians with the spread and writes bench/results/e2e_local_run.json.
Targets: the whole run under 3 minutes, the overhead under 25 % of it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "e2e_local_run.json"
EXAMPLE = ROOT / "examples" / "customer-support" / "tunedtensor.json"
STAGES = (
    "compiling_spec", "augmenting", "uploading_dataset", "training_queued", "training_running",
    "generating_predictions", "scoring",
)  # fmt: skip
TARGET_TOTAL_S, TARGET_OVERHEAD = 180.0, 0.25
POLL_S = 1.0


def _seconds(a: str, b: str) -> float:
    from tt_core.models.common import parse_timestamp

    return (parse_timestamp(b) - parse_timestamp(a)).total_seconds()


def one_run(base: str, headers: dict[str, str], spec_id: str) -> dict[str, Any]:
    run = requests.post(f"{base}/behavior-specs/{spec_id}/runs", json={}, headers=headers, timeout=60).json()[
        "data"
    ]
    while run["status"] not in ("completed", "failed", "cancelled"):
        # As `tt runs watch --interval 1000` would: polling faster only takes CPU from the trainer.
        time.sleep(POLL_S)
        run = requests.get(f"{base}/runs/{run['id']}", headers=headers, timeout=60).json()["data"]
    # The run's own clock: from its creation to its completion, whenever this client looked.
    total = _seconds(run["created_at"], run["completed_at"])
    if run["status"] != "completed":
        raise SystemExit(f"the run ended {run['status']}: {run['error']}")
    starts = {e["stage"]: e["occurred_at"] for e in run["_events"] if e["status"] == "started"}
    order = [stage for stage in (*STAGES, "completed") if stage in starts]
    stages = {stage: _seconds(starts[stage], starts[nxt]) for stage, nxt in itertools.pairwise(order)}
    return {"run": run, "total_s": total, "stages_s": stages}


def trainer_alone(job_dir: Path) -> float:
    """The same job inputs, the trainer by itself: what a run costs without the workflow around it."""
    with tempfile.TemporaryDirectory(prefix="tt-bench-job-") as scratch:
        shutil.copytree(job_dir / "input", Path(scratch) / "input")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tt_trainer", "train", "--sm-root", scratch],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        return time.perf_counter() - started


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from tt_local.stack import LocalStack

    data_dir = Path(tempfile.mkdtemp(prefix="tt-bench-local-"))
    stack = LocalStack(data_dir, port=0)
    info = stack.start()
    base, headers = f"{info.base_url}/api/v1", {"Authorization": f"Bearer {info.api_key}"}
    runs, direct = [], []
    try:
        spec = json.loads(EXAMPLE.read_text())
        spec_id = requests.post(f"{base}/behavior-specs", json=spec, headers=headers, timeout=60).json()[
            "data"
        ]["id"]
        for i in range(args.repeats):
            result = one_run(base, headers, spec_id)
            runs.append(result)
            job_dir = data_dir / "jobs" / f"tt-{result['run']['fine_tune_job_id']}"
            direct.append(trainer_alone(job_dir))
            print(
                f"  repeat {i + 1}: run {result['total_s']:.1f} s, trainer alone {direct[-1]:.1f} s",
                flush=True,
            )
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    totals = [r["total_s"] for r in runs]
    overheads = [(t - d) / t for t, d in zip(totals, direct, strict=True)]
    stage_stats = {s: _stats([r["stages_s"].get(s, 0.0) for r in runs]) for s in STAGES}
    print(f"\nExample run on the local stack ({args.repeats} repeats, interleaved; median [min–max])\n")
    print(f"{'stage':<24}{'seconds':>26}")
    for stage, stat in stage_stats.items():
        print(f"{stage:<24}{stat['median']:>12.2f}  [{stat['min']:.2f}–{stat['max']:.2f}]")
    total, alone, overhead = _stats(totals), _stats(direct), _stats(overheads)
    print(f"{'whole run':<24}{total['median']:>12.2f}  [{total['min']:.2f}–{total['max']:.2f}]")
    print(f"{'trainer alone':<24}{alone['median']:>12.2f}  [{alone['min']:.2f}–{alone['max']:.2f}]")
    spread = f"[{overhead['min']:.0%}–{overhead['max']:.0%}]"
    print(
        f"\nworkflow overhead: {overhead['median']:.0%} {spread} of the run "
        f"(target < {TARGET_OVERHEAD:.0%}); "
        f"whole run {total['median']:.0f} s (target < {TARGET_TOTAL_S:.0f} s)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "repeats": args.repeats,
                "stages_s": stage_stats,
                "run_total_s": total,
                "trainer_alone_s": alone,
                "overhead": overhead,
                "targets": {"run_total_s": TARGET_TOTAL_S, "overhead": TARGET_OVERHEAD},
                "runs": [{"total_s": r["total_s"], "stages_s": r["stages_s"]} for r in runs],
                "trainer_alone_runs_s": direct,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
