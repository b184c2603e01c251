"""The Claude adapter through the real anthropic SDK, faked at its HTTP transport: requests, answers,
retries (SDK × task ≤ 10), refusals, provider choice and the API key from Secrets Manager."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from tests.llm_fakes import FakeClaude, refusal, status, text_answer, tool_answer
from tt_core.adapters.anthropic_llm import (
    DEFAULT_MODELS,
    PINNED_API_VERSION,
    SDK_MAX_RETRIES,
    language_model_for,
    model_ids,
)
from tt_core.evaluation.judge import JUDGE_SYSTEM, LlmJudge
from tt_core.language.llm_calls import TASK_ATTEMPTS, ask, tool_schema
from tt_core.models.evaluation import JudgeVerdict
from tt_core.ports import LanguageModel, LanguageModelError
from tt_core.settings import Settings

CONTEXT = {"system_prompt": "You are a support agent.", "guidelines": ["Be concise"],
           "constraints": ["Never promise refunds"]}  # fmt: skip


def claude(fake: FakeClaude, **settings: Any) -> LanguageModel:
    llm = language_model_for(
        Settings(anthropic_api_key=SecretStr("sk-test"), **settings), transport=fake.transport
    )
    assert llm is not None and llm.provider == "claude"
    return llm


def verdict(llm: LanguageModel) -> JudgeVerdict:
    return LlmJudge(llm, model="judge-model").judge(
        context=CONTEXT, prompt="How do I cancel?", expected="Go to Billing.", actual="Open Billing."
    )


def test_the_judge_request_is_exact_and_a_good_answer_is_parsed() -> None:
    fake = FakeClaude()
    fake.script = [tool_answer("verdict", {"score": 0.8125, "passed": True, "reasoning": "Close enough."})]
    result = verdict(claude(fake))
    assert result == JudgeVerdict(score=0.8125, passed=True, reasoning="Close enough.")
    [seen] = fake.requests
    assert seen.url == "https://api.anthropic.com/v1/messages"
    assert seen.headers["authorization"] == "Bearer sk-test"
    # Temperature 0 needs the API version that still takes it.
    assert seen.headers["anthropic-version"] == PINNED_API_VERSION
    body = seen.body
    assert body["model"] == "judge-model" and body["temperature"] == 0
    assert body["system"] == JUDGE_SYSTEM
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}
    [tool] = body["tools"]
    assert tool["name"] == "verdict" and tool["input_schema"] == tool_schema(JudgeVerdict)
    assert set(tool["input_schema"]["required"]) == {"score", "passed", "reasoning"}
    # The rubric gets the spec's prompt fields, the input, the reference and the model output.
    prompt = seen.prompt
    for part in ("You are a support agent.", "- Be concise", "- Never promise refunds", "How do I cancel?",
                 "<reference_output>\nGo to Billing.\n</reference_output>",
                 "<model_output>\nOpen Billing.\n</model_output>"):  # fmt: skip
        assert part in prompt


def test_a_request_that_is_not_deterministic_keeps_the_sdk_defaults() -> None:
    fake = FakeClaude()
    fake.script = [tool_answer("verdict", {"score": 1, "passed": True, "reasoning": "x"})]
    ask(claude(fake), JudgeVerdict, model="m", system="s", prompt="p", tool_name="verdict", max_tokens=10)
    [seen] = fake.requests
    assert "temperature" not in seen.body and seen.headers["anthropic-version"] != PINNED_API_VERSION


@pytest.mark.parametrize(
    "bad",
    [
        text_answer("Score: high {oops, not json"),  # malformed JSON
        tool_answer("verdict", {"score": 7, "passed": "maybe"}),  # wrong schema
        refusal(),
        text_answer('{"score": 0.5, "passed": false, "reasoning": "cut"', stop_reason="max_tokens"),
    ],
    ids=["malformed_json", "wrong_schema", "refusal", "cut_at_max_tokens"],
)
def test_an_unusable_answer_is_asked_again_then_given_up(bad: Any) -> None:
    fake = FakeClaude()
    fake.script = [bad, tool_answer("verdict", {"score": 0.25, "passed": False, "reasoning": "Wrong menu."})]
    assert verdict(claude(fake)).score == 0.25
    assert len(fake.requests) == 2

    always_bad = FakeClaude()
    always_bad.script = [bad] * 10
    with pytest.raises(LanguageModelError) as raised:
        verdict(claude(always_bad))
    assert len(always_bad.requests) == TASK_ATTEMPTS
    assert "anthropic" not in str(raised.value).lower() and "claude" not in str(raised.value).lower()


def test_a_text_answer_holding_the_json_object_is_accepted() -> None:
    fake = FakeClaude()
    fake.script = [text_answer('Here you go: {"score": 0.9, "passed": true, "reasoning": "Good."} Done.')]
    assert verdict(claude(fake)).reasoning == "Good."


def test_429_and_529_are_retried_by_the_client() -> None:
    fake = FakeClaude()
    fake.script = [
        status(429),
        status(529),
        tool_answer("verdict", {"score": 1, "passed": True, "reasoning": "ok"}),
    ]
    assert verdict(claude(fake)).score == 1
    assert len(fake.requests) == 3  # two retries inside the SDK, one logical call


@pytest.mark.parametrize("code", [429, 529])
def test_a_provider_that_stays_busy_costs_at_most_ten_requests_per_call(code: int) -> None:
    assert (SDK_MAX_RETRIES + 1) * TASK_ATTEMPTS <= 10
    fake = FakeClaude()
    fake.fail_with = code
    with pytest.raises(LanguageModelError) as raised:
        verdict(claude(fake))
    assert len(fake.requests) == (SDK_MAX_RETRIES + 1) * TASK_ATTEMPTS
    assert raised.value.retryable and f"HTTP {code}" in str(raised.value)


def test_a_refused_key_is_not_retried() -> None:
    fake = FakeClaude()
    fake.fail_with = 401
    with pytest.raises(LanguageModelError) as raised:
        verdict(claude(fake))
    assert len(fake.requests) == 1 and not raised.value.retryable


def test_a_model_that_refuses_temperature_is_asked_without_it_from_then_on() -> None:
    fake = FakeClaude()
    ok = {"score": 0.5, "passed": False, "reasoning": "ok"}
    fake.script = [status(400), tool_answer("verdict", ok), tool_answer("verdict", ok)]
    llm = claude(fake)
    verdict(llm)
    verdict(llm)
    pinned, unpinned, later = fake.requests
    assert pinned.body["temperature"] == 0
    assert "temperature" not in unpinned.body and "temperature" not in later.body


def test_bedrock_uses_the_bedrock_client_and_model_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    fake = FakeClaude()
    fake.script = [tool_answer("verdict", {"score": 0.75, "passed": True, "reasoning": "ok"})]
    settings = Settings(bedrock_enabled=True)
    llm = language_model_for(settings, transport=fake.transport)
    assert llm is not None and llm.provider == "bedrock"
    augmentation, judge = model_ids(settings)
    assert judge == augmentation == DEFAULT_MODELS["bedrock"]
    assert (
        LlmJudge(llm, model=judge).judge(context=CONTEXT, prompt="p", expected="e", actual="a").score == 0.75
    )
    [seen] = fake.requests
    assert seen.url == f"https://bedrock-runtime.eu-west-1.amazonaws.com/model/{judge}/invoke"
    assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256")  # IAM-signed, no API key
    assert seen.body["temperature"] == 0 and seen.body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in seen.body  # Bedrock takes the model from the path


def test_provider_choice_and_model_settings() -> None:
    assert Settings().llm_provider is None and language_model_for(Settings()) is None
    assert Settings(bedrock_enabled=True).llm_provider == "bedrock"
    assert Settings(bedrock_enabled=True, anthropic_api_key=SecretStr("k")).llm_provider == "claude"
    assert Settings(anthropic_api_key_secret="tt/anthropic").llm_provider == "claude"
    env = {"ANTHROPIC_API_KEY": "sk-env", "TT_JUDGE_MODEL": "claude-haiku-4-5", "TT_BEDROCK_ENABLED": "true"}
    settings = Settings.from_env(env)
    assert settings.llm_provider == "claude"
    assert model_ids(settings) == (DEFAULT_MODELS["claude"], "claude-haiku-4-5")
    assert "sk-env" not in repr(settings)  # the key never shows in logs of the settings
    assert Settings.from_env({"ANTHROPIC_API_KEY": "  "}).llm_provider is None


def test_the_api_key_comes_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="tt/anthropic-key", SecretString='{"ANTHROPIC_API_KEY": "sk-from-secret"}')
        secrets.create_secret(Name="tt/plain-key", SecretString="sk-plain\n")
        for name, key in (("tt/anthropic-key", "sk-from-secret"), ("tt/plain-key", "sk-plain")):
            fake = FakeClaude()
            fake.script = [tool_answer("verdict", {"score": 1, "passed": True, "reasoning": "ok"})]
            llm = language_model_for(Settings(anthropic_api_key_secret=name), transport=fake.transport)
            assert llm is not None
            verdict(llm)
            assert fake.requests[0].headers["authorization"] == f"Bearer {key}"
        missing = language_model_for(
            Settings(anthropic_api_key_secret="tt/none"), transport=FakeClaude().transport
        )
        assert missing is not None
        with pytest.raises(LanguageModelError) as raised:
            verdict(missing)
        assert not raised.value.retryable
