"""`tt runs report` (PRODUCT.md §14.3, §14.4): base vs tuned vs delta, rows by mode and split, --json,
and `--html FILE`, a self-contained page whose content is asserted here (no browser needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cli.conftest import Api
from tests.fake_training import install_fake_claude, install_instant_training, no_language_model
from tests.integration.test_runs_api import wait_for
from tt_cli.report_html import loss_curve_svg, render_report_html

EXAMPLES = [
    {"input": "What's <b>bold</b> & co?", "output": "Bold is <b>."},  # escaped in the page
    {"input": "How do I cancel?", "output": "Go to Settings > Billing."},
    {"input": "How do I reset my password?", "output": "Go to Settings > Security."},
    {"input": "Where are invoices?", "output": "Open Billing > Invoices."},
]
SPEC = {
    "name": "Report Bot",
    "base_model": "tiny-chat",
    "system_prompt": "You answer support questions.",
    "guidelines": ["Point to the settings page"],
    "constraints": ["Never promise refunds"],
    "examples": EXAMPLES,  # fewer than 5: all four are evaluated
}
FAST = {
    "augment": False,
    "hyperparameters": {"n_epochs": 1, "max_output_tokens": 8, "eval_reserved_output_tokens": 4},
}
REGRESSED, IMPROVED = EXAMPLES[0]["input"], EXAMPLES[1]["input"]


class Http:
    def __init__(self, api: Api) -> None:
        self.base = f"{api.base_url}/api/v1"
        self.headers = {"Authorization": f"Bearer {api.key}"}

    def post(self, path: str, body: Any) -> Any:
        return requests.post(self.base + path, json=body, headers=self.headers, timeout=30).json()["data"]

    def get(self, path: str) -> Any:
        response = requests.get(self.base + path, headers=self.headers, timeout=30)

        class Wrapped:
            def json(self) -> Any:
                return response.json()

        return Wrapped()


def outputs(row: dict[str, Any], side: str) -> str:
    if row["input"] == REGRESSED:
        return row["expected"] if side == "base" else "No idea."
    if row["input"] == IMPROVED:
        return "No idea." if side == "base" else row["expected"]
    return row["expected"] if side == "tuned" else "Maybe ask someone."


@pytest.fixture
def completed_run(authed: Api, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    claude = install_fake_claude(monkeypatch)
    claude.score = lambda prompt, output: 1.0 if output in {e["output"] for e in EXAMPLES} else 0.2
    install_instant_training(monkeypatch).outputs = outputs
    http = Http(authed)
    spec = http.post("/behavior-specs", SPEC)
    run = http.post(f"/behavior-specs/{spec['id']}/runs", FAST)
    done = wait_for(http, run["id"], ("completed", "failed", "cancelled"), timeout=120)
    assert done["status"] == "completed", done["error"]
    return done


def test_report_prints_base_vs_tuned_and_the_regressed_rows(run: Any, completed_run: dict[str, Any]) -> None:
    run_id = completed_run["id"]
    result = run("runs", "report", run_id[:8])
    assert result.code == 0, result.err
    out = result.out
    assert f"Run:        {run_id}" in out and "Scoring:    llm_judge (claude-sonnet-4-6)" in out
    assert re.search(r"Avg score\s+0\.4000\s+0\.8000\s+\+0\.4000 \[[-+]\d\.\d{4}, [-+]\d\.\d{4}\]", out), out
    # Wilson intervals next to the rates (1 and 3 passes of 4), and no verdict on 4 rows
    assert re.search(r"Pass rate\s+25\.0% \[4\.6%, 69\.9%\]\s+75\.0% \[30\.1%, 95\.4%\]\s+\+50\.0 pp", out), (
        out
    )
    assert "Verdict: inconclusive (avg score delta +0.4000, 95% CI [" in out
    assert "Tuned vs base: 1 regressions, 3 improvements" in out
    assert "Regressed examples (worst first):" in out
    rows = out.split("Regressed examples (worst first):", 1)[1]
    assert REGRESSED in rows and "No idea." in rows and "-0.8000" in rows and IMPROVED not in rows

    failures = run("runs", "report", run_id, "--mode", "failures", "--limit", "1")
    assert failures.code == 0 and "Failing tuned rows (lowest first):" in failures.out
    listed = failures.out.split("Failing tuned rows (lowest first):", 1)[1]
    assert REGRESSED in listed and IMPROVED not in listed  # only the failing row, and --limit 1

    test_split = run("runs", "report", run_id, "--split", "test")
    assert test_split.code == 0 and "This run has no test split." in test_split.out
    assert "Primary split" not in test_split.out
    both = run("runs", "report", run_id, "--split", "all")
    assert "Primary split (4 rows)" in both.out and "This run has no test split." in both.out

    as_json = run("--json", "runs", "report", run_id)
    assert as_json.code == 0 and as_json.json["data"]["run_id"] == run_id
    assert as_json.json["data"]["comparison"]["regressions"] == 1


def test_report_html_is_one_self_contained_page(run: Any, completed_run: dict[str, Any]) -> None:
    run_id = completed_run["id"]
    result = run("runs", "report", run_id, "--html", "report.html")
    assert result.code == 0, result.err
    assert "Wrote report.html" in result.out and "Avg score" in result.out  # the text report as well
    page = Path("report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # Nothing to fetch: no scripts, stylesheets, images or any URL at all.
    for forbidden in ("<script", "<link", "<img", "src=", "href=", "url(", "http://", "https://", "@import"):
        assert forbidden not in page, forbidden
    assert "<title>Report Bot #1 report</title>" in page and run_id in page
    # The loss curve: one point per logged step of the trainer (tests/fake_training.py logs 4).
    polyline = re.search(r'<polyline class="loss"[^>]* points="([^"]+)"', page)
    assert polyline is not None and len(polyline.group(1).split()) == 4
    assert "Training loss by epoch: 1.7500 → 1.0000" in page
    # Summary cards: tuned value, base value and the delta.
    for label in ("Avg score", "Pass rate", "Exact match", "Finished", "Base vs tuned"):
        assert f'<div class="label">{label}</div>' in page
    assert '<div class="value">0.8000</div><div class="base">base 0.4000' in page
    assert '<div class="value">100.0%</div><div class="base">base 0.0% <span class="up">+100.0 pp' in page
    assert "<td>Valid JSON</td>" in page  # the output diagnostics table
    # Every row side by side, escaped, regressions and failures marked.
    assert (
        page.count('<td class="text">How do I') == 2
        and "What&#x27;s &lt;b&gt;bold&lt;/b&gt; &amp; co?" in page
    )
    assert "<b>bold</b>" not in page
    regressed = re.search(r'<tr class="regression failure">(.*?)</tr>', page)
    assert regressed is not None and "What&#x27;s" in regressed.group(1) and "No idea." in regressed.group(1)
    assert page.count('<tr class="improvement">') == 3 and page.count('class="tag regression"') == 1
    assert "Follows the spec." in page  # the judge's reasoning under each output


def test_report_of_a_run_that_is_not_completed(
    run: Any, authed: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_language_model(monkeypatch)
    http = Http(authed)
    spec = http.post("/behavior-specs", SPEC)
    started = http.post(f"/behavior-specs/{spec['id']}/runs", FAST)
    requests.post(f"{http.base}/runs/{started['id']}/cancel", headers=http.headers, timeout=30)
    result = run("runs", "report", started["id"])
    assert result.code == 0 and "No report yet: the run is cancelled" in result.out
    written = run("runs", "report", started["id"], "--html", "pending.html")
    assert written.code == 0 and "its report is ready once it completes" in Path("pending.html").read_text()
    unwritable = run("runs", "report", started["id"], "--html", "missing-dir/x.html")
    assert unwritable.code == 1 and "cannot write missing-dir/x.html" in unwritable.err


def test_the_page_renders_without_a_training_log_and_escapes_everything() -> None:
    assert "No training loss was logged." in loss_curve_svg([])
    flat = loss_curve_svg([{"epoch": 1, "loss": 0.5}])
    assert flat.count(",") == 1 and "<polyline" in flat  # one point, no division by zero
    report: dict[str, Any] = {
        "run_id": "r", "status": "completed", "scoring_method": "similarity", "judge_model": None,
        "eval_split": "<x>", "baseline": {"results": []}, "comparison": {},
        "candidate": {"model": "m<1>", "results": []}, "test": None, "previous_run": None,
    }  # fmt: skip
    page = render_report_html(report, None, {"_spec_name": "A & B", "run_number": 2})
    assert "<title>A &amp; B #2 report</title>" in page and "&lt;x&gt;" in page and "m&lt;1&gt;" in page
    assert "No rows were evaluated." in page and json.dumps(report)  # nothing else is needed


def test_the_page_shows_the_test_split_with_its_own_diagnostics() -> None:
    row = {
        "prompt": "q",
        "expected": "e",
        "actual": "a",
        "score": 0.5,
        "passed": False,
        "scored_by": "similarity",
    }
    block = {"baseline": {"model": "b", "results": [row]}, "candidate": {"model": "t", "results": [row]}}
    report = {
        "run_id": "r",
        "status": "completed",
        **block,
        "comparison": {},
        "test": {**block, "comparison": {}},
    }
    outputs = {"baseline": {"total": 1}, "candidate": {"total": 1, "valid_json_rate": 0.25},
               "test": {"baseline": {"total": 1}, "candidate": {"total": 1, "valid_json_rate": 0.75}},
               "insights": ["Only the primary split has insights."]}  # fmt: skip
    page = render_report_html(report, {"output_diagnostics": outputs}, None)
    primary, test = page.split("<h2>Output diagnostics (test split)</h2>")
    assert (
        "<td>Valid JSON</td><td>25.0%</td>" in primary and "Only the primary split has insights." in primary
    )
    assert "<td>Valid JSON</td><td>75.0%</td>" in test and "<h2>Rows (test split)</h2>" in test
    assert '<tr class="failure">' in test


def test_the_page_shows_the_verdict_and_the_intervals() -> None:
    def rows(scores: list[float]) -> list[dict[str, Any]]:
        return [{"prompt": f"q{i}", "expected": "e", "actual": "a", "score": score, "passed": score >= 0.7,
                 "scored_by": "llm_judge"} for i, score in enumerate(scores)]  # fmt: skip

    comparison = {"avg_score_delta": 0.4, "avg_score_delta_ci95": [0.3, 0.5], "verdict": "better",
                  "regressions": 0, "improvements": 9}  # fmt: skip
    report = {
        "run_id": "r", "status": "completed", "scoring_method": "mixed", "judge_model": "judge",
        "baseline": {"avg_score": 0.4, "pass_rate": 0.25, "results": rows([0.9] + [0.4] * 3)},
        "candidate": {"avg_score": 0.8, "pass_rate": 0.75, "results": rows([0.9] * 3 + [0.5])},
        "comparison": comparison,
        "test": {"baseline": {"pass_rate": 0.0, "results": rows([0.4] * 2)},
                 "candidate": {"pass_rate": 0.5, "results": rows([0.9, 0.0])},
                 "comparison": {**comparison, "avg_score_delta_ci95": [-0.4, 0.5],
                                "verdict": "inconclusive"}},
    }  # fmt: skip
    for row in report["candidate"]["results"][2:]:
        row["scored_by"] = "similarity_fallback"
    page = render_report_html(report, None, None)
    assert '<div class="label">Verdict</div><div class="value">better</div>' in page
    assert "avg score delta +0.4000, 95% CI [+0.3000, +0.5000]" in page
    assert '<div class="ci">95% CI [30.1%, 95.4%] · base [4.6%, 69.9%]</div>' in page  # Wilson, 3 and 1 of 4
    assert '<div class="ci">Δ 95% CI [+0.3000, +0.5000]</div>' in page
    assert "scoring mixed (judge; 2 rows fell back to similarity)" in page
    test = page.split("<h2>Rows (test split)</h2>")[0].rsplit("</table>", 1)[-1]
    assert "Test split: inconclusive (avg score delta +0.4000, 95% CI [-0.4000, +0.5000])" in test
    assert "pass rate 50.0% [9.4%, 90.5%] vs base 0.0% [0.0%, 65.8%]" in test  # 1 of 2: [0.0945, 0.9055]


def test_the_curve_draws_validation_beside_training_with_the_runs_insights() -> None:
    samples = [
        {"epoch": 0.5, "loss": 2.0, "valid_loss": None},
        {"epoch": 1.0, "loss": 1.5, "valid_loss": 1.8},
        {"epoch": 2.0, "loss": 1.0, "valid_loss": 1.9},
    ]
    svg = loss_curve_svg(samples)
    training = re.search(r'<polyline class="loss"[^>]* points="([^"]+)"', svg)
    validation = re.search(r'<polyline class="valid-loss"[^>]* points="([^"]+)"', svg)
    assert training is not None and len(training.group(1).split()) == 3
    assert validation is not None and len(validation.group(1).split()) == 2
    assert "validation loss 1.8000 → 1.9000" in svg and svg.count("<circle") == 2
    report: dict[str, Any] = {
        "run_id": "r", "status": "completed", "scoring_method": "similarity", "judge_model": None,
        "eval_split": "x", "baseline": {"results": []}, "comparison": {},
        "candidate": {"model": "m", "results": []}, "test": None, "previous_run": None,
    }  # fmt: skip
    sentence = "Validation loss rose after epoch 1: later epochs may be over-fitting; consider n_epochs=1."
    diagnostics = {
        "insights": [sentence, "Outputs end early."],
        "training": {"curve": {"samples": samples}},
        "output_diagnostics": {"insights": ["Outputs end early."]},
    }
    page = render_report_html(report, diagnostics, {"_spec_name": "A", "run_number": 1})
    assert page.count(sentence) == 1 and page.count("Outputs end early.") == 1  # each insight once
