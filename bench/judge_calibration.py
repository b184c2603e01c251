"""Judge calibration: the LLM judge on a spec's own examples vs copies with a constraint broken.

For each example the judge scores (a) its own output against itself and (b) a copy of the output
made to break one of the spec's constraints. A well-calibrated judge scores (a) high and (b) low:
the script prints both groups, their mean scores and pass rates, the separation (difference of the
means) and the share of (good, bad) pairs the judge orders correctly (AUC), and writes
bench/results/judge_calibration.json.

Calls the real Anthropic API, so it runs only when ANTHROPIC_API_KEY is set (a few cents on the
default spec); without a key it says so and exits 0.

    python bench/judge_calibration.py [SPEC_FILE] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "core" / "python"), str(ROOT)]

from tt_core.evaluation.judge import ScoreJob, judge_rows  # noqa: E402
from tt_core.specs.lint import broken_constraints, check_constraint  # noqa: E402

DEFAULT_SPEC = ROOT / "examples" / "customer-support" / "tunedtensor.json"
RESULTS = ROOT / "bench" / "results" / "judge_calibration.json"
_NEGATIVE = re.compile(r"^\s*(never|do not|don't)\s+(?P<rest>.+?)\.?\s*$", re.IGNORECASE)
_ALWAYS = re.compile(r"^\s*always\s+(?P<rest>.+?)\.?\s*$", re.IGNORECASE)


def violate(output: str, constraint: str) -> str | None:
    """A copy of `output` that breaks `constraint` plainly, or None when we cannot make one."""
    negative, always = _NEGATIVE.match(constraint), _ALWAYS.match(constraint)
    if negative:
        rest = negative.group("rest").strip("\"'“”")
        # "Never promise refunds." → "… Also, I will promise refunds for you."
        candidate = f"{output} Also, I will {rest} for you."
    elif always:
        rest = always.group("rest")
        lowered = rest.casefold()
        if lowered.startswith("start with"):
            candidate = f"Well, {output}"
        elif lowered.startswith("end with"):
            candidate = f"{output} Anything else?"
        else:
            needle = re.sub(r"^(include|use|contain|respond in|reply in)\s+", "", rest, flags=re.IGNORECASE)
            candidate = re.sub(re.escape(needle.strip("\"'")), "", output, flags=re.IGNORECASE).strip()
    else:
        return None
    if candidate == output:
        return None
    # Where a lint heuristic applies it must agree that the copy breaks the rule.
    checkable = check_constraint(0, constraint, []).rule != "judge"
    if checkable and not broken_constraints(candidate, [constraint]):
        return None
    return candidate


def build_jobs(spec: dict[str, Any], limit: int) -> tuple[list[ScoreJob], list[ScoreJob]]:
    good, bad = [], []
    constraints = [c for c in spec.get("constraints") or [] if c.strip()]
    for index, example in enumerate(spec["examples"][:limit]):
        good.append(ScoreJob(f"good-{index}", example["input"], example["output"], example["output"], None))
        for offset in range(len(constraints)):  # a different constraint per example, where one applies
            constraint = constraints[(index + offset) % len(constraints)]
            copy = violate(example["output"], constraint)
            if copy is not None:
                bad.append(ScoreJob(f"bad-{index}", example["input"], example["output"], copy, None))
                break
    return good, bad


def auc(good: list[float], bad: list[float]) -> float | None:
    """P(score of a good row > score of a bad row), ties counting half."""
    if not good or not bad:
        return None
    wins = sum(1.0 if g > b else 0.5 if g == b else 0.0 for g in good for b in bad)
    return round(wins / (len(good) * len(bad)), 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC))
    parser.add_argument("--limit", type=int, default=20, help="examples used (default 20)")
    args = parser.parse_args()
    if not os.environ.get("ANTHROPIC_API_KEY", "").strip():
        print("judge_calibration: skipped (ANTHROPIC_API_KEY is not set; this bench calls the real API).")
        return 0

    from tt_core.adapters.anthropic_llm import language_model_for, model_ids
    from tt_core.evaluation.judge import LlmJudge
    from tt_core.settings import Settings

    settings = Settings.from_env()
    llm = language_model_for(settings)
    assert llm is not None
    judge = LlmJudge(llm, model=model_ids(settings)[1])
    spec = json.loads(Path(args.spec).read_text())
    good_jobs, bad_jobs = build_jobs(spec, args.limit)
    context = {key: spec.get(key) for key in ("system_prompt", "guidelines", "constraints")}
    started = time.monotonic()
    results = judge_rows(judge, [*good_jobs, *bad_jobs], context=context, timeout_seconds=900)
    seconds = time.monotonic() - started
    good, bad = results[: len(good_jobs)], results[len(good_jobs) :]

    def summary(rows: list[Any]) -> dict[str, Any]:
        scores = [row.score for row in rows]
        return {
            "rows": len(rows),
            "mean_score": round(statistics.fmean(scores), 4) if scores else None,
            "pass_rate": round(sum(row.passed for row in rows) / len(rows), 4) if rows else None,
            "judged": sum(row.scored_by == "llm_judge" for row in rows),
        }

    report = {
        "spec": str(args.spec),
        "judge_model": judge.model,
        "seconds": round(seconds, 1),
        "own_examples": summary(good),
        "constraint_broken": summary(bad),
        "auc": auc([r.score for r in good], [r.score for r in bad]),
    }
    means = (report["own_examples"]["mean_score"], report["constraint_broken"]["mean_score"])
    report["separation"] = round(means[0] - means[1], 4) if None not in means else None
    print(f"{'ROW':<8} {'SCORE':>6}  {'BY':<20} OUTPUT")
    for row in results:
        print(f"{row.id:<8} {row.score:>6.4f}  {row.scored_by:<20} {row.actual[:70]}")
    print(json.dumps(report, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
