"""Business metrics: each event is counted once, in the EMF that its handler's `log_metrics` prints."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.fake_training import install_fake_claude, install_instant_training
from tests.integration.test_datasets_api import GOOD, upload
from tests.integration.test_runs_api import EXAMPLES, FAST, TINY_SPEC, create_spec
from tests.llm_fakes import FakeClaude, refusal
from tt_core.ports import TrainingJobStatus

RUN_METRICS = ("RunsStarted", "RunsCompleted", "RunsFailed", "RunsCancelled")
Emitted = Callable[[], Counter[str]]


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Emitted:
    """Metrics on (tests/conftest.py turns them off); returns the counts printed so far, by metric."""
    from tt_core.observability import metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()
    capsys.readouterr()
    counts: Counter[str] = Counter()

    def read() -> Counter[str]:
        for line in capsys.readouterr().out.splitlines():
            if not line.startswith('{"_aws"'):
                continue
            document = json.loads(line)
            assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TunedTensorTests"
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                assert metric["Unit"] == "Count"
                value = document[metric["Name"]]
                counts[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
        return counts

    return read


def _account(client: Any) -> str:
    from tt_core import wiring

    record = wiring.api_key_service().find_key(client.key)
    assert record is not None
    return record.account_id


def _start(client: Any, spec: dict[str, Any] | None = None) -> tuple[str, str]:
    started = client.post(f"/behavior-specs/{create_spec(client, spec)}/runs", FAST)
    assert started.status == 201, started.json()
    return _account(client), started.json()["data"]["id"]


def _wait_for_end(account_id: str, run_id: str) -> str:
    """Reads the run through the service, not the API: no handler of the test's own flushes meanwhile."""
    from tt_core import wiring

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = wiring.run_service().get(account_id, run_id).status
        if status in ("completed", "failed", "cancelled"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end")


def _runs(counts: Counter[str]) -> dict[str, int]:
    return {name: counts[name] for name in RUN_METRICS}


def test_a_completed_run_counts_its_start_its_end_and_its_judge_fallbacks(
    client: Any, monkeypatch: pytest.MonkeyPatch, emitted: Emitted
) -> None:
    claude: FakeClaude = install_fake_claude(monkeypatch)
    install_instant_training(monkeypatch)
    first = EXAMPLES[0]["input"]
    original = claude.answer

    def answer(seen: Any) -> Any:  # the judge's verdict on the first row is unusable
        if seen.tool == "verdict" and f"<input>\n{first}\n</input>" in seen.prompt:
            return refusal()
        return original(seen)

    claude.answer = answer  # type: ignore[method-assign]
    account_id, run_id = _start(client, {**TINY_SPEC, "examples": EXAMPLES[:3]})
    assert _wait_for_end(account_id, run_id) == "completed"
    counts = emitted()
    assert _runs(counts) == {"RunsStarted": 1, "RunsCompleted": 1, "RunsFailed": 0, "RunsCancelled": 0}
    assert counts["JudgeFallbacks"] == 2  # that row, for the base and the tuned model


def test_a_failed_run_counts_as_failed(
    client: Any, monkeypatch: pytest.MonkeyPatch, emitted: Emitted
) -> None:
    trainer = install_instant_training(monkeypatch)
    failed = TrainingJobStatus(state="failed", failure_reason="the machine ran out of memory")
    monkeypatch.setattr(trainer, "describe", lambda job: failed)
    account_id, run_id = _start(client)
    assert _wait_for_end(account_id, run_id) == "failed"
    assert _runs(emitted()) == {"RunsStarted": 1, "RunsCompleted": 0, "RunsFailed": 1, "RunsCancelled": 0}


def test_a_cancelled_run_counts_once(client: Any, monkeypatch: pytest.MonkeyPatch, emitted: Emitted) -> None:
    install_instant_training(monkeypatch)
    account_id, run_id = _start(client)
    assert client.post(f"/runs/{run_id}/cancel").status == 200
    assert client.post(f"/runs/{run_id}/cancel").status == 409  # already ended: not counted again
    assert _wait_for_end(account_id, run_id) == "cancelled"
    assert _runs(emitted()) == {"RunsStarted": 1, "RunsCompleted": 0, "RunsFailed": 0, "RunsCancelled": 1}


def test_each_validated_upload_counts_once(client: Any, aws: dict[str, Any], emitted: Emitted) -> None:
    from functions.dataset_validation.handler import lambda_handler
    from tt_core.services.datasets import object_key
    from tt_local.gateway import LambdaContext

    assert upload(client, aws, GOOD)["status"] == "validated"
    invalid = upload(client, aws, GOOD + b'{"input": "x"}\n')
    assert invalid["status"] == "invalid"
    # A repeated event finds the dataset validated already: no second transition, no second count.
    key = object_key(_account(client), invalid["id"])
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key}}}]}
    assert lambda_handler(event, LambdaContext("validator")) == {"validated": 0}
    counts = emitted()
    assert (counts["DatasetsValidated"], counts["DatasetsInvalid"]) == (1, 1)
