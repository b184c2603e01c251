"""The OpenAI-compatible HTTP server of `tt models serve` (PRODUCT.md §15.4).

Requests are read, checked and tokenised in parallel, then generate one at a time, in arrival order. Every
failure becomes an OpenAI-style error body: no request, however malformed or large, takes the server down.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tt_serve.completions import (
    ChatEngine,
    ChatRequest,
    RequestError,
    SchemaFailure,
    parse_chat_request,
    spec_prompt_from_file,
)

MAX_BODY_BYTES = 16 * 1024 * 1024
STREAM_INTERVAL_S = 0.02  # at most ~50 content chunks a second: faster than anyone reads
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
MODELS_PATHS = ("/v1/models", "/models")
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Max-Age": "86400",
}


class FifoTurns:
    """A lock granted in the order it was asked for (threading.Lock promises no order)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @property
    def asked(self) -> int:
        """Turns asked for so far (granted, running or waiting)."""
        with self._cond:
            return self._next_ticket

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()


@dataclass(frozen=True)
class ServedModel:
    name: str
    device: str
    created: int


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: ChatEngine, model: ServedModel) -> None:
        super().__init__(address, ChatHandler)
        self.engine = engine
        self.model = model
        self.turns = FifoTurns()
        self.quiet = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"


def _error(message: str, kind: str | None = "invalid_request_error") -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if kind is not None:
        body["type"] = kind
    return {"error": body}


class ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChatServer
    timeout = 300  # a client that stops sending (or reading) frees its thread
    # Stream chunks are small writes: without TCP_NODELAY each may wait for the previous one's ACK.
    disable_nagle_algorithm = True

    # --- plumbing ------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    def _send_json(self, status: int, payload: Any, *, close: bool = False) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in CORS_HEADERS.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else 0
        except ValueError:
            raise _BodyError(400, "Content-Length is not a number.") from None
        if length < 0:
            raise _BodyError(400, "Content-Length is negative.")
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB.")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
            except ValueError:
                raise _BodyError(400, "The chunked request body is malformed.") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            if len(data) + size > MAX_BODY_BYTES:
                raise _BodyError(
                    413, f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB."
                )
            data += self.rfile.read(size)
            self.rfile.readline(1024)

    @property
    def _path(self) -> str:
        path = urlsplit(self.path).path
        return path.rstrip("/") or "/"

    def _safely(self, handler: Any) -> None:
        try:
            handler()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away; nothing to answer
        except Exception as error:  # the last line of defence: answer 500, keep serving
            self.log_error("Internal error: %r", error)
            try:
                self._send_json(
                    500, {"error": {"message": f"Internal error: {type(error).__name__}"}}, close=True
                )
            except OSError:
                self.close_connection = True

    # --- routes --------------------------------------------------------------------------------
    def do_OPTIONS(self) -> None:
        def answer() -> None:
            self.send_response(204)
            for name, value in CORS_HEADERS.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        self._safely(answer)

    def do_GET(self) -> None:
        self._safely(self._get)

    def do_POST(self) -> None:
        self._safely(self._post)

    def _unknown(self) -> None:
        self._safely(
            lambda: self._send_json(404, _error(f"Unknown path: {self.command} {self._path}", "not_found"))
        )

    do_PUT = do_DELETE = do_PATCH = do_HEAD = _unknown

    def _get(self) -> None:
        model = self.server.model
        if self._path == "/health":
            engine = self.server.engine
            self._send_json(
                200,
                {
                    "status": "ok",
                    "model": model.name,
                    "spec_prompt": bool(engine.spec_prompt),
                    "device": model.device,
                },
            )
        elif self._path in MODELS_PATHS:
            entry = {"id": model.name, "object": "model", "created": model.created, "owned_by": "tunedtensor"}
            self._send_json(200, {"object": "list", "data": [entry]})
        else:
            self._send_json(404, _error(f"Unknown path: GET {self._path}", "not_found"))

    def _post(self) -> None:
        if self._path not in CHAT_PATHS:
            # The body is not read: close rather than leave it in the connection.
            self._send_json(404, _error(f"Unknown path: POST {self._path}", "not_found"), close=True)
            return
        try:
            raw = self._read_body()
        except _BodyError as error:
            self._send_json(error.status, _error(str(error)), close=True)
            return
        try:
            request = parse_chat_request(json.loads(raw.decode("utf-8")) if raw.strip() else None)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            message = (
                str(error) if isinstance(error, RequestError) else f"The body is not valid JSON: {error}"
            )
            self._send_json(400, _error(message))
            return
        # The engine checks and tokenises the prompt in this thread, and takes a turn only to generate.
        if request.stream:
            self._stream(request)
        else:
            self._complete(request)

    # --- completions ---------------------------------------------------------------------------
    def _envelope(self, request: ChatRequest, kind: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": request.model or self.server.model.name,
        }

    def _failure(self, error: RequestError | SchemaFailure) -> None:
        """A bad request is a 400; no valid JSON after the repairs is a 422 with the last reply."""
        if isinstance(error, RequestError):
            self._send_json(400, _error(str(error)))
        else:
            body = {"error": {"message": str(error), "details": error.errors, "content": error.content}}
            self._send_json(422, body)

    def _complete(self, request: ChatRequest) -> None:
        try:
            completion = self.server.engine.complete(request, turn=self.server.turns.turn())
        except (RequestError, SchemaFailure) as error:
            self._failure(error)
            return
        self._send_json(
            200,
            {
                **self._envelope(request, "chat.completion"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": completion.content},
                        "finish_reason": completion.finish_reason,
                    }
                ],
                "usage": completion.usage,
            },
        )

    def _stream(self, request: ChatRequest) -> None:
        envelope = self._envelope(request, "chat.completion.chunk")
        started = False

        def event(payload: Any) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            self.wfile.write(f"data: {text}\n\n".encode())
            self.wfile.flush()

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            event({**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

        def start() -> None:
            nonlocal started
            if started:
                return
            started = True
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")  # the stream ends when the connection does
            for name, value in CORS_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.close_connection = True
            chunk({"role": "assistant", "content": ""})

        # The JSON around a content piece is the same for every chunk: made once.
        head, tail = json.dumps(
            {**envelope, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": None}]},
            ensure_ascii=False,
        ).split('"content": ""')
        pending: list[str] = []
        flushed_at = 0.0

        def flush() -> None:
            nonlocal flushed_at
            if pending:
                text = json.dumps("".join(pending), ensure_ascii=False)
                self.wfile.write(f'data: {head}"content": {text}{tail}\n\n'.encode())
                pending.clear()
            flushed_at = time.monotonic()

        def on_text(piece: str) -> None:
            # The first piece goes out at once; pieces generated within STREAM_INTERVAL_S of the last chunk
            # share the next one, so a fast model does not pay a write (and a client wake-up) per token.
            start()
            pending.append(piece)
            if time.monotonic() - flushed_at >= STREAM_INTERVAL_S:
                flush()

        try:
            completion = self.server.engine.complete(request, on_text=on_text, turn=self.server.turns.turn())
        except (RequestError, SchemaFailure) as error:
            if started:
                flush()
                event({"error": {"message": str(error)}})
            else:
                self._failure(error)
            return
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            raise
        except Exception as error:
            if not started:
                raise
            self.log_error("Generation failed mid-stream: %r", error)
            flush()
            event({"error": {"message": f"Internal error: {type(error).__name__}"}})
            return
        flush()
        start()
        if completion.structured:  # validated JSON goes out as one content delta
            chunk({"content": completion.content})
        chunk({}, completion.finish_reason)
        if request.include_usage:
            event({**envelope, "choices": [], "usage": completion.usage})
        event("[DONE]")


def make_server(
    engine: ChatEngine, model: ServedModel, host: str = "127.0.0.1", port: int = 8000
) -> ChatServer:
    return ChatServer((host, port), engine, model)


# --- the process `tt models serve` runs ---------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tt_serve.server", description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", help="the model name /v1/models shows (default: the directory's)")
    parser.add_argument(
        "--spec", type=Path, help="tunedtensor.json whose prompt is the default system message"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--base-model-dir", type=Path)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--json-schema", type=Path)
    parser.add_argument("--json-repair-attempts", type=int, default=1)
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no access log lines")
    return parser


def _model_name(model_dir: Path) -> str:
    return model_dir.parent.name if model_dir.name == "model" and model_dir.parent.name else model_dir.name


def engine_from_args(args: argparse.Namespace) -> tuple[ChatEngine, ServedModel]:
    from tt_serve.runtime import ModelRuntime

    spec_prompt = spec_prompt_from_file(args.spec) if args.spec else None
    schema = None
    if args.json_schema:
        schema = json.loads(Path(args.json_schema).read_text(encoding="utf-8"))
        if not isinstance(schema, dict):
            raise ValueError(f"{args.json_schema} is not a JSON Schema object.")
    runtime = ModelRuntime.load(
        args.model_dir,
        device=args.device,
        base_model_dir=args.base_model_dir,
        trust_remote_code=args.trust_remote_code,
    )
    engine = ChatEngine(
        runtime,
        spec_prompt=spec_prompt or None,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        json_schema=schema,
        json_repair_attempts=args.json_repair_attempts,
    )
    model = ServedModel(
        name=args.name or _model_name(args.model_dir), device=str(runtime.device), created=int(time.time())
    )
    return engine, model


def serve(server: ThreadingHTTPServer) -> None:
    """Serves until SIGINT or SIGTERM (each ends it cleanly); the plain and the managed server alike."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tt_serve.runtime import RuntimeLoadError

    print(f"Loading {args.model_dir} …", file=sys.stderr, flush=True)
    try:
        engine, model = engine_from_args(args)
        server = make_server(engine, model, args.host, args.port)
    except (RuntimeLoadError, ValueError, OSError) as error:
        print(f"✗ {error}", file=sys.stderr, flush=True)
        return 1
    server.quiet = args.quiet
    spec = "on" if engine.spec_prompt else "off"
    print(
        f"Serving {model.name} at {server.url}/v1 (device {model.device}, spec prompt {spec}); "
        "Ctrl-C stops it.",
        flush=True,
    )
    serve(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
