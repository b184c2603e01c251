"""LLM augmentation (PRODUCT.md §9.4): prompt from the spec and training rows only, the target count,
dedup, constraint checks; without a provider, or when it fails, nothing is generated and a note says so."""

from __future__ import annotations

import json

from pydantic import SecretStr

from tests.llm_fakes import FakeClaude, tool_answer
from tt_core.adapters.anthropic_llm import language_model_for
from tt_core.augmentation.llm import (
    GENERATOR_SYSTEM,
    ROWS_PER_REQUEST,
    GeneratedRows,
    LlmAugmenter,
    augment_training_rows,
)
from tt_core.language.llm_calls import tool_schema
from tt_core.runs.compiler import Example
from tt_core.settings import Settings

CONTEXT = {
    "system_prompt": "You are the support agent of Acme.",
    "guidelines": ["Point to the exact settings page"],
    "constraints": ["Never mention refunds", "Stay polite"],
}
TRAIN = [Example(f"How do I change setting {i}?", f"Go to Settings > Panel {i}.") for i in range(8)]
EVAL = [Example("Secret eval question?", "Secret eval answer.")]


def augmenter(fake: FakeClaude, budget: float = 600) -> LlmAugmenter:
    llm = language_model_for(Settings(anthropic_api_key=SecretStr("sk-test")), transport=fake.transport)
    assert llm is not None
    return LlmAugmenter(llm, model="gen-model", time_budget_seconds=budget)


def run(fake: FakeClaude, budget: float = 600) -> tuple[list[Example], str, str | None]:
    return augment_training_rows(
        TRAIN, exclude_inputs=[e.input for e in EVAL], augmenter=augmenter(fake, budget), seed="run-1",
        context=CONTEXT,
    )  # fmt: skip


def test_generates_the_target_from_the_spec_and_training_rows_only() -> None:
    fake = FakeClaude()
    generated, method, note = run(fake)
    assert method == "claude" and note is None
    assert len(generated) == 40  # T = max(30, 6 × 8) = 48, minus the 8 rows there are
    generations = [seen for seen in fake.requests if seen.tool == "training_rows"]
    assert len(generations) == 40 // ROWS_PER_REQUEST
    for seen in generations:
        body = seen.body
        assert body["model"] == "gen-model" and body["system"] == GENERATOR_SYSTEM
        assert body["tools"][0]["input_schema"] == tool_schema(GeneratedRows)
        assert "temperature" not in body  # varied rows: the provider's default sampling
        assert "You are the support agent of Acme." in seen.prompt
        assert (
            "- Point to the exact settings page" in seen.prompt and "- Never mention refunds" in seen.prompt
        )
        shown = json.loads(seen.prompt.split("Training examples (JSON):\n", 1)[1].rsplit("\n\nWrite", 1)[0])
        assert shown and all(Example(**row) in TRAIN for row in shown)
        assert "Secret eval" not in json.dumps(body)  # eval rows never reach the model
        assert "Write 20 new training rows." in seen.prompt
    # "Stay polite" has no heuristic: each batch goes to the judge check (temperature 0).
    checks = [seen for seen in fake.requests if seen.tool == "constraint_check"]
    assert len(checks) == len(generations) and all(seen.body["temperature"] == 0 for seen in checks)
    assert "- Stay polite" in checks[0].prompt and "Never mention refunds" not in checks[0].prompt


def test_duplicates_and_constraint_breakers_are_dropped() -> None:
    fake = FakeClaude()
    rows = [
        {"input": "how do I change   SETTING 3?", "output": "dup of a training input"},
        {"input": "Secret eval question?", "output": "dup of an eval input"},
        {"input": "Fresh question A?", "output": "Answer A."},
        {"input": "fresh question a?", "output": "dup of an earlier generated row"},
        {"input": "Fresh question B?", "output": "No REFUNDS, sorry."},  # breaks a Never rule
        {"input": "Fresh question C?", "output": "Rude answer."},  # the judge check flags it
        {"input": "Fresh question D?", "output": "Answer D."},
    ]
    fake.script = [tool_answer("training_rows", {"examples": rows})]
    fake.violating_rows = [4]  # index among the rows the check sees (after the heuristics)
    small = augmenter(fake)
    pairs = small.augment([(e.input, e.output) for e in TRAIN], 7, seed="s", context=CONTEXT)
    assert ("Fresh question B?", "No REFUNDS, sorry.") not in pairs
    assert ("Fresh question C?", "Rude answer.") not in pairs
    generated, method, _ = augment_training_rows(
        TRAIN[:1], exclude_inputs=[e.input for e in EVAL],
        augmenter=augmenter(_scripted(rows)), seed="x", context={**CONTEXT, "constraints": []},
    )  # fmt: skip
    inputs = [row.input for row in generated]
    assert method == "claude"
    assert "Fresh question A?" in inputs and "fresh question a?" not in inputs
    assert "how do I change   SETTING 3?" in inputs  # TRAIN[:1] holds setting 0 only
    assert "Secret eval question?" not in inputs


def _scripted(rows: list[dict[str, str]]) -> FakeClaude:
    fake = FakeClaude()
    fake.script = [tool_answer("training_rows", {"examples": rows})]
    return fake


def test_a_failing_provider_generates_nothing_and_says_so() -> None:
    fake = FakeClaude()
    fake.fail_with = 529
    generated, method, note = run(fake)
    assert (generated, method) == ([], "none")
    assert note is not None and "HTTP 529" in note and "goes on without generated rows" in note
    for word in ("anthropic", "claude", "bedrock", "aws"):
        assert word not in note.lower()


def test_no_usable_rows_or_no_provider_generate_nothing_and_say_so() -> None:
    fake = FakeClaude()
    fake.script = [tool_answer("training_rows", {"examples": []})] * 6
    generated, method, note = augment_training_rows(
        TRAIN[:2], exclude_inputs=[], augmenter=augmenter(fake), seed="r", context={}
    )
    assert (generated, method) == ([], "none") and note is not None and "no usable rows" in note

    # No offline augmenter: perturbing inputs while copying outputs would teach wrong labels (§9.4).
    generated, method, note = augment_training_rows(
        TRAIN, exclude_inputs=[], augmenter=None, seed="r", context={}
    )
    assert (generated, method) == ([], "none")
    assert note == (
        "No Claude provider is configured, so no training rows were generated: one would add up to 40 rows "
        "written from the training rows (perturbing inputs while copying outputs would teach wrong labels)."
    )
    # Nothing to add: no note, whatever the provider.
    assert augment_training_rows([], exclude_inputs=[], augmenter=None, seed="r", context={}) == (
        [],
        "none",
        None,
    )


def test_requests_past_the_time_budget_are_skipped() -> None:
    fake = FakeClaude()
    _, method, note = run(fake, budget=0)
    assert fake.requests == [] and method == "none" and note is not None
