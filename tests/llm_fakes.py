"""A fake Claude at the anthropic SDK's HTTP transport (httpx2.MockTransport): no network in tests.

It records every request and answers from a script first (errors, malformed or refused answers),
then like a well-behaved model: training rows, constraint checks and verdicts.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

ROWS_ASKED = re.compile(r"Write (\d+) new training rows\.")


@dataclass
class Seen:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def tool(self) -> str:
        return str(self.body["tool_choice"]["name"])

    @property
    def prompt(self) -> str:
        return str(self.body["messages"][0]["content"])


def message(content: list[dict[str, Any]], stop_reason: str = "tool_use") -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "fake",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    )


def tool_answer(name: str, value: Any) -> httpx2.Response:
    return message([{"type": "tool_use", "id": "toolu_1", "name": name, "input": value}])


def text_answer(text: str, stop_reason: str = "end_turn") -> httpx2.Response:
    return message([{"type": "text", "text": text}], stop_reason)


def refusal() -> httpx2.Response:
    return message([{"type": "text", "text": "I can't help with that."}], "refusal")


def status(code: int) -> httpx2.Response:
    kinds = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
    # retry-after-ms keeps the SDK's backoff to a millisecond in tests.
    return httpx2.Response(
        code,
        headers={"retry-after-ms": "1"},
        json={"type": "error", "error": {"type": kinds.get(code, "invalid_request_error"), "message": "x"}},
    )


class FakeClaude:
    """Answers each request from `script` (oldest first), else with `answer(request)`."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.script: list[httpx2.Response] = []
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        # The judge's score for (prompt, output); tests change it between runs.
        self.score: Callable[[str, str], float] = lambda prompt, output: 0.9
        self.violating_rows: list[int] = []
        self.fail_with: int | None = None  # every request answers this status (a provider that is down)

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self._handle)

    def tools(self) -> list[str]:
        return [seen.tool for seen in self.requests]

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        seen = Seen(str(request.url), dict(request.headers), json.loads(request.content))
        with self._lock:
            self.requests.append(seen)
            if self.fail_with is not None:
                return status(self.fail_with)
            if self.script:
                return self.script.pop(0)
        return self.answer(seen)

    def answer(self, seen: Seen) -> httpx2.Response:
        if seen.tool == "training_rows":
            asked = int(ROWS_ASKED.search(seen.prompt).group(1))  # type: ignore[union-attr]
            rows = []
            for _ in range(asked):
                n = next(self._counter)
                rows.append({"input": f"Generated question number {n}?", "output": f"Generated answer {n}."})
            return tool_answer("training_rows", {"examples": rows})
        if seen.tool == "constraint_check":
            return tool_answer("constraint_check", {"violating_rows": self.violating_rows})
        prompt = _section(seen.prompt, "input")
        output = _section(seen.prompt, "model_output")
        score = self.score(prompt, output)
        verdict = {"score": score, "passed": score >= 0.7, "reasoning": "Follows the spec."}
        return tool_answer("verdict", verdict)


def _section(text: str, name: str) -> str:
    match = re.search(rf"<{name}>\n(.*?)\n</{name}>", text, re.DOTALL)
    return match.group(1) if match else ""
