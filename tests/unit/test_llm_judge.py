"""The LLM judge over rows (PRODUCT.md §10.2): verdicts, per-row similarity fallback, a provider
that is down, the time budget and bounded parallelism."""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import SecretStr

from tests.llm_fakes import FakeClaude, text_answer, tool_answer
from tt_core.adapters.anthropic_llm import language_model_for
from tt_core.evaluation.judge import (
    MAX_JUDGE_WORKERS,
    LlmJudge,
    ScoreJob,
    judge_groups,
    judge_rows,
    judge_workers,
)
from tt_core.evaluation.scoring import similarity_score
from tt_core.language.llm_calls import TASK_ATTEMPTS
from tt_core.models.evaluation import JudgeVerdict
from tt_core.settings import Settings

CONTEXT = {"system_prompt": "Be a bot.", "guidelines": [], "constraints": []}
JOBS = [
    ScoreJob(f"eval-{i}", f"Question {i}?", f"Answer {i}.", f"Answer {i} maybe.", 10.0 + i) for i in range(6)
]


def judge(fake: FakeClaude) -> LlmJudge:
    llm = language_model_for(Settings(anthropic_api_key=SecretStr("sk-test")), transport=fake.transport)
    assert llm is not None
    return LlmJudge(llm, model="judge-model")


def test_every_row_gets_the_judges_verdict_and_the_threshold_decides_passed() -> None:
    fake = FakeClaude()
    fake.score = lambda prompt, output: 0.65 if prompt == "Question 1?" else 0.91237
    results = judge_rows(judge(fake), JOBS, context=CONTEXT, timeout_seconds=900)
    assert [r.id for r in results] == [job.id for job in JOBS]  # the jobs' order, whatever the pool did
    assert all(r.scored_by == "llm_judge" and r.reasoning == "Follows the spec." for r in results)
    assert results[0].score == 0.9124 and results[0].passed and results[0].latency_ms == 10.0
    assert results[1].score == 0.65 and not results[1].passed
    assert len(fake.requests) == len(JOBS)


def test_a_row_the_judge_cannot_score_falls_back_to_similarity() -> None:
    fake = FakeClaude()
    original = fake.answer

    def answer(seen: Any) -> Any:
        if "<input>\nQuestion 2?\n</input>" in seen.prompt:
            return text_answer("not json at all")
        return original(seen)

    fake.answer = answer  # type: ignore[method-assign]
    results = judge_rows(judge(fake), JOBS, context=CONTEXT, timeout_seconds=900)
    fallback = results[2]
    assert fallback.scored_by == "similarity_fallback" and fallback.reasoning is None
    assert fallback.score == similarity_score("Answer 2.", "Answer 2 maybe.")
    assert [r.scored_by for r in results].count("llm_judge") == len(JOBS) - 1
    assert len(fake.requests) == len(JOBS) - 1 + TASK_ATTEMPTS


def test_a_provider_that_refuses_the_key_is_not_called_again() -> None:
    fake = FakeClaude()
    fake.fail_with = 401
    results = judge_rows(judge(fake), JOBS, context=CONTEXT, timeout_seconds=900)
    assert all(r.scored_by == "similarity_fallback" for r in results)
    # Calls already in flight when the first one failed may finish; no new ones start after.
    assert len(fake.requests) <= judge_workers(len(JOBS), 900)


def test_no_call_starts_after_the_time_budget() -> None:
    fake = FakeClaude()
    results = judge_rows(judge(fake), JOBS, context=CONTEXT, timeout_seconds=0)
    assert fake.requests == [] and {r.scored_by for r in results} == {"similarity_fallback"}


