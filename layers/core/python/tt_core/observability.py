"""The one Logger, Tracer and Metrics every function uses (Powertools reads their settings from the env)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.tracing.base import BaseProvider

SERVICE = "tuned-tensor"

logger = Logger(service=SERVICE)


class _NoTracing:
    """The Tracer's provider while tracing is off: subsegments that record nothing."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **_: Any) -> Iterator[_NoTracing]:
        yield self

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass


def _tracer() -> Tracer:
    if not Tracer._is_tracer_disabled():  # on Lambda, unless POWERTOOLS_TRACE_DISABLED
        return Tracer(service=SERVICE)
    # Tracer() imports the X-Ray SDK even to stay off, and that import builds the SDK's X-Ray clients
    # (~0.3 s of cold start): off (tests, the local stack, the CLI), it gets a provider that does nothing.
    return Tracer(service=SERVICE, disabled=True, provider=cast(BaseProvider, _NoTracing()))


# X-Ray keeps what a traced method returns as metadata: `capture_response=False` wherever that holds
# spec text, dataset rows, keys or signed URLs.
tracer = _tracer()
# The namespace is POWERTOOLS_METRICS_NAMESPACE, which the stack sets on every function.
metrics = Metrics(service=SERVICE)
# Most invocations count nothing; Powertools' documented way to silence its warning about that.
warnings.filterwarnings("ignore", "No application metrics to publish*")


def count(name: str, value: int = 1) -> None:
    """Counts a business event; `metrics.log_metrics` on the handler flushes it with the invocation."""
    # Disabled metrics are never flushed nor cleared, yet Powertools prints them to stdout once 100 have
    # piled up: where metrics are off (the local stack, tests), nothing is added at all.
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
