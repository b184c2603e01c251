"""Chat completions without HTTP: request parsing, the spec prompt, defaults and JSON repair (PRODUCT.md §15).

The server and the local playground both answer through ChatEngine, so they generate alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from tt_serve import json_output

ROLES = ("system", "user", "assistant")
MAX_STOP_STRINGS = 4  # as the OpenAI API allows
SEED_RANGE = (-(2**63), 2**63 - 1)  # a signed 64-bit integer, as the OpenAI API takes
# Generous: text averages 3–6 bytes a token; a prompt of more bytes than the context holds at this rate is
# refused before it is tokenised (tokenising megabytes takes seconds and gigabytes).
BYTES_PER_TOKEN = 32


class RequestError(ValueError):
    """A bad request body (HTTP 400, `invalid_request_error`)."""


class SchemaFailure(Exception):
    """No valid JSON after the repair attempts (HTTP 422)."""

    def __init__(self, errors: list[str], content: str, usage: dict[str, int]) -> None:
        super().__init__("The model's reply is not valid JSON for the requested format.")
        self.errors = errors
        self.content = content
        self.usage = usage


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float = 1.0
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    # None (not given), {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "schema": {...}}.
    response_format: dict[str, Any] | None = None
    stop: tuple[str, ...] = ()  # the answer ends before the first of these
    seed: int | None = None


@dataclass
class Completion:
    content: str
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    structured: bool = False  # content is the validated compact JSON

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


class Generator(Protocol):
    """What ChatEngine needs of a model (ModelRuntime, or a fake in tests). `prompt_ids` may run in any
    thread, beside a generation; `generate` runs one at a time."""

    context_length: int | None

    def prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]: ...

    def generate(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = ...,
        top_p: float = ...,
        on_text: Callable[[str], None] | None = ...,
        prompt_ids: Sequence[int] | None = ...,
        seed: int | None = ...,
        should_stop: Callable[[], bool] | None = ...,
    ) -> Any: ...


@dataclass
class Prompt:
    """A request made ready for the model: its conversation, checked and tokenised."""

    request: ChatRequest
    messages: list[dict[str, str]]
    response_format: dict[str, Any] | None
    ids: list[int]


# --- parsing ----------------------------------------------------------------------------------------
def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"'{name}' must be a number between {low:g} and {high:g}.")
    if not low <= value <= high:
        raise RequestError(f"'{name}' must be between {low:g} and {high:g}; got {value}.")
    return float(value)


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for index, part in enumerate(value):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise RequestError(f'\'{where}[{index}]\' must be a {{"type": "text", "text": string}} part.')
            texts.append(part["text"])
        return "\n".join(texts)
    raise RequestError(f"'{where}' must be a string or a list of text parts.")


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise RequestError("'messages' must be a non-empty list of {role, content} objects.")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise RequestError(f"'messages[{index}]' must be an object with role and content.")
        role = message.get("role")
        if role not in ROLES:
            raise RequestError(f"'messages[{index}].role' must be one of {', '.join(ROLES)}.")
        messages.append(
            {"role": str(role), "content": _content(message.get("content"), f"messages[{index}].content")}
        )
    return messages


def parse_response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {"type": "text"}  # asked for explicitly: no --json-schema either
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise RequestError("'response_format.json_schema.schema' must be a JSON Schema object.")
        return {"type": "json_schema", "schema": schema}
    raise RequestError("'response_format.type' must be 'json_object' or 'json_schema'.")


def parse_stop(value: Any) -> tuple[str, ...]:
    """`stop`: absent, a string or a list of up to 4 strings, none of them empty."""
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_STRINGS
        or not all(isinstance(stop, str) and stop for stop in stops)
    ):
        raise RequestError(
            f"'stop' must be a non-empty string or a list of at most {MAX_STOP_STRINGS} non-empty strings."
        )
    return tuple(stops)


def parse_chat_request(body: Any) -> ChatRequest:
    """A request body as the OpenAI chat API defines it; fields not named in §15.4 are ignored."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_completion_tokens")  # newer OpenAI clients send this name
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise RequestError("'max_tokens' must be an integer ≥ 1.")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError("'stream' must be true or false.")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("'model' must be a string.")
    options = body.get("stream_options")
    top_p = _number(body, "top_p", 0, 1)
    seed = body.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]
    ):
        raise RequestError("'seed' must be an integer (64-bit).")
    n = body.get("n")
    # One answer per request: a client asking for more must hear so, not get one silently.
    if n is not None and (isinstance(n, bool) or n != 1):
        raise RequestError("'n' must be 1: this server returns one choice per request.")
    return ChatRequest(
        messages=_messages(body.get("messages")),
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 0, 2),
        top_p=1.0 if top_p is None else top_p,
        model=model,
        stream=bool(stream),
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        response_format=parse_response_format(body.get("response_format")),
        stop=parse_stop(body.get("stop")),
        seed=seed,
    )


