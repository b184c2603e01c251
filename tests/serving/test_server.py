"""The OpenAI-compatible server (PRODUCT.md §15.4) on a scripted runtime: routes, streaming, JSON formats,
errors, arrival order, and requests that must not take it down."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.serving.fakes import FakeRuntime
from tt_serve.completions import BYTES_PER_TOKEN, ChatEngine
from tt_serve.server import ChatServer, ServedModel, make_server

SPEC_PROMPT = "You are a helpful support agent.\n\nGuidelines:\n- Be concise"
USER = [{"role": "user", "content": "How do I cancel?"}]


class Served:
    def __init__(self, server: ChatServer, runtime: FakeRuntime) -> None:
        self.server = server
        self.runtime = runtime
        self.url = server.url

    def chat(self, body: Any, **kwargs: Any) -> requests.Response:
        return requests.post(f"{self.url}/v1/chat/completions", json=body, timeout=30, **kwargs)


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[ChatServer] = []

    def start(*replies: Any, delay: float = 0.0, context_length: int = 2048, **engine: Any) -> Served:
        runtime = FakeRuntime(*replies, delay=delay, context_length=context_length)
        settings = {"spec_prompt": SPEC_PROMPT, "temperature": 0.7, "max_tokens": 512, **engine}
        server = make_server(
            ChatEngine(runtime, **settings), ServedModel("support-bot", "cpu", 1700000000), port=0
        )
        server.quiet = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return Served(server, runtime)

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def events(response: requests.Response) -> list[Any]:
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines), lines
    return [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


def test_health_and_models(serve: Any) -> None:
    served = serve()
    assert requests.get(f"{served.url}/health", timeout=5).json() == {
        "status": "ok", "model": "support-bot", "spec_prompt": True, "device": "cpu",
    }  # fmt: skip
    listed = requests.get(f"{served.url}/v1/models", timeout=5)
    assert listed.json() == {
        "object": "list",
        "data": [{"id": "support-bot", "object": "model", "created": 1700000000, "owned_by": "tunedtensor"}],
    }
    assert listed.headers["Access-Control-Allow-Origin"] == "*"
    options = requests.options(f"{served.url}/v1/chat/completions", timeout=5)
    assert options.status_code == 204 and options.headers["Access-Control-Allow-Origin"] == "*"
    missing = requests.get(f"{served.url}/v2/nothing", timeout=5)
    assert missing.status_code == 404 and "message" in missing.json()["error"]
    assert requests.post(f"{served.url}/v1/completions", json={}, timeout=5).status_code == 404
    assert serve(spec_prompt=None).server.engine.spec_prompt is None


def test_a_completion_with_the_spec_prompt_and_request_settings(serve: Any) -> None:
    served = serve("Go to Settings > Billing.")
    response = served.chat({"messages": USER, "model": "whatever", "max_tokens": 64, "temperature": 0,
                            "top_p": 0.5, "seed": 7, "tools": []})  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-") and len(body["id"]) > 20
    assert body["object"] == "chat.completion" and body["model"] == "whatever"
    assert isinstance(body["created"], int) and body["created"] > 1_700_000_000
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Go to Settings > Billing."},
            "finish_reason": "stop",
        }
    ]
    usage = body["usage"]
    assert (
        usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        and usage["completion_tokens"] == 5 + 1
    )  # the end-of-turn token counts
    call = served.runtime.calls[0]
    assert call["messages"] == [{"role": "system", "content": SPEC_PROMPT}, *USER]
    assert (call["max_tokens"], call["temperature"], call["top_p"]) == (64, 0.0, 0.5)

    # Defaults: the server's max tokens and temperature; model echoes the served name.
    served.chat({"messages": USER})
    assert (served.runtime.calls[1]["max_tokens"], served.runtime.calls[1]["temperature"]) == (512, 0.7)
    # A request's own system message replaces the spec prompt; text parts are joined; the alias path works.
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    own = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]
    body = {"messages": own, "max_completion_tokens": 3}
    alias = requests.post(f"{served.url}/chat/completions", json=body, timeout=5)
    assert alias.status_code == 200 and alias.json()["model"] == "support-bot"
    assert served.runtime.calls[2]["messages"] == [{"role": "system", "content": "Be brief."},
                                                   {"role": "user", "content": "a\nb"}]  # fmt: skip
    assert served.runtime.calls[2]["max_tokens"] == 3
    assert alias.json()["choices"][0]["finish_reason"] == "length"


def test_streaming_sends_role_then_content_then_finish_and_done(serve: Any) -> None:
    served = serve("One two three.")
    response = served.chat({"messages": USER, "stream": True, "stream_options": {"include_usage": True}})
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
    chunks = events(response)
    assert chunks[-1] == "[DONE]"
    first, *middle, finish, usage, _ = chunks
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"]["content"] for c in middle) == "One two three."
    # The first piece goes out at once; pieces generated within 20 ms of the last chunk share the next.
    assert [c["choices"][0]["delta"]["content"] for c in middle] == ["One ", "two three."]
    assert all(c["choices"][0]["finish_reason"] is None for c in middle)
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 4
    assert len({c["id"] for c in chunks[:-1]}) == 1
    slow = events(serve("One two three.", delay=0.03).chat({"messages": USER, "stream": True}))
    assert [c["choices"][0]["delta"]["content"] for c in slow[1:-2]] == ["One ", "two ", "three."]
    plain = events(served.chat({"messages": USER, "stream": True, "max_tokens": 2}))
    assert plain[-2]["choices"][0]["finish_reason"] == "length" and "usage" not in plain[-2]


def test_json_object_and_schema_with_repair_and_422(serve: Any) -> None:
    schema = {"type": "object", "properties": {"label": {"enum": ["positive", "negative"]}},
              "required": ["label"], "additionalProperties": False}  # fmt: skip
    json_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    served = serve('Sure! {"label": "great"}', 'Here: {"label": "positive"} done')
    response = served.chat({"messages": USER, "response_format": json_schema})
    assert response.status_code == 200, response.json()
    assert response.json()["choices"][0]["message"]["content"] == '{"label":"positive"}'
    first, repair = served.runtime.calls
    assert first["messages"][0]["content"].startswith(SPEC_PROMPT + "\n\nReply with JSON only")
    assert json.dumps(schema, separators=(",", ":")) in first["messages"][0]["content"]
    assert repair["messages"][-2] == {"role": "assistant", "content": 'Sure! {"label": "great"}'}
    assert "$.label must be one of" in repair["messages"][-1]["content"]
    assert response.json()["usage"]["completion_tokens"] == 4 + 5  # both attempts count

    failing = serve("no json here", json_repair_attempts=2, spec_prompt=None)
    refused = failing.chat({"messages": USER, "response_format": {"type": "json_object"}})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["content"] == "no json here" and error["details"] == [
        "the reply holds no complete JSON value"
    ]
    assert len(failing.runtime.calls) == 3  # one try and two repairs
    assert failing.runtime.calls[0]["messages"][0] == {
        "role": "system",
        "content": "Reply with JSON only: a single JSON object and no other text.",
    }

    streamed = serve('{"a": [1, 2]}')
    chunks = events(
        streamed.chat({"messages": USER, "stream": True, "response_format": {"type": "json_object"}})
    )
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[:-1]]
    assert contents == ["", '{"a":[1,2]}', None] and chunks[-1] == "[DONE]"

    # --json-schema applies when a request has no response_format; a list is not an object.
    defaulted = serve('["x"]', json_schema={"type": "object"}, json_repair_attempts=0)
    assert defaulted.chat({"messages": USER}).status_code == 422
    assert defaulted.chat({"messages": USER, "response_format": {"type": "text"}}).status_code == 200


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": None}]}, "content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "content"),
        ({"messages": USER, "max_tokens": 0}, "max_tokens"),
        ({"messages": USER, "max_tokens": "5"}, "max_tokens"),
        ({"messages": USER, "temperature": 2.5}, "temperature"),
        ({"messages": USER, "temperature": True}, "temperature"),
        ({"messages": USER, "top_p": 1.5}, "top_p"),
        ({"messages": USER, "stream": "yes"}, "stream"),
        ({"messages": USER, "response_format": {"type": "xml"}}, "response_format"),
        ({"messages": USER, "response_format": {"type": "json_schema", "json_schema": {}}}, "schema"),
        ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "'stop'"),
        ({"messages": USER, "stop": ""}, "'stop'"),
        ({"messages": USER, "stop": ["END", ""]}, "'stop'"),
        ({"messages": USER, "stop": 3}, "'stop'"),
        ({"messages": USER, "stop": [1]}, "'stop'"),
        ({"messages": USER, "seed": "7"}, "'seed'"),
        ({"messages": USER, "seed": 1.5}, "'seed'"),
        ({"messages": USER, "seed": True}, "'seed'"),
        ({"messages": USER, "n": 2}, "'n'"),
        ({"messages": USER, "n": 0}, "'n'"),
        ({"messages": USER, "n": "1"}, "'n'"),
        ([1, 2], "object"),
        ({"messages": [{"role": "user", "content": "__too_long__"}]}, "context"),
    ],
)
def test_bad_requests_get_openai_style_400s(serve: Any, body: Any, needle: str) -> None:
    served = serve()
    response = served.chat(body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and needle in error["message"]


def _raw(served: Served, data: bytes) -> bytes:
    host, port = served.server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"Content-Length: 0" not in chunks[0]:
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), None)  # fmt: skip
                if length is not None and len(rest) >= length:
                    break
    return b"".join(chunks)


def test_malformed_and_huge_requests_never_take_the_server_down(serve: Any) -> None:
    served = serve("fine")
    assert served.chat(None, data=b"{not json").status_code == 400
    assert served.chat(None, data=b"\xff\xfe\x00").status_code == 400
    assert served.chat(None, data=b"[" * 100_000 + b"]" * 100_000).status_code == 400  # nesting
    assert served.chat(None, data=b"").status_code == 400
    huge = served.chat(None, data=b"x" * (17 * 1024 * 1024))
    assert huge.status_code == 413 and "larger than" in huge.json()["error"]["message"]
    assert b" 400 " in _raw(served, b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
    assert b" 400 " in _raw(served, b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
    chunked = b'{"messages": [{"role": "user", "content": "hi"}]}'
    body = hex(len(chunked))[2:].encode() + b"\r\n" + chunked + b"\r\n0\r\n\r\n"
    answer = _raw(served, b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert b" 200 " in answer and b'"fine"' in answer
    assert b" 400 " in _raw(
        served, b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    )
    _raw(served, b"GARBAGE\r\n\r\n")
    broken = served.chat({"messages": [{"role": "user", "content": "__raise__"}]})
    assert broken.status_code == 500 and broken.json() == {
        "error": {"message": "Internal error: RuntimeError"}
    }
    assert served.chat({"messages": USER}).json()["choices"][0]["message"]["content"] == "fine"


def test_a_client_leaving_mid_stream_frees_the_model_for_the_next(serve: Any) -> None:
    served = serve(" ".join(["word"] * 200), delay=0.01)
    host, port = served.server.server_address[:2]
    body = json.dumps({"messages": USER, "stream": True}).encode()
    with socket.create_connection((str(host), port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        received = b""
        while b"data: " not in received:  # the headers and the first chunk may come in separate reads
            received += conn.recv(4096)
    started = time.monotonic()
    after = served.chat({"messages": USER, "max_tokens": 1})
    assert after.status_code == 200 and time.monotonic() - started < 10


def test_generations_run_one_at_a_time_in_arrival_order(serve: Any) -> None:
    served = serve("a b c", delay=0.05)
    results: dict[int, int] = {}

    def ask(i: int) -> None:
        results[i] = served.chat({"messages": [{"role": "user", "content": f"question {i}"}]}).status_code

    threads = []
    for i in range(5):
        thread = threading.Thread(target=ask, args=(i,))
        thread.start()
        threads.append(thread)
        _until(lambda i=i: served.server.turns.asked == i + 1)  # arrival order: 0, 1, 2, 3, 4
    for thread in threads:
        thread.join(timeout=30)
    assert results == dict.fromkeys(range(5), 200)
    asked = [call["messages"][-1]["content"] for call in served.runtime.calls]
    assert asked == [f"question {i}" for i in range(5)]
    starts = [call["started"] for call in served.runtime.calls]
    # Each generation starts only after the previous one (3 tokens × 50 ms) has finished.
    assert all(later - earlier >= 0.14 for earlier, later in itertools.pairwise(starts))


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def test_prompts_too_long_for_the_context_are_refused_by_bytes_then_by_tokens(serve: Any) -> None:
    served = serve("fine", context_length=100, spec_prompt=None)
    # One "word" (one token) of more bytes than 100 tokens can hold: refused without being tokenised.
    oversized = "x" * (100 * BYTES_PER_TOKEN + 1)
    for stream in (False, True):
        refused = served.chat({"messages": [{"role": "user", "content": oversized}], "stream": stream})
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
        assert f"{len(oversized):,} bytes" in refused.json()["error"]["message"]
    assert served.runtime.tokenised == []
    words = " ".join(["w"] * 100)  # 200 bytes, but 101 tokens with the message's own
    refused = served.chat({"messages": [{"role": "user", "content": words}]})
    assert (
        refused.status_code == 400
        and "the model's context is 100 tokens" in refused.json()["error"]["message"]
    )
    assert served.runtime.tokenised == [words] and served.runtime.calls == []  # the model never saw either
    assert served.chat({"messages": USER}).status_code == 200
    assert served.runtime.calls[0]["pretokenised"]  # tokenised once, before the queue


def test_a_huge_prompt_is_refused_while_another_request_holds_the_model(serve: Any) -> None:
    release = threading.Event()

    def slow(messages: Any) -> str:
        release.wait(timeout=60)
        return "done"

    served = serve(slow)
    answers: list[requests.Response] = []
    first = threading.Thread(target=lambda: answers.append(served.chat({"messages": USER})))
    first.start()
    try:
        _until(lambda: len(served.runtime.calls) == 1)  # generating: it holds the model's turn
        huge = served.chat({"messages": [{"role": "user", "content": "x" * 15_000_000}]})
        assert huge.status_code == 400 and "bytes" in huge.json()["error"]["message"]
        assert first.is_alive() and not answers  # refused while the model was still busy
    finally:
        release.set()
        first.join(timeout=30)
    assert answers[0].status_code == 200 and len(served.runtime.calls) == 1


def test_prompts_are_tokenised_beside_the_queue_not_in_it(serve: Any) -> None:
    served = serve("fine")
    slow_body = {"messages": [{"role": "user", "content": "__slow_prompt__"}]}
    answers: list[requests.Response] = []
    slow = threading.Thread(target=lambda: answers.append(served.chat(slow_body)))
    slow.start()
    try:
        _until(lambda: "__slow_prompt__" in served.runtime.tokenised)
        quick = served.chat({"messages": USER})  # answered while the other is still being tokenised
        assert quick.status_code == 200 and slow.is_alive() and not answers
    finally:
        served.runtime.release_prompts.set()
        slow.join(timeout=30)
    assert answers[0].status_code == 200
    assert [call["pretokenised"] for call in served.runtime.calls] == [True, True]


def test_stop_strings_end_the_answer_before_the_first_one_streamed_or_not(serve: Any) -> None:
    served = serve("a b x b c d b c e")
    for stop, content in [(["b c"], "a b x "), ("x", "a b "), (["d", "c d", "nowhere"], "a b x b ")]:
        for stream in (False, True):
            response = served.chat({"messages": USER, "stop": stop, "stream": stream})
            assert response.status_code == 200, response.text
            if stream:  # a held-back "b " that turned out not to start the stop string is sent later
                chunks = events(response)
                text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-2])
                assert (text, chunks[-2]["choices"][0]["finish_reason"]) == (content, "stop")
            else:
                choice = response.json()["choices"][0]
                assert (choice["message"]["content"], choice["finish_reason"]) == (content, "stop")
    # The model stops generating at the stop string: "a b x b c" is 5 of the reply's 9 tokens.
    response = served.chat({"messages": USER, "stop": "b c", "max_tokens": 100})
    assert response.json()["usage"]["completion_tokens"] == 5
    plain = served.chat({"messages": USER, "stop": [], "n": 1}).json()["choices"][0]
    assert (plain["message"]["content"], plain["finish_reason"]) == ("a b x b c d b c e", "stop")


def test_the_seed_goes_to_the_model_with_each_request(serve: Any) -> None:
    served = serve("fine")
    assert served.chat({"messages": USER, "seed": 7, "temperature": 1}).status_code == 200
    assert served.chat({"messages": USER}).status_code == 200
    assert [call["seed"] for call in served.runtime.calls] == [7, None]
