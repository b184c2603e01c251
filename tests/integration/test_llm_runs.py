"""Runs through the in-process API with Claude faked at its HTTP transport: every case (good answers,
malformed, wrong schema, refusal, 429/529, a provider that is down, none at all) completes the run
with the right augmentation_method, scoring_method and scored_by. Training is instant here
(tests/fake_training.py) except in the one run on the real trainer."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.fake_training import install_fake_claude, install_instant_training, no_language_model
from tests.integration.test_runs_api import EXAMPLES, FAST, TINY_SPEC, create_spec, wait_for
from tests.llm_fakes import FakeClaude, refusal, status, text_answer, tool_answer
from tt_core.adapters.anthropic_llm import DEFAULT_MODELS

TERMINAL = ("completed", "failed", "cancelled")
# Whole words: a UUID may well hold "ec2".
PROVIDER_WORDS = re.compile(r"anthropic|claude|bedrock|sagemaker|s3://|\baws\b|\bec2\b", re.IGNORECASE)


def run_to_end(
    client: Any, body: dict[str, Any] | None = None, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    spec_id = create_spec(client, spec)
    started = client.post(f"/behavior-specs/{spec_id}/runs", {**FAST, **(body or {})})
    assert started.status == 201, started.json()
    run = wait_for(client, started.json()["data"]["id"], TERMINAL, timeout=120)
    assert run["status"] == "completed", run["error"]
    return run


def scored_by(client: Any, run: dict[str, Any]) -> set[str]:
    report = client.get(f"/runs/{run['id']}/report").json()["data"]
    rows = report["baseline"]["results"] + report["candidate"]["results"]
    assert rows and len(rows) == 2 * run["eval_summary"]["total"]
    return {row["scored_by"] for row in rows}


def infos(run: dict[str, Any]) -> list[str]:
    return [event["message"] for event in run["_events"] if event["status"] == "info"]


def assert_no_provider_names(run: dict[str, Any]) -> None:
    text = json.dumps([run["_events"], run["error"], run["status_message"]])
    assert not PROVIDER_WORDS.search(text), PROVIDER_WORDS.search(text)


@pytest.fixture
def claude(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> FakeClaude:
    fake: FakeClaude = install_fake_claude(monkeypatch)
    return fake


@pytest.fixture
def instant(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    return install_instant_training(monkeypatch)


def test_a_run_on_the_real_trainer_augments_and_judges_with_claude(client: Any, claude: FakeClaude) -> None:
    assert set(client.get("/version").json()["data"]["capabilities"]) >= {"llm_augmentation", "llm_judge"}
    run = run_to_end(client)
    assert run["augmentation_method"] == "claude"
    # 12 examples: 10 training rows (2 held out); T = min(500, max(30, 60)) = 60.
    assert run["row_counts"] == {"training": 60, "augmented": 50, "evaluation": 2, "test": 0}
    summary = run["eval_summary"]
    assert summary["scoring_method"] == "llm_judge" and summary["judge_model"] == DEFAULT_MODELS["claude"]
    assert scored_by(client, run) == {"llm_judge"}
    assert all(row["reasoning"] == "Follows the spec." for row in run["_evals"])
    dataset = client.get(f"/datasets/{run['dataset_id']}").json()["data"]
    assert dataset["description"] == "Auto-compiled from behaviour spec. 60 examples (augmented)."
    # Generated rows never reach evaluation: the judge saw only the spec's held-out inputs.
    judged = {seen.prompt.split("<input>\n", 1)[1].split("\n</input>", 1)[0] for seen in claude.requests
              if seen.tool == "verdict"}  # fmt: skip
    assert judged == {row["prompt"] for row in run["_evals"]}
    assert judged <= {example["input"] for example in EXAMPLES}
    assert infos(run) == []
    assert_no_provider_names(run)


def test_no_provider_means_no_generated_rows_and_similarity_and_the_run_says_so(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_language_model(monkeypatch)
    install_instant_training(monkeypatch)
    assert "llm_judge" not in client.get("/version").json()["data"]["capabilities"]
    run = run_to_end(client)
    # No offline augmenter (§9.4): perturbed inputs with copied outputs would teach wrong labels.
    assert run["augmentation_method"] == "none"
    assert run["row_counts"] == {"training": 10, "augmented": 0, "evaluation": 2, "test": 0}
    assert (
        run["eval_summary"]["scoring_method"] == "similarity" and run["eval_summary"]["judge_model"] is None
    )
    assert scored_by(client, run) == {"similarity"}
    messages = infos(run)
    assert any(m.startswith("No Claude provider is configured") and "up to 50 rows" in m for m in messages)
    assert any("No LLM judge is configured" in m for m in messages)
    dataset = client.get(f"/datasets/{run['dataset_id']}").json()["data"]
    assert dataset["description"] == "Auto-compiled from behaviour spec. 10 examples (not augmented)."


@pytest.mark.parametrize(
    "bad",
    [text_answer("Score: 0.9 {not json"), tool_answer("verdict", {"grade": "A"}), refusal()],
    ids=["malformed_json", "wrong_schema", "refusal"],
)
def test_an_unusable_verdict_falls_back_to_similarity_for_that_row(
    client: Any, claude: FakeClaude, instant: Any, bad: Any
) -> None:
    first = EXAMPLES[0]["input"]
    original = claude.answer

    def answer(seen: Any) -> Any:
        if seen.tool == "verdict" and f"<input>\n{first}\n</input>" in seen.prompt:
            return bad
        return original(seen)

    claude.answer = answer  # type: ignore[method-assign]
    spec = {**TINY_SPEC, "examples": EXAMPLES[:3]}  # < 5 examples: every one is evaluated
    run = run_to_end(client, spec=spec)
    summary = run["eval_summary"]
    assert (
        run["augmentation_method"] == "claude" and summary["scoring_method"] == "mixed"
    )  # some rows fell back
    assert summary["judge_model"] == DEFAULT_MODELS["claude"] and summary["judge_fallback_rows"] == 1
    report = client.get(f"/runs/{run['id']}/report").json()["data"]
    for side in ("baseline", "candidate"):
        by_prompt = {row["prompt"]: row["scored_by"] for row in report[side]["results"]}
        assert by_prompt.pop(first) == "similarity_fallback"
        assert set(by_prompt.values()) == {"llm_judge"}
    assert "2 output(s) could not be judged and were scored by similarity." in infos(run)
    assert_no_provider_names(run)


def test_rate_limits_and_overload_are_retried(client: Any, claude: FakeClaude, instant: Any) -> None:
    claude.script = [status(429), status(529)]
    run = run_to_end(client)
    assert claude.requests[0].body["tool_choice"]["name"] == "training_rows"
    assert run["augmentation_method"] == "claude" and run["row_counts"]["augmented"] == 50
    assert scored_by(client, run) == {"llm_judge"} and infos(run) == []


def test_a_provider_that_is_down_falls_back_everywhere(client: Any, claude: FakeClaude, instant: Any) -> None:
    claude.fail_with = 529
    run = run_to_end(client)
    assert run["augmentation_method"] == "none" and run["row_counts"]["augmented"] == 0
    summary = run["eval_summary"]
    # Every row fell back: no judge scored any, so the method is similarity (§10.3)
    assert (summary["scoring_method"], summary["judge_model"]) == ("similarity", None)
    assert summary["judge_fallback_rows"] == summary["total"] > 0
    assert scored_by(client, run) == {"similarity_fallback"}
    messages = infos(run)
    assert any(
        "could not generate training rows (the language model answered HTTP 529); the run goes on without "
        "generated rows" in m
        for m in messages
    )
    assert "4 output(s) could not be judged and were scored by similarity." in messages
    assert_no_provider_names(run)
    # Bounded: each augmentation request gave up after 3 × 3 attempts; the judge stopped after 5 rows.
    tools = claude.tools()
    assert tools.count("training_rows") <= 9 * 3 and tools.count("verdict") <= 9 * 5


def test_without_the_judge_flag_outputs_are_scored_by_similarity(
    client: Any, claude: FakeClaude, instant: Any
) -> None:
    run = run_to_end(client, {"use_llm_judge": False, "augment": False})
    assert run["augmentation_method"] == "none" and run["row_counts"]["augmented"] == 0
    assert run["eval_summary"]["scoring_method"] == "similarity" and scored_by(client, run) == {"similarity"}
    assert claude.requests == [] and infos(run) == []
    assert run["hyperparameters"]["use_llm_judge"] is False


def test_bedrock_when_enabled_and_no_key(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_core import wiring

    no_language_model(monkeypatch)
    monkeypatch.setenv("TT_BEDROCK_ENABLED", "true")
    wiring.reset()
    fake = FakeClaude()
    wiring.use_llm_transport(fake.transport)
    install_instant_training(monkeypatch)
    assert set(client.get("/version").json()["data"]["capabilities"]) >= {"llm_augmentation", "llm_judge"}
    run = run_to_end(client)
    assert run["augmentation_method"] == "bedrock" and run["row_counts"]["augmented"] == 50
    assert run["eval_summary"]["judge_model"] == DEFAULT_MODELS["bedrock"]
    assert scored_by(client, run) == {"llm_judge"}
    model = DEFAULT_MODELS["bedrock"]
    assert all(seen.url.endswith(f"/model/{model}/invoke") for seen in fake.requests)
    assert_no_provider_names(run)