def test_the_pool_is_sized_to_the_task_timeout_and_bounded() -> None:
    assert judge_workers(0, 900) == 1
    assert judge_workers(10, 900) == 1  # 50 s of calls fit 630 s alone
    assert judge_workers(200, 900) == 2
    assert judge_workers(2000, 900) == MAX_JUDGE_WORKERS
    assert judge_workers(200, 60) == MAX_JUDGE_WORKERS

    class SlowJudge:
        model = "slow"

        def __init__(self) -> None:
            self.active = self.most = 0
            self.lock = threading.Lock()

        def judge(self, **_: Any) -> JudgeVerdict:
            with self.lock:
                self.active += 1
                self.most = max(self.most, self.active)
            time.sleep(0.01)
            with self.lock:
                self.active -= 1
            return JudgeVerdict(score=1, passed=True, reasoning="ok")

    slow = SlowJudge()
    jobs = JOBS * 10
    judge_rows(slow, jobs, context=CONTEXT, timeout_seconds=30)
    assert 1 < slow.most <= judge_workers(len(jobs), 30)


def test_a_wrong_schema_verdict_is_not_trusted() -> None:
    fake = FakeClaude()
    fake.script = [
        tool_answer("verdict", {"score": 1.5, "passed": True, "reasoning": "too high"})
    ] * TASK_ATTEMPTS
    [result] = judge_rows(judge(fake), JOBS[:1], context=CONTEXT, timeout_seconds=900)
    assert result.scored_by == "similarity_fallback"


def test_the_judge_reads_the_answer_without_its_leading_think_block() -> None:
    fake = FakeClaude()
    seen: list[str] = []
    fake.score = lambda prompt, output: seen.append(output) or 0.9  # type: ignore[func-returns-value]
    job = ScoreJob("eval-0", "Capital of France?", "Paris", "\n</think>\n\nParis", 10.0)
    [result] = judge_rows(judge(fake), [job], context=CONTEXT, timeout_seconds=900)
    assert seen == ["Paris"] and result.actual == job.actual  # the row keeps what the model wrote


class Clock:
    """time.monotonic for the judge: moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_pair_is_judged_whole_or_falls_back_whole(monkeypatch: Any) -> None:
    import tt_core.evaluation.judge as judge_module

    clock = Clock()
    monkeypatch.setattr(judge_module, "time", clock)
    calls: list[str] = []

    class TimeEatingJudge:
        """The first call takes the whole time budget: the tuned output of that row is never asked."""

        model = "judge"

        def judge(self, *, actual: str, **_: Any) -> JudgeVerdict:
            calls.append(actual)
            clock.now += 10_000
            return JudgeVerdict(score=1, passed=True, reasoning="ok")

    base, tuned = JOBS[0], JOBS[1]
    [pair] = judge_groups(TimeEatingJudge(), [[base, tuned]], context=CONTEXT, timeout_seconds=900)
    assert calls == [base.actual]  # the base output was judged, then time ran out
    assert [r.scored_by for r in pair] == ["similarity_fallback"] * 2  # so neither side keeps a verdict
    assert [r.score for r in pair] == [similarity_score(j.expected, j.actual) for j in (base, tuned)]


def test_a_failed_tuned_call_sends_its_row_to_similarity() -> None:
    fake = FakeClaude()
    original = fake.answer

    def answer(seen: Any) -> Any:  # only the tuned output of row 1 gets an unusable verdict
        if "<model_output>\ntuned 1\n</model_output>" in seen.prompt:
            return text_answer("not json at all")
        return original(seen)

    fake.answer = answer  # type: ignore[method-assign]
    pairs = [[ScoreJob(f"r{i}", f"Q{i}?", f"A{i}.", f"{side} {i}", None) for side in ("base", "tuned")]
             for i in range(3)]  # fmt: skip
    scored = judge_groups(judge(fake), pairs, context=CONTEXT, timeout_seconds=900)
    assert [[r.scored_by for r in pair] for pair in scored] == [
        ["llm_judge", "llm_judge"],
        ["similarity_fallback", "similarity_fallback"],
        ["llm_judge", "llm_judge"],
    ]
    assert [r.actual for pair in scored for r in pair] == [
        "base 0",
        "tuned 0",
        "base 1",
        "tuned 1",
        "base 2",
        "tuned 2",
    ]
