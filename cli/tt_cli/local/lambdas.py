"""Runs the stack's Lambda functions in this process when moto invokes them (no Docker).

moto hands S3 notifications to `LambdaFunction.invoke` of its Lambda backend, which needs Docker to
run code. The local stack replaces that one method (moto is pinned for this reason) and dispatches
to the real handler, in a thread, because S3 invokes asynchronously on AWS too.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from tt_cli.local.gateway import LambdaContext
from tt_core.observability import logger

Handler = Callable[[dict[str, Any], Any], Any]


def load_handler(path: str) -> Handler:
    """`functions.api.handler.lambda_handler` → the function object."""
    module, _, name = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


class LambdaDispatcher:
    """Function name → handler path, for every function the template defines."""

    def __init__(self, handlers: Mapping[str, str]) -> None:
        self._handlers = dict(handlers)
        self._threads: list[threading.Thread] = []
        self._original: Any = None

    def invoke_async(self, function_name: str, event: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(function_name, event), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, function_name: str, event: dict[str, Any]) -> None:
        try:
            load_handler(self._handlers[function_name])(event, LambdaContext(function_name))
        except Exception:  # on AWS: retried, then the dead-letter queue; here: logged
            logger.exception("Local Lambda invocation failed", extra={"function": function_name})

    def wait(self, timeout: float = 30.0) -> None:
        """Lets invocations in flight finish (used on shutdown and by tests)."""
        for thread in list(self._threads):
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    def install(self) -> None:
        from moto.awslambda.models import LambdaFunction

        dispatcher = self

        def invoke(function: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
            dispatcher.invoke_async(function.function_name, json.loads(body or "{}"))
            return b""

        self._original = LambdaFunction.invoke
        LambdaFunction.invoke = invoke  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaFunction

        self.wait()
        LambdaFunction.invoke = self._original  # type: ignore[method-assign]
