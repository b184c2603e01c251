"""GET /runs/:id/report (PRODUCT.md §10.5): base vs tuned joined by prompt, the test block, the previous
run compared row by row (the same data as eval_summary, §10.6), and nulls before completion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_training import install_fake_claude, install_instant_training, no_language_model
from tests.integration.test_run_workflow import _upload
from tests.integration.test_runs_api import EXAMPLES as TINY_EXAMPLES
from tests.integration.test_runs_api import FAST, TINY_SPEC, create_spec, wait_for
from tests.llm_fakes import FakeClaude
from tt_core.adapters.anthropic_llm import DEFAULT_MODELS

TERMINAL = ("completed", "failed", "cancelled")
# Fewer than 5 examples: every run evaluates all of them, so two runs share their prompts.
EXAMPLES = TINY_EXAMPLES[:4]
SPEC = {**TINY_SPEC, "examples": EXAMPLES}
P = [example["input"] for example in EXAMPLES]


def completed(client: Any, spec_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    started = client.post(f"/behavior-specs/{spec_id}/runs", {**FAST, **(body or {})})
    assert started.status == 201, started.json()
    run = wait_for(client, started.json()["data"]["id"], TERMINAL, timeout=120)
    assert run["status"] == "completed", run["error"]
    return run


def test_two_runs_of_one_spec_compare_row_by_row(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    claude: FakeClaude = install_fake_claude(monkeypatch)
    install_instant_training(monkeypatch)
    tuned_scores = {P[0]: 0.9, P[1]: 0.5, P[2]: 0.8, P[3]: 0.7}

    def score(prompt: str, output: str) -> float:
        return 0.3 if output.startswith("I am not sure") else tuned_scores[prompt]

    claude.score = score
    spec_id = create_spec(client, SPEC)
    first = completed(client, spec_id)
    # The second run: one row drops by 0.5, one rises by 0.5, one moves by less than 0.1.
    tuned_scores.update({P[0]: 0.4, P[1]: 1.0, P[2]: 0.75})
    second = completed(client, spec_id)

    summary = second["eval_summary"]
    assert summary["previous_run_id"] == first["id"]
    assert (summary["regressions"], summary["improvements"]) == (1, 1)
    report = client.get(f"/runs/{second['id']}/report").json()["data"]
    assert report["previous_run"] == {
        "run_id": first["id"],
        "run_number": 1,
        "regressions": summary["regressions"],
        "improvements": summary["improvements"],
        "regressed_examples": [{"prompt": P[0], "old_score": 0.9, "new_score": 0.4}],
        "improved_examples": [{"prompt": P[1], "old_score": 0.5, "new_score": 1.0}],
    }
    first_report = client.get(f"/runs/{first['id']}/report").json()["data"]
    assert first_report["previous_run"] is None

    # Base vs tuned: the same rows, joined by prompt; deltas are tuned − base.
    model = client.get(f"/models/{second['model_id']}").json()["data"]
    assert report["run_id"] == second["id"] and report["status"] == "completed"
    assert report["fine_tuned_model_id"] == second["model_id"]
    assert report["eval_split"] == "spec_examples"
    assert report["scoring_method"] == "llm_judge" and report["judge_model"] == DEFAULT_MODELS["claude"]
    baseline, candidate = report["baseline"], report["candidate"]
    assert baseline["model"] == "tunedtensor/tiny-chat" and candidate["model"] == model["name"]
    assert [row["prompt"] for row in baseline["results"]] == [row["prompt"] for row in candidate["results"]]
    assert sorted(row["prompt"] for row in candidate["results"]) == sorted(P)
    for block in (baseline, candidate):
        assert block["total"] == block["eval_examples_used"] == block["eval_examples_total"] == 4
        assert block["eval_truncated"] is False and block["avg_latency_ms"] == 12.5
    assert baseline["avg_score"] == 0.3 and baseline["pass_rate"] == 0.0
    assert candidate["avg_score"] == round((0.4 + 1.0 + 0.75 + 0.7) / 4, 4) and candidate["pass_rate"] == 0.75
    assert (
        candidate["avg_score"] == summary["avg_score"]
        and baseline["avg_score"] == summary["baseline_avg_score"]
    )
    comparison = report["comparison"]
    assert comparison["avg_score_delta"] == round(candidate["avg_score"] - baseline["avg_score"], 4)
    assert comparison["pass_rate_delta"] == 0.75 and comparison["exact_match_rate_delta"] == 0.25
    assert (comparison["regressions"], comparison["improvements"]) == (0, 4)
    assert comparison["improved_examples"][0] == {"prompt": P[1], "old_score": 0.3, "new_score": 1.0}
    # The interval and verdict (§10.3) over the same rows, seeded by the run id: the summary's exactly.
    assert comparison["verdict"] == summary["verdict"] == "inconclusive"  # 4 rows: no verdict under 10
    assert comparison["avg_score_delta_ci95"] == summary["avg_score_delta_ci95"]
    assert comparison["avg_score_delta"] == summary["avg_score_delta"]
    low, high = comparison["avg_score_delta_ci95"]
    assert 0.1 <= low < comparison["avg_score_delta"] < high <= 0.7  # row deltas 0.1, 0.7, 0.45, 0.4
    assert summary["pass_rate_ci95"] == [0.3006, 0.9544] and summary["baseline_pass_rate_ci95"] == [
        0.0,
        0.4899,
    ]
    assert report["test"] is None


def test_a_run_that_is_not_completed_has_an_empty_report(
    client: Any, other_client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_language_model(monkeypatch)
    spec_id = create_spec(client, SPEC)
    run = client.post(f"/behavior-specs/{spec_id}/runs", FAST).json()["data"]
    client.post(f"/runs/{run['id']}/cancel")
    response = client.get(f"/runs/{run['id']}/report")
    assert response.status == 200
    report = response.json()["data"]
    assert report["status"] == "cancelled" and report["fine_tuned_model_id"] is None
    for block in ("baseline", "candidate", "comparison", "test", "previous_run"):
        assert report[block] is None
    assert other_client.get(f"/runs/{run['id']}/report").status == 404
    assert client.get("/runs/00000000-0000-4000-8000-000000000000/report").status == 404


def test_a_dataset_run_reports_its_test_block(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_language_model(monkeypatch)
    trainer = install_instant_training(monkeypatch)
    # The tuned model gets the test rows wrong: the test block shows it on its own.
    trainer.outputs = lambda row, side: (
        "Wrong." if side == "tuned" and row["split"] == "test" else
        row["expected"] if side == "tuned" else "Go somewhere."
    )  # fmt: skip
    rows = [{"input": f"Where is setting {i}?", "output": f"Go to Settings > Panel {i}."} for i in range(20)]
    dataset_id = _upload(client, rows)
    spec_id = create_spec(client, SPEC)
    hyperparameters = {**FAST["hyperparameters"], "max_test_eval_examples": 2}
    run = completed(
        client, spec_id, {"augment": False, "dataset_id": dataset_id, "hyperparameters": hyperparameters}
    )
    report = client.get(f"/runs/{run['id']}/report").json()["data"]
    assert report["eval_split"] == "dataset_validation" and report["scoring_method"] == "similarity"
    assert report["judge_model"] is None and report["candidate"]["avg_score"] == 1.0
    test = report["test"]
    assert test["baseline"]["model"] == "tunedtensor/tiny-chat"
    assert test["candidate"]["eval_examples_total"] == 2 and test["candidate"]["total"] == 2
    assert test["candidate"]["eval_examples_total"] == test["baseline"]["eval_examples_total"]
    assert test["candidate"]["avg_score"] == 0.0 and test["comparison"]["regressions"] == 2
    assert {row["scored_by"] for row in test["candidate"]["results"]} == {"similarity"}
    assert [e["prompt"] for e in test["comparison"]["regressed_examples"]] == [
        row["prompt"] for row in test["candidate"]["results"]
    ]
