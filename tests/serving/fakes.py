"""A scripted stand-in for ModelRuntime (no torch): what the server, the engine and managed mode need."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from tt_serve.runtime import Generation, PromptError

Reply = str | Callable[[Sequence[dict[str, str]]], str]


def _tokens(messages: Sequence[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in messages) + len(messages)


class FakeRuntime:
    """Answers with `replies` in turn (the last repeats); each word is one token, streamed with `delay`.

    A prompt containing `__slow_prompt__` is tokenised only once `release_prompts` is set."""

    def __init__(self, *replies: Reply, delay: float = 0.0, context_length: int | None = 2048) -> None:
        self.replies = list(replies) or ["Hello there."]
        self.delay = delay
        self.context_length = context_length
        self.calls: list[dict[str, Any]] = []
        self.tokenised: list[str] = []  # the last message of every prompt tokenised
        self.release_prompts = threading.Event()
        self.lock = threading.Lock()

    def prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        last = messages[-1]["content"]
        with self.lock:
            self.tokenised.append(last)
        if "__slow_prompt__" in last:
            self.release_prompts.wait(timeout=60)
        return list(range(_tokens(messages)))

    def generate(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        on_text: Callable[[str], None] | None = None,
        prompt_ids: Sequence[int] | None = None,
        seed: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Generation:
        with self.lock:
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
            self.calls.append(
                {"messages": [dict(m) for m in messages], "max_tokens": max_tokens,
                 "temperature": temperature, "top_p": top_p, "started": time.monotonic(),
                 "pretokenised": prompt_ids is not None, "seed": seed}
            )  # fmt: skip
        text = reply(messages) if callable(reply) else reply
        last = messages[-1]["content"]
        if "__too_long__" in last:
            raise PromptError("The prompt has 9999 tokens; the model's context is 2048 tokens.")
        if "__raise__" in last:
            raise RuntimeError("the model broke")
        if "__crash__" in last:
            os._exit(3)  # a model server process that dies mid-request
        pieces = [word + " " for word in text.split(" ")]
        pieces[-1] = pieces[-1][:-1]
        finished = len(pieces) <= max_tokens
        pieces = pieces[:max_tokens]
        for count, piece in enumerate(pieces, 1):
            if self.delay:
                time.sleep(self.delay)
            if on_text is not None:
                on_text(piece)
            if should_stop is not None and should_stop():
                pieces, finished = pieces[:count], False
                break
        return Generation(
            text="".join(pieces),
            finish_reason="stop" if finished else "length",
            prompt_tokens=_tokens(messages) if prompt_ids is None else len(prompt_ids),
            completion_tokens=len(pieces) + (1 if finished else 0),
        )


def echo_json(messages: Sequence[dict[str, str]]) -> str:
    """A JSON reply naming the user's last message: what managed mode's gate field reads."""
    last = messages[-1]["content"]
    return json.dumps({"should_process": "skip" not in last, "echo": last})
