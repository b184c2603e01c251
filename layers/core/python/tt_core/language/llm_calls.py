"""Structured calls to the LanguageModel port: pydantic-validated answers and bounded task retries."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tt_core.ports import LanguageModel, LanguageModelError

# Each call is tried this many times when the answer is unusable (malformed, wrong schema, refused)
# or the client gave up; the client itself makes up to 3 attempts per try (adapters' SDK_MAX_RETRIES
# = 2), so one logical call sends at most 3 × 3 = 9 requests (the product's bound is 10).
TASK_ATTEMPTS = 3

Answer = TypeVar("Answer", bound=BaseModel)
logger = logging.getLogger(__name__)


def tool_schema(answer_model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` inlined: one self-contained object schema per tool."""
    schema = answer_model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return inline(definitions[reference.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def ask(
    llm: LanguageModel,
    answer_model: type[Answer],
    *,
    model: str,
    system: str,
    prompt: str,
    tool_name: str,
    max_tokens: int,
    deterministic: bool = False,
) -> Answer:
    """The model's answer as `answer_model`; LanguageModelError once every attempt failed."""
    schema = tool_schema(answer_model)
    last: LanguageModelError | None = None
    for attempt in range(1, TASK_ATTEMPTS + 1):
        try:
            raw = llm.answer(
                model=model,
                system=system,
                prompt=prompt,
                tool_name=tool_name,
                schema=schema,
                max_tokens=max_tokens,
                deterministic=deterministic,
            )
            return answer_model.model_validate(raw)
        except ValidationError as error:
            last = LanguageModelError(f"the answer did not match the {tool_name} schema")
            logger.warning("attempt %d: %s: %s", attempt, last, error.errors(include_url=False)[:3])
        except LanguageModelError as error:
            last = error
            logger.warning("attempt %d: %s", attempt, error)
            if not error.retryable:
                break
    assert last is not None
    raise last