# --- the spec prompt --------------------------------------------------------------------------------
def spec_prompt_from_file(path: Path) -> str:
    """The composed system prompt of a tunedtensor.json (PRODUCT.md §7, §15.3)."""
    from tt_core.specs.prompt import compose_system_prompt

    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable JSON spec ({error}).") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path} is not a spec object.")

    def items(name: str) -> list[str]:
        value = spec.get(name) or []
        return [str(item) for item in value] if isinstance(value, list) else []

    return compose_system_prompt(
        str(spec.get("system_prompt") or ""), items("guidelines"), items("constraints")
    )


def with_spec_prompt(messages: Sequence[dict[str, str]], spec_prompt: str | None) -> list[dict[str, str]]:
    """The spec prompt as the first message, only when the request brought no system message (§15.3)."""
    chat = [dict(m) for m in messages]
    if spec_prompt and not any(m["role"] == "system" for m in chat):
        chat.insert(0, {"role": "system", "content": spec_prompt})
    return chat


def _with_instruction(messages: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    for message in messages:
        if message["role"] == "system":
            message["content"] = f"{message['content']}\n\n{text}" if message["content"] else text
            return messages
    return [{"role": "system", "content": text}, *messages]


# --- stop strings -----------------------------------------------------------------------------------
class StopScanner:
    """Watches the answer as it is generated for the first stop string, and passes on (to `on_text`) only
    text known to come before it: an end that could begin a stop string waits for the next piece."""

    def __init__(self, stops: Sequence[str], on_text: Callable[[str], None] | None) -> None:
        self.stops = stops
        self.on_text = on_text
        self.longest = max(map(len, stops))
        self.text = ""
        self.sent = 0
        self.found: int | None = None  # where the first stop string starts

    def stopped(self) -> bool:
        return self.found is not None

    def feed(self, piece: str) -> None:
        if self.found is not None:
            return  # the model may add a token before it stops: it is not part of the answer
        # Nothing matched before this piece: a match now ends in it, so the search can start close to it.
        start = max(0, len(self.text) - self.longest + 1)
        self.text += piece
        hits = [at for stop in self.stops if (at := self.text.find(stop, start)) >= 0]
        if hits:
            self.found = min(hits)
            self._send(self.found)
            return
        self._send(len(self.text) - self._held())

    def finish(self, text: str) -> str | None:
        """The answer cut before its first stop string, or None when it holds none; sends what was held."""
        if text.startswith(self.text):  # the generator's whole text, whatever its pieces left out
            self.feed(text[len(self.text) :])
        self._send(len(self.text) if self.found is None else self.found)
        return None if self.found is None else self.text[: self.found]

    def _held(self) -> int:
        """How many characters at the end could begin a stop string."""
        for size in range(min(len(self.text), self.longest - 1), 0, -1):
            if any(stop.startswith(self.text[-size:]) for stop in self.stops):
                return size
        return 0

    def _send(self, end: int) -> None:
        if self.on_text is not None and end > self.sent:
            self.on_text(self.text[self.sent : end])
        self.sent = max(self.sent, end)


# --- the engine -------------------------------------------------------------------------------------
@dataclass
class ChatEngine:
    runtime: Generator
    spec_prompt: str | None = None
    max_tokens: int = 512
    temperature: float = 0.7
    json_schema: dict[str, Any] | None = None  # --json-schema: for requests without a response_format
    json_repair_attempts: int = 1

    def messages_for(self, request: ChatRequest) -> list[dict[str, str]]:
        return with_spec_prompt(request.messages, self.spec_prompt)

    def response_format(self, request: ChatRequest) -> dict[str, Any] | None:
        if request.response_format is not None:
            return None if request.response_format["type"] == "text" else request.response_format
        if self.json_schema is not None:
            return {"type": "json_schema", "schema": self.json_schema}
        return None

    def prepare(self, request: ChatRequest) -> Prompt:
        """The conversation the model gets, its size checked and then tokenised (RequestError if too long).

        Callers run this before they wait for the model, in parallel: a huge prompt never holds the queue."""
        from tt_serve.runtime import PromptError

        messages = self.messages_for(request)
        response_format = self.response_format(request)
        if response_format is not None:
            messages = _with_instruction(messages, json_output.instruction(response_format.get("schema")))
        context = self.runtime.context_length
        size = sum(len(m["content"].encode()) for m in messages)
        if context is not None and size > context * BYTES_PER_TOKEN:
            raise RequestError(
                f"The prompt is {size:,} bytes: more than the model's context of {context:,} tokens holds."
            )
        try:
            ids = self.runtime.prompt_ids(messages)
        except PromptError as error:
            raise RequestError(str(error)) from None
        if context is not None and len(ids) >= context:  # no room left for a single new token
            raise RequestError(f"The prompt has {len(ids)} tokens; the model's context is {context} tokens.")
        return Prompt(request, messages, response_format, ids)

    def _generate(
        self, messages: list[dict[str, str]], request: ChatRequest, on_text: Any, ids: list[int] | None = None
    ) -> Completion:
        """One generation, ended (and cut) at the request's first stop string."""
        temperature = self.temperature if request.temperature is None else request.temperature
        scanner = StopScanner(request.stop, on_text) if request.stop else None
        result = self.runtime.generate(
            messages,
            max_tokens=request.max_tokens or self.max_tokens,
            temperature=temperature,
            top_p=request.top_p,
            on_text=on_text if scanner is None else scanner.feed,
            prompt_ids=ids,
            seed=request.seed,
            should_stop=None if scanner is None else scanner.stopped,
        )
        cut = None if scanner is None else scanner.finish(result.text)
        if cut is None:
            return Completion(
                result.text, result.finish_reason, result.prompt_tokens, result.completion_tokens
            )
        return Completion(cut, "stop", result.prompt_tokens, result.completion_tokens)

    def complete(
        self,
        request: ChatRequest,
        on_text: Callable[[str], None] | None = None,
        *,
        turn: AbstractContextManager[Any] | None = None,
    ) -> Completion:
        """One answer; with a JSON format, the validated compact JSON (`on_text` is not called then).

        The prompt is prepared first, then the model generates inside `turn` (the caller's queue for it).
        Raises RequestError (the prompt cannot be used) and SchemaFailure (no valid JSON)."""
        from tt_serve.runtime import PromptError

        prompt = self.prepare(request)
        try:
            with turn if turn is not None else nullcontext():
                if prompt.response_format is None:
                    return self._generate(prompt.messages, request, on_text, prompt.ids)
                return self._structured(prompt)
        except PromptError as error:
            raise RequestError(str(error)) from None

    def _structured(self, prompt: Prompt) -> Completion:
        assert prompt.response_format is not None
        schema = prompt.response_format.get("schema")
        chat, request = prompt.messages, prompt.request
        ids: list[int] | None = prompt.ids
        prompt_tokens = completion_tokens = 0
        for attempt in range(1 + max(0, self.json_repair_attempts)):
            result = self._generate(chat, request, None, ids)
            prompt_tokens += result.prompt_tokens
            completion_tokens += result.completion_tokens
            valid, errors = json_output.check_reply(result.content, schema)
            if valid is not None:
                return Completion(
                    valid, result.finish_reason, prompt_tokens, completion_tokens, structured=True
                )
            if attempt < self.json_repair_attempts:
                chat = [
                    *chat,
                    {"role": "assistant", "content": result.content},
                    {"role": "user", "content": json_output.correction(errors, schema)},
                ]
                ids = None  # a repair's prompt is tokenised by the runtime (bounded: one reply longer)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        raise SchemaFailure(errors, result.content, usage)
