"""The Evaluate step (PRODUCT.md §10.2, §10.3): a row's base and tuned outputs are scored by the same
scorer, so a judge outage falls on both models alike, and the summary says how many rows fell back."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from datetime import UTC, datetime
from typing import Any

from tt_core.evaluation.scoring import similarity_score
from tt_core.models.evaluation import JudgeVerdict
from tt_core.models.runs import EvalPlan, Hyperparameters, RunRecord
from tt_core.ports import LanguageModelError
from tt_core.runs.artifacts import PREDICTIONS_FILE
from tt_core.services.run_evaluation import evaluate_predictions

NOW = datetime(2026, 11, 29, tzinfo=UTC)
KEY = "jobs/out/output.tar.gz"


class Objects:
    """The one object the step reads: the trainer's output archive with its predictions."""

    def __init__(self, predictions: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(row) + "\n" for row in predictions).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo(PREDICTIONS_FILE)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text))
        self.archive = buffer.getvalue()

    def get_bytes(self, key: str) -> bytes:
        assert key == KEY
        return self.archive


class FailingJudge:
    """Scores every output 0.9, until `works_for` calls have been made; then the provider is down."""

    model = "fake-judge"

    def __init__(self, works_for: int) -> None:
        self.works_for = works_for
        self.calls = 0
        self._lock = threading.Lock()

    def judge(self, **_: Any) -> JudgeVerdict:
        with self._lock:
            self.calls += 1
            if self.calls > self.works_for:
                raise LanguageModelError("the provider is down")
        return JudgeVerdict(score=0.9, passed=True, reasoning="Fine.")


def predictions(rows: int, split: str = "primary") -> list[dict[str, Any]]:
    """Base and tuned give the same output on every row, far from the reference by word overlap."""
    out = []
    for i in range(rows):
        output = {"output": f"Something about topic {i} entirely.", "latency_ms": 10.0, "finished": True}
        out.append(
            {
                "id": f"{split}-{i}",
                "split": split,
                "input": f"{split} question {i}?",
                "expected": f"The reference answer {i}.",
                "base": dict(output),
                "tuned": dict(output),
            }
        )
    return out


def run_record(rows: int) -> RunRecord:
    hp = Hyperparameters(
        n_epochs=3, learning_rate=2e-4, batch_size=8, lora_rank=16, lora_alpha=32, lora_dropout=0.05,
        max_seq_length=2048, long_examples="truncate", max_eval_examples=100, max_test_eval_examples=50,
        max_output_tokens=256, eval_reserved_output_tokens=64, augment=False, use_llm_judge=True,
    )  # fmt: skip
    plan = EvalPlan(
        eval_split="spec_holdout",
        eval_overlaps_training=False,
        eval_examples_total=rows,
        eval_truncated=False,
    )
    return RunRecord(
        id="run-1", account_id="a1", behavior_spec_id="s1", run_number=1, status="evaluating",
        current_stage="scoring", stage_label="Scoring outputs", progress_pct=95, status_message="",
        spec_snapshot={}, base_model="tunedtensor/tiny-chat", hyperparameters=hp, fine_tune_job_id="job",
        eval_plan=plan, started_at=NOW, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def evaluate(rows: list[dict[str, Any]], judge: Any, primary: int) -> tuple[dict[str, Any], Any]:
    return evaluate_predictions(Objects(rows), KEY, run_record(primary), previous=None, judge=judge)


def test_a_judge_that_fails_part_way_scores_both_models_alike() -> None:
    # 60 rows, identical outputs; the judge answers 45 calls, then fails (the numbers).
    results, summary = evaluate(predictions(60), FailingJudge(works_for=45), 60)
    base, tuned = results["primary"]["baseline"], results["primary"]["candidate"]
    assert [(r["score"], r["scored_by"]) for r in base] == [(r["score"], r["scored_by"]) for r in tuned]
    # Rows are judged in pairs, base then tuned: 22 whole pairs fit in 45 calls; the 23rd pair's tuned
    # call failed, so that row fell back on both sides, with every row after it.
    judged = [r["scored_by"] == "llm_judge" for r in tuned]
    assert judged == [True] * 22 + [False] * 38
    assert tuned[22]["score"] == similarity_score(tuned[22]["expected"], tuned[22]["actual"])
    assert summary.avg_score == summary.baseline_avg_score and summary.pass_rate == summary.baseline_pass_rate
    assert summary.avg_score_delta == 0.0 and summary.avg_score_delta_ci95 == (0.0, 0.0)
    assert summary.verdict == "inconclusive"
    assert (summary.scoring_method, summary.judge_model, summary.judge_fallback_rows) == (
        "mixed",
        "fake-judge",
        38,
    )


def test_scoring_method_says_how_the_rows_were_scored() -> None:
    rows = predictions(4) + predictions(2, "test")
    results, summary = evaluate(rows, FailingJudge(works_for=100), 4)
    assert (summary.scoring_method, summary.judge_model, summary.judge_fallback_rows) == (
        "llm_judge",
        "fake-judge",
        0,
    )
    assert {r["scored_by"] for side in results["test"].values() for r in side} == {"llm_judge"}

    _, summary = evaluate(rows, FailingJudge(works_for=0), 4)  # every row fell back
    assert (summary.scoring_method, summary.judge_model, summary.judge_fallback_rows) == (
        "similarity",
        None,
        4,
    )

    _, summary = evaluate(rows, None, 4)  # no judge at all
    assert (summary.scoring_method, summary.judge_model, summary.judge_fallback_rows) == (
        "similarity",
        None,
        0,
    )


def test_the_summary_carries_intervals_and_a_verdict_seeded_by_the_run() -> None:
    rows = predictions(12)
    for i, row in enumerate(rows):
        row["tuned"]["output"] = row["expected"]  # the tuned model gets every row right
        if i % 3:
            row["base"]["output"] = row["expected"]
    results, summary = evaluate(rows, None, 12)
    assert summary.pass_rate == 1.0 and summary.baseline_pass_rate == 0.6667
    assert summary.pass_rate_ci95 == (0.7575, 1.0) and summary.baseline_pass_rate_ci95 == (0.3906, 0.8619)
    assert summary.avg_score_delta is not None and summary.avg_score_delta > 0
    low, high = summary.avg_score_delta_ci95 or (0.0, 0.0)
    assert 0 < low < high and summary.verdict == "better"
    _, again = evaluate(rows, None, 12)
    assert again.avg_score_delta_ci95 == summary.avg_score_delta_ci95  # seeded by the run id
    assert results["primary"]["candidate"][0]["scored_by"] == "similarity"
