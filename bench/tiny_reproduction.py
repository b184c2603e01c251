"""How well `tunedtensor/tiny-chat` learns the example spec: training answers reproduced exactly, and time.

Run: python bench/tiny_reproduction.py [--repeats 3] [--vary-split] [--config NAME:n_epochs=12,...].
For each hyperparameter set (by default the old tiny defaults, 20 epochs / lr 5e-3 / batch 4 / rank 16 /
dropout 0.05, and the current ones from tt_core.services.runs) it lays out a job as the local stack does
(the example spec split by PRODUCT.md §9.3: ⌊n ÷ 5⌋ held out; train, eval and spec channels; the stack's
hyperparameters), runs the trainer as the stack does (`python -m tt_trainer train` in a subprocess, with
the stack's environment), then loads the adapter with the serving runtime (`tt models serve`'s
ModelRuntime + ChatEngine, spec prompt, temperature 0) and asks every TRAINING input: an exact
reproduction is an answer equal to the example's output. It also reports the held-out rows the trainer
evaluated (exact and similarity pass ≥ 0.7, tuned vs base), so generalisation is stated, not assumed.
Repeats are interleaved (A B A B …): timings are medians with min–max, and the load average is recorded
beside them; `--vary-split` holds out other examples in each repeat, as a spec pushed with another id
would. Writes bench/results/tiny_reproduction.json. Targets: ≥ 90 % of the training answers reproduced,
the trainer under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tiny_reproduction.json"
EXAMPLE = ROOT / "examples" / "customer-support" / "tunedtensor.json"
TINY = "tunedtensor/tiny-chat"
# The tiny defaults before the 50-example spec: every knob they set or inherited from §9.1, so that the
# current tiny defaults (merged in by stack_hyperparameters) change none of them.
OLD_DEFAULTS = {
    "n_epochs": 20,
    "learning_rate": 5e-3,
    "batch_size": 4,
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
}
# A stable stand-in for the spec id: it seeds which examples are held out (§9.3), as a pushed spec's id does.
SPLIT_SEED = "bench-tiny-reproduction"
ANSWER_TOKENS = 64
TARGET_REPRODUCED, TARGET_TRAIN_S = 0.9, 60.0


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME:key=value,key=value` → (NAME, {key: value})."""
    name, _, body = text.partition(":")
    values = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        values[key.strip()] = _number(value.strip())
    return name.strip(), values


def stack_hyperparameters(overrides: dict[str, Any]) -> dict[str, Any]:
    """What the local stack sends the trainer for a default run of the example spec, with overrides."""
    from tt_core.services import runs

    values = {**runs._DEFAULTS, **runs._MODEL_DEFAULTS.get(TINY, {}), **overrides}
    for workflow_only in ("max_eval_examples", "max_test_eval_examples"):
        values.pop(workflow_only, None)
    return {"base_model": TINY, **values}


def lay_out_job(
    job: Path, spec: dict[str, Any], hyperparameters: dict[str, Any], split_seed: str
) -> dict[str, Any]:
    from tt_core.runs.compiler import Example, eval_jsonl, split_spec_examples, training_jsonl
    from tt_core.specs.prompt import compose_system_prompt

    system = compose_system_prompt(spec["system_prompt"], spec["guidelines"], spec["constraints"])
    examples = [Example(e["input"], e["output"]) for e in spec["examples"]]
    plan = split_spec_examples(examples, seed=split_seed, max_eval=50)
    config = job / "input" / "config" / "hyperparameters.json"
    config.parent.mkdir(parents=True)
    # SageMaker (and the local stack) hand every value over as a string.
    config.write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}, indent=2))
    for channel, name, data in (
        ("train", "train.jsonl", training_jsonl(plan.train, system)),
        ("eval", "eval.jsonl", eval_jsonl(plan.eval, system, split="primary", id_prefix="eval")),
        ("spec", "tunedtensor.json", json.dumps(spec, ensure_ascii=False, indent=2).encode()),
    ):
        (job / "input" / "data" / channel).mkdir(parents=True)
        (job / "input" / "data" / channel / name).write_bytes(data)
    return {"train": plan.train, "eval": plan.eval}


def trainer_environment(threads: int | None) -> dict[str, str]:
    from tt_local.process_launcher import _trainer_environment

    env = _trainer_environment()  # the very environment the local stack starts the trainer with
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def train(job: Path, threads: int | None) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with (job / "trainer.log").open("wb") as log:
        done = subprocess.run(
            [sys.executable, "-m", "tt_trainer", "train", "--sm-root", str(job)],
            cwd=job,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=trainer_environment(threads),
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the trainer failed ({done.returncode}); see {job / 'trainer.log'}")
    events = []
    for line in (job / "trainer.log").read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    saved = next(e for e in events if e.get("event") == "saved")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "job_wall_s": round(wall, 2),
        "job_cpu_s": round(cpu, 2),
        "train_s": saved["train_runtime_seconds"],
        "train_loss": saved["train_loss"],
        "steps": saved["steps"],
    }


def reproduce(job: Path, rows: list[Any]) -> dict[str, Any]:
    """Every training input through the serving runtime at temperature 0 with the spec prompt."""
    from tt_serve.completions import ChatEngine, ChatRequest, spec_prompt_from_file
    from tt_serve.runtime import ModelRuntime

    model_dir = job / "model"
    engine = ChatEngine(
        ModelRuntime.load(model_dir, device="cpu"),
        spec_prompt=spec_prompt_from_file(model_dir / "tunedtensor.json"),
        temperature=0.0,
    )
    misses = []
    for row in rows:
        request = ChatRequest(
            messages=[{"role": "user", "content": row.input}], max_tokens=ANSWER_TOKENS, temperature=0
        )
        answer = engine.complete(request).content
        if answer != row.output:
            misses.append({"input": row.input, "expected": row.output, "actual": answer})
    return {"reproduced": len(rows) - len(misses), "total": len(rows), "misses": misses}


