"""The Tracer and Metrics of tt_core.observability: off without X-Ray's cost, and counts flushed per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tt_core.observability import count, metrics, tracer

REPO = Path(__file__).resolve().parents[2]
TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
HANDLERS = (
    "functions.api.handler",
    "functions.authorizer.handler",
    "functions.dataset_validation.handler",
    *(f"functions.run_workflow.{task}" for task in
      ("prepare", "start_training", "poll_training", "evaluate", "finish", "fail")),
)  # fmt: skip
PROBE = (
    f"import sys, {', '.join(HANDLERS)}\n"
    "from tt_core.observability import tracer\n"
    "print(tracer.disabled, 'aws_xray_sdk.core' in sys.modules)"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "True False"),  # outside Lambda the Tracer is off, and the X-Ray SDK is never imported
        ({"LAMBDA_TASK_ROOT": "/var/task", TRACE_DISABLED: "true"}, "True False"),
        ({"LAMBDA_TASK_ROOT": "/var/task"}, "False True"),
    ],
    ids=["outside_lambda", "disabled_on_lambda", "on_lambda"],
)
def test_the_tracer_imports_x_ray_only_where_it_traces(env: dict[str, str], expected: str) -> None:
    inherited = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", TRACE_DISABLED)}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == expected


def test_traced_handlers_and_methods_work_with_tracing_off() -> None:
    class Service:
        @tracer.capture_method
        def double(self, value: int) -> int:
            return 2 * value

        @tracer.capture_method(capture_response=False)
        def refuse(self) -> None:
            raise ValueError("no")

    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("refuse"):
            Service().refuse()
        return {"value": Service().double(event["value"])}

    assert tracer.disabled
    assert handler({"value": 21}, None) == {"value": 42}
    with pytest.raises(ValueError, match="no"):
        handler({"value": 1, "refuse": True}, None)


def test_counts_are_not_kept_while_metrics_are_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As on the local stack. Powertools would keep these (its flush skips disabled metrics without
    # clearing them) and print them all the same on the 100th.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.clear_metrics()
    for _ in range(150):
        count("RunsStarted")
    assert metrics.metric_set == {}
    assert capsys.readouterr().out == ""


def test_counts_are_flushed_with_each_invocation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> None:
        for _ in range(event["runs"]):
            count("RunsStarted")

    handler({"runs": 2}, None)
    handler({"runs": 0}, None)  # nothing to publish: nothing printed
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    emf = json.loads(lines[0])
    # The namespace is the environment's (the stack sets POWERTOOLS_METRICS_NAMESPACE on every function).
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == os.environ["POWERTOOLS_METRICS_NAMESPACE"]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "RunsStarted", "Unit": "Count"}]
    assert emf["RunsStarted"] == [1.0, 1.0] and emf["service"] == "tuned-tensor"
    assert metrics.metric_set == {}
