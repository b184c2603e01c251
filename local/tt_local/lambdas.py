"""Runs the stack's Lambda functions in this process when moto invokes them (no Docker).

moto hands S3 notifications to `LambdaFunction.invoke` of its Lambda backend, which needs Docker to
run code, and the Step Functions interpreter's `lambda:invoke` calls to `LambdaSimpleBackend.invoke`,
which only echoes. The local stack replaces both methods (moto is pinned for this reason) and
dispatches to the real handler: in a thread for S3 (asynchronous on AWS too), synchronously for the
state machine, with a failure reported as Lambda reports an unhandled error (so Catch sees it).
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from tt_core.observability import logger
from tt_local.gateway import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


def load_handler(path: str) -> Handler:
    """`functions.api.handler.lambda_handler` → the function object."""
    module, _, name = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


def _far_deadline() -> float:
    """Task functions get the full 15 minutes Lambda allows, as their timeouts are set in the stack."""
    return time.time() * 1000 + 900_000


class LambdaDispatcher:
    """Function name → handler path, for every function the template defines."""

    def __init__(self, handlers: Mapping[str, str]) -> None:
        self._handlers = dict(handlers)
        self._threads: list[threading.Thread] = []
        self._original: Any = None
        self._original_simple: Any = None

    def invoke_async(self, function_name: str, event: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(function_name, event), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, function_name: str, event: dict[str, Any]) -> None:
        try:
            load_handler(self._handlers[function_name])(event, LambdaContext(function_name))
        except Exception:  # on AWS: retried, then the dead-letter queue; here: logged
            logger.exception("Local Lambda invocation failed", extra={"function": function_name})

    def invoke_sync(
        self, function_name: str, event: dict[str, Any], response_headers: dict[str, str]
    ) -> bytes:
        """A RequestResponse invocation: the handler's result, or Lambda's error payload."""
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        try:
            result = load_handler(self._handlers[name])(
                event, LambdaContext(name, deadline_ms=_far_deadline())
            )
        except Exception as error:
            logger.exception("Local Lambda invocation failed", extra={"function": name})
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        return json.dumps(result).encode()

    def wait(self, timeout: float = 30.0) -> None:
        """Lets invocations in flight finish (used on shutdown and by tests)."""
        for thread in list(self._threads):
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    def install(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.awslambda_simple.models import LambdaSimpleBackend

        dispatcher = self

        def invoke(function: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
            dispatcher.invoke_async(function.function_name, json.loads(body or "{}"))
            return b""

        def invoke_sync(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return dispatcher.invoke_sync(function_name, json.loads(body or "{}"), response_headers)

        self._original = LambdaFunction.invoke
        self._original_simple = LambdaSimpleBackend.invoke
        LambdaFunction.invoke = invoke  # type: ignore[method-assign,assignment]
        LambdaSimpleBackend.invoke = invoke_sync  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.awslambda_simple.models import LambdaSimpleBackend

        self.wait()
        LambdaFunction.invoke = self._original  # type: ignore[method-assign]
        LambdaSimpleBackend.invoke = self._original_simple  # type: ignore[method-assign]