def held_out(job: Path) -> dict[str, Any]:
    """The trainer's own eval generations on the held-out rows, scored as a similarity-scored run is."""
    from tt_core.evaluation.scoring import similarity_score

    records = [json.loads(line) for line in (job / "output" / "data" / "eval_predictions.jsonl").open()]
    out: dict[str, Any] = {"rows": len(records)}
    for side in ("base", "tuned"):
        scores = [similarity_score(r["expected"], r[side]["output"]) for r in records]
        out[side] = {
            "exact": sum(r[side]["output"] == r["expected"] for r in records),
            "passed": sum(s >= 0.7 for s in scores),
            "avg_score": round(statistics.fmean(scores), 4) if scores else None,
        }
    return out


def one(
    name: str, overrides: dict[str, Any], spec: dict[str, Any], threads: int | None, split_seed: str
) -> dict[str, Any]:
    hyperparameters = stack_hyperparameters(overrides)
    with tempfile.TemporaryDirectory(prefix="tt-bench-tiny-") as scratch:
        job = Path(scratch)
        plan = lay_out_job(job, spec, hyperparameters, split_seed)
        load_before = os.getloadavg()[0]
        timing = train(job, threads)
        load_after = os.getloadavg()[0]
        result = {
            "config": name,
            "split_seed": split_seed,
            **timing,
            **reproduce(job, plan["train"]),
            "held_out": held_out(job),
            "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
        }
        if os.environ.get("TT_BENCH_KEEP"):
            shutil.copytree(job, Path(os.environ["TT_BENCH_KEEP"]) / f"{name}-{time.time_ns()}")
    return result


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def _shown(spread: dict[str, float]) -> str:
    return f"{spread['median']:.1f} ({spread['min']:.1f}–{spread['max']:.1f})"


def summarise(name: str, hyperparameters: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [r for r in results if r["config"] == name]
    reproduced = [r["reproduced"] for r in mine]
    return {
        "hyperparameters": hyperparameters,
        "reproduced": _spread([float(v) for v in reproduced]),
        "total": mine[0]["total"],
        "train_s": _spread([r["train_s"] for r in mine]),
        "job_wall_s": _spread([r["job_wall_s"] for r in mine]),
        "job_cpu_s": _spread([r["job_cpu_s"] for r in mine]),
        "held_out": mine[-1]["held_out"],
    }


def main() -> int:
    from tt_core.services import runs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repeats of every config")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="NAME:key=value,... (repeatable); default: old and current tiny defaults",
    )
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the trainer")
    parser.add_argument(
        "--vary-split",
        action="store_true",
        help="hold out other examples in each repeat (as pushes with other spec ids do)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    configs = dict(parse_config(c) for c in args.config) or {
        "old": OLD_DEFAULTS,
        "current": dict(runs._MODEL_DEFAULTS.get(TINY, {})),
    }
    spec = json.loads(EXAMPLE.read_text())
    results = []
    for repeat in range(args.repeats):
        split_seed = f"{SPLIT_SEED}-{repeat}" if args.vary_split and repeat else SPLIT_SEED
        for name, overrides in configs.items():
            result = one(name, overrides, spec, args.threads, split_seed)
            results.append(result)
            print(
                f"[{repeat + 1}/{args.repeats}] {name}: {result['reproduced']}/{result['total']} reproduced, "
                f"train {result['train_s']:.1f} s (job {result['job_wall_s']:.1f} s wall, "
                f"{result['job_cpu_s']:.1f} s CPU), held out tuned exact "
                f"{result['held_out']['tuned']['exact']}/{result['held_out']['rows']}, "
                f"load {result['load_avg_1m']}",
                flush=True,
            )
    summary = {name: summarise(name, stack_hyperparameters(o), results) for name, o in configs.items()}

    rows = []
    for name, s in summary.items():
        hp = s["hyperparameters"]
        short = f"ep {hp['n_epochs']} lr {hp['learning_rate']:g} bs {hp['batch_size']}"
        short += f" r {hp['lora_rank']}/{hp['lora_alpha']} drop {hp['lora_dropout']:g}"
        ho = s["held_out"]
        rows.append(
            [
                name,
                short,
                f"{s['reproduced']['median']:.0f}/{s['total']}",
                _shown(s["train_s"]),
                _shown(s["job_wall_s"]),
                f"{ho['tuned']['passed']}/{ho['rows']} vs {ho['base']['passed']}/{ho['rows']}",
            ]
        )
    header = ["CONFIG", "HYPERPARAMETERS", "REPRODUCED", "TRAIN S", "JOB S", "HELD OUT PASS TUNED VS BASE"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(
        f"Targets: ≥ {TARGET_REPRODUCED:.0%} of training answers reproduced exactly, training < "
        f"{TARGET_TRAIN_S:.0f} s on 2 cores. Load average (1 min) during the runs: "
        f"{min(r['load_avg_1m'][0] for r in results):.1f}–{max(r['load_avg_1m'][1] for r in results):.1f}."
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "threads": args.threads,
                },
                "spec": str(EXAMPLE.relative_to(ROOT)),
                "split_seed": SPLIT_SEED,
                "vary_split": args.vary_split,
                "summary": summary,
                "runs": results,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"Wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
