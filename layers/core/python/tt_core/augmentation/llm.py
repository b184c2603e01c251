"""Augmentation with a language model (PRODUCT.md §9.4); without one, nothing is generated.

The prompt holds the spec (system prompt, guidelines, constraints) and training rows only: eval rows
never reach the model, and dedup (augment_rows) keeps generated rows off every eval input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field

from tt_core.augmentation.rows import augment_rows, augmentation_target
from tt_core.language.llm_calls import ask
from tt_core.models.common import Model
from tt_core.ports import Augmenter, LanguageModel, LanguageModelError
from tt_core.runs.compiler import Example, seeded_random
from tt_core.specs.lint import broken_constraints, check_constraint

ROWS_PER_REQUEST = 20  # generated rows asked for per request
SOURCE_ROWS_PER_REQUEST = 20  # training rows shown per request (a seeded sample of them)
MAX_PARALLEL_REQUESTS = 4
GENERATION_MAX_TOKENS = 8192
CHECK_MAX_TOKENS = 1024
# Requests still to start after this share of the Prepare task's timeout are skipped: the run keeps
# the rows it has rather than time out (compiling and uploading need the rest).
TIME_BUDGET_SHARE = 0.6

# There is no offline augmenter: perturbing inputs while copying outputs teaches wrong labels ("The
# parcel did arrive on Monday." → {"delivered": false}), so without a provider nothing is generated.
NO_PROVIDER_NOTE = (
    "No Claude provider is configured, so no training rows were generated: one would add up to {count} "
    "rows written from the training rows (perturbing inputs while copying outputs would teach wrong labels)."
)
FAILED_NOTE = (
    "The language model could not generate training rows ({reason}); the run goes on without generated rows."
)

GENERATOR_SYSTEM = (
    "You write training data for fine-tuning a small language model to follow a behaviour spec. "
    "You are given the spec and some of its training examples. Write new, varied input/output pairs: "
    "inputs a real user of this assistant could send (vary topic, phrasing, length and difficulty), "
    "and outputs that follow the system prompt, every guideline and every constraint, in the same "
    "style and format as the example outputs. Never repeat or lightly reword an example input."
)
CHECKER_SYSTEM = (
    "You check generated training rows against a behaviour spec's constraints. List the index of "
    "every row whose output breaks at least one constraint; list none when all comply."
)


class GeneratedPair(Model):
    input: str = Field(min_length=1, description="What the user sends.")
    output: str = Field(min_length=1, description="The assistant's ideal answer.")


class GeneratedRows(Model):
    """New training rows for the spec."""

    examples: list[GeneratedPair]


class ConstraintViolations(Model):
    """The rows whose output breaks a constraint."""

    violating_rows: list[int] = Field(description="Indexes (from 0) of the rows that break a constraint.")


def _spec_text(context: dict[str, Any]) -> str:
    guidelines = context.get("guidelines") or []
    constraints = context.get("constraints") or []
    lines = [f"System prompt:\n{context.get('system_prompt') or '(none)'}", "", "Guidelines:"]
    lines += [f"- {text}" for text in guidelines] or ["(none)"]
    lines += ["", "Constraints:"]
    lines += [f"- {text}" for text in constraints] or ["(none)"]
    return "\n".join(lines)


def generation_prompt(context: dict[str, Any], sources: Sequence[tuple[str, str]], count: int) -> str:
    """The user turn of one generation request: the spec, example rows, how many rows to write."""
    examples = [{"input": text, "output": output} for text, output in sources]
    return (
        f"{_spec_text(context)}\n\nTraining examples (JSON):\n"
        f"{json.dumps(examples, ensure_ascii=False, indent=1)}\n\n"
        f"Write {count} new training rows."
    )


def check_prompt(constraints: Sequence[str], rows: Sequence[tuple[str, str]]) -> str:
    listed = [{"index": i, "input": text, "output": output} for i, (text, output) in enumerate(rows)]
    lines = ["Constraints:", *(f"- {text}" for text in constraints), "", "Rows (JSON):"]
    return "\n".join(lines) + "\n" + json.dumps(listed, ensure_ascii=False, indent=1)


class LlmAugmenter:
    """Generates rows with the language model; rows that break a constraint are dropped."""

    def __init__(
        self, llm: LanguageModel, *, model: str, time_budget_seconds: float, deadline: float | None = None
    ) -> None:
        self.method = llm.provider
        self._llm = llm
        self._model = model
        self._time_budget = time_budget_seconds
        self._deadline = deadline

    def started(self) -> LlmAugmenter:
        """This augmenter for one run: its time budget runs from now (the Prepare task's start)."""
        return LlmAugmenter(
            self._llm,
            model=self._model,
            time_budget_seconds=self._time_budget,
            deadline=time.monotonic() + self._time_budget,
        )

    def augment(
        self, rows: list[tuple[str, str]], count: int, *, seed: str, context: dict[str, Any]
    ) -> list[tuple[str, str]]:
        if not rows or count <= 0:
            return []
        if self._deadline is None:
            self._deadline = time.monotonic() + self._time_budget
        sizes = [min(ROWS_PER_REQUEST, count - start) for start in range(0, count, ROWS_PER_REQUEST)]
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_REQUESTS, len(sizes))) as pool:
            batches = list(
                pool.map(
                    lambda job: self._batch(rows, job[1], f"{seed}:{job[0]}", context),
                    enumerate(sizes),
                )
            )
        return [pair for batch in batches for pair in batch]

    def _batch(
        self, rows: list[tuple[str, str]], count: int, seed: str, context: dict[str, Any]
    ) -> list[tuple[str, str]]:
        assert self._deadline is not None
        if time.monotonic() > self._deadline:
            return []
        rng = seeded_random(seed)
        sources = rng.sample(rows, min(SOURCE_ROWS_PER_REQUEST, len(rows)))
        answer = ask(
            self._llm,
            GeneratedRows,
            model=self._model,
            system=GENERATOR_SYSTEM,
            prompt=generation_prompt(context, sources, count),
            tool_name="training_rows",
            max_tokens=GENERATION_MAX_TOKENS,
        )
        pairs = [(pair.input, pair.output) for pair in answer.examples if pair.input.strip()][:count]
        return self._complying(pairs, [c for c in context.get("constraints") or [] if c.strip()])

    def _complying(self, pairs: list[tuple[str, str]], constraints: list[str]) -> list[tuple[str, str]]:
        """Drops rows that break a constraint: the lint heuristics first, then a judge check."""
        pairs = [pair for pair in pairs if not broken_constraints(pair[1], constraints)]
        # Constraints no heuristic can check go to the judge, one request per batch.
        judged = [c for c in constraints if check_constraint(0, c, []).rule == "judge"]
        if not pairs or not judged:
            return pairs
        answer = ask(
            self._llm,
            ConstraintViolations,
            model=self._model,
            system=CHECKER_SYSTEM,
            prompt=check_prompt(judged, pairs),
            tool_name="constraint_check",
            max_tokens=CHECK_MAX_TOKENS,
            deterministic=True,
        )
        dropped = set(answer.violating_rows)
        return [pair for index, pair in enumerate(pairs) if index not in dropped]


def augment_training_rows(
    rows: Sequence[Example],
    *,
    exclude_inputs: Sequence[str],
    augmenter: Augmenter | None,
    seed: str,
    context: dict[str, Any],
) -> tuple[list[Example], str, str | None]:
    """(generated rows, augmentation_method, info event or None); `augmenter` None: no provider."""
    target = augmentation_target(len(rows))
    if target == 0:
        return [], "none", None
    if augmenter is None:
        return [], "none", NO_PROVIDER_NOTE.format(count=target)
    if isinstance(augmenter, LlmAugmenter):
        augmenter = augmenter.started()
    try:
        generated = augment_rows(
            rows, exclude_inputs=exclude_inputs, augmenter=augmenter, seed=seed, context=context
        )
    except LanguageModelError as error:
        return [], "none", FAILED_NOTE.format(reason=str(error))
    if not generated:
        return [], "none", FAILED_NOTE.format(reason="it returned no usable rows")
    return generated, augmenter.method, None
