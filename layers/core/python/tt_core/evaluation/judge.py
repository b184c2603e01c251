"""The LLM judge (PRODUCT.md §10.2): temperature-0 calls row by row in a small thread pool; a row whose
calls cannot all be made and answered (a failure, a provider down, time up) falls back to similarity."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tt_core.evaluation.scoring import PASS_THRESHOLD, score_by_similarity
from tt_core.language.llm_calls import ask
from tt_core.language.text import without_leading_think
from tt_core.models.evaluation import EvalResult, JudgeVerdict
from tt_core.ports import Judge, LanguageModel, LanguageModelError

JUDGE_MAX_TOKENS = 1024
MAX_JUDGE_WORKERS = 8
# A judge call takes a few seconds; the pool grows until the rows fit this share of the Evaluate
# task's timeout (reading predictions, diagnostics and saving the results need the rest).
SECONDS_PER_CALL = 5.0
TIME_BUDGET_SHARE = 0.7
# After this many rows in a row whose calls failed, the provider is taken to be down for this run.
MAX_CONSECUTIVE_FAILURES = 5

JUDGE_SYSTEM = (
    "You are a strict, impartial evaluator of an AI assistant's answers. The assistant must follow "
    "its system prompt, guidelines and constraints. You get the user's input, a reference output (one "
    "valid answer among possibly others, not the only correct one) and the assistant's output. Score "
    "the output from 0 to 1: 1 when it is as good as the reference and follows every guideline and "
    "constraint, 0 when it is wrong, unhelpful or breaks a constraint; a broken constraint caps the "
    "score at 0.3. passed: whether the output is acceptable. reasoning: one or two sentences."
)


def judge_prompt(context: dict[str, Any], prompt: str, expected: str, actual: str) -> str:
    """The user turn of one judge call: the spec's prompt fields, the row and the model's output."""
    guidelines = context.get("guidelines") or []
    constraints = context.get("constraints") or []
    sections = [
        ("System prompt", context.get("system_prompt") or "(none)"),
        ("Guidelines", "\n".join(f"- {text}" for text in guidelines) or "(none)"),
        ("Constraints", "\n".join(f"- {text}" for text in constraints) or "(none)"),
        ("Input", prompt),
        ("Reference output", expected),
        ("Model output", actual),
    ]
    return "\n\n".join(f"<{title.lower().replace(' ', '_')}>\n{body}\n</{title.lower().replace(' ', '_')}>"
                       for title, body in sections)  # fmt: skip


class LlmJudge:
    """The Judge port on a language model: temperature 0, a validated {score, passed, reasoning}."""

    def __init__(self, llm: LanguageModel, *, model: str) -> None:
        self.model = model
        self._llm = llm

    def judge(self, *, context: dict[str, Any], prompt: str, expected: str, actual: str) -> JudgeVerdict:
        return ask(
            self._llm,
            JudgeVerdict,
            model=self.model,
            system=JUDGE_SYSTEM,
            prompt=judge_prompt(context, prompt, expected, actual),
            tool_name="verdict",
            max_tokens=JUDGE_MAX_TOKENS,
            deterministic=True,
        )


@dataclass(frozen=True)
class ScoreJob:
    """One output to score: a row of a split, for one of the two models."""

    id: str
    prompt: str
    expected: str
    actual: str
    latency_ms: float | None


def judge_workers(calls: int, timeout_seconds: float) -> int:
    """Threads enough for `calls` judge calls to fit the task's time budget, 1 to MAX_JUDGE_WORKERS."""
    if calls <= 0:
        return 1
    budget = max(timeout_seconds * TIME_BUDGET_SHARE, 1.0)
    return max(1, min(MAX_JUDGE_WORKERS, math.ceil(calls * SECONDS_PER_CALL / budget)))


class _Breaker:
    """Stops calling a provider that is down: a non-retryable error, or too many failures in a row."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._consecutive = 0
        self.open = False

    def record(self, error: LanguageModelError | None) -> None:
        with self._lock:
            if error is None:
                self._consecutive = 0
                return
            self._consecutive += 1
            if not error.retryable or self._consecutive >= MAX_CONSECUTIVE_FAILURES:
                self.open = True


def _fallback(job: ScoreJob) -> EvalResult:
    return score_by_similarity(
        id=job.id,
        prompt=job.prompt,
        expected=job.expected,
        actual=job.actual,
        latency_ms=job.latency_ms,
        scored_by="similarity_fallback",
    )


def judge_groups(
    judge: Judge, groups: Sequence[Sequence[ScoreJob]], *, context: dict[str, Any], timeout_seconds: float
) -> list[list[EvalResult]]:
    """Each group's outputs judged one after the other by one worker, groups in order.

    A group is scored by one scorer: when any of its calls cannot be made (provider down, time up) or
    fails, every output of the group is scored by similarity. A row's base and tuned outputs form a
    group, so an outage mid-run cuts both models alike instead of the later-scored one.
    """
    deadline = time.monotonic() + timeout_seconds * TIME_BUDGET_SHARE
    breaker = _Breaker()

    def verdict(job: ScoreJob) -> JudgeVerdict | None:
        if breaker.open or time.monotonic() > deadline:
            return None
        try:
            # §9.4: the judge reads the answer, not the reasoning before it; the row keeps the whole output.
            actual = without_leading_think(job.actual)
            answer = judge.judge(context=context, prompt=job.prompt, expected=job.expected, actual=actual)
        except LanguageModelError as error:
            breaker.record(error)
            return None
        breaker.record(None)
        return answer

    def score(group: Sequence[ScoreJob]) -> list[EvalResult]:
        verdicts: list[JudgeVerdict] = []
        for job in group:
            answer = verdict(job)
            if answer is None:  # the rest of the group is not asked: it is scored by similarity anyway
                return [_fallback(each) for each in group]
            verdicts.append(answer)
        return [_judged(job, answer) for job, answer in zip(group, verdicts, strict=True)]

    calls = sum(len(group) for group in groups)
    with ThreadPoolExecutor(max_workers=judge_workers(calls, timeout_seconds)) as pool:
        return list(pool.map(score, groups))


def _judged(job: ScoreJob, verdict: JudgeVerdict) -> EvalResult:
    score = round(verdict.score, 4)
    return EvalResult(
        id=job.id,
        prompt=job.prompt,
        expected=job.expected,
        actual=job.actual,
        passed=score >= PASS_THRESHOLD,  # §10.1: the threshold decides, whatever the judge said
        score=score,
        reasoning=verdict.reasoning,
        latency_ms=job.latency_ms,
        scored_by="llm_judge",
    )


def judge_rows(
    judge: Judge, jobs: Sequence[ScoreJob], *, context: dict[str, Any], timeout_seconds: float
) -> list[EvalResult]:
    """Each output judged on its own, in order (no other output shares its scorer); see judge_groups."""
    groups = judge_groups(judge, [[job] for job in jobs], context=context, timeout_seconds=timeout_seconds)
    return [result for group in groups for result in group]
