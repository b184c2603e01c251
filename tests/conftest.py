"""Shared fixtures: moto-backed AWS, the table and bucket the stack defines, an in-process gateway."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Tests never reach AWS: dummy credentials before anything builds a client.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    HF_HUB_OFFLINE="1",
    POWERTOOLS_METRICS_NAMESPACE="TunedTensorTests",
    POWERTOOLS_DEV="false",
    POWERTOOLS_TRACE_DISABLED="true",
    # Handlers run in this process: their EMF lines would land in the CLI output that tests read from
    # stdout. The metrics tests switch them on.
    POWERTOOLS_METRICS_DISABLED="true",
)
# `make test` runs two workers on a machine of two cores: one compute thread each for torch, here and in every
# stack and trainer a worker starts. Otherwise two trainers' threads outnumber the cores and a tiny run that
# takes 35 s alone took over 4 minutes beside another (seen in CI).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@contextmanager
def emulated_aws(patch: pytest.MonkeyPatch, jobs_dir: Path, **env: str) -> Iterator[dict[str, Any]]:
    """moto in-process with the stack's table, bucket and state machine; the wiring reads their names from
    env (`patch` sets them, with `env` on top). Yields the names, the Lambda dispatcher and `jobs_dir`."""
    from moto import mock_aws

    from tests.storage import create_storage, template
    from tt_core import wiring
    from tt_local import adapters
    from tt_local.lambdas import LambdaDispatcher
    from tt_local.provision import function_handlers

    patch.delenv("AWS_ENDPOINT_URL", raising=False)
    # A developer's own Claude credentials must never turn a test into real requests.
    for name in ("ANTHROPIC_API_KEY", "TT_ANTHROPIC_API_KEY_SECRET", "TT_BEDROCK_ENABLED"):
        patch.delenv(name, raising=False)
    # As on the local stack: moto interprets the state machine, Lambda code runs in this process.
    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    with mock_aws(config=config):  # type: ignore[arg-type]
        names = create_storage()
        settings = {
            "TT_TABLE_NAME": names["table"],
            "TT_BUCKET_NAME": names["bucket"],
            "TT_STATE_MACHINE_ARN": names["state_machine"],
            "TT_MODE": "local",
            "TT_DEFAULT_BASE_MODEL": "tunedtensor/tiny-chat",
            "TT_LOCAL_JOBS_DIR": str(jobs_dir),
            "TT_TRAINING_POLL_SECONDS": "1",
        }
        for name, value in {**settings, **env}.items():
            patch.setenv(name, value)
        adapters.install()  # TT_MODE=local: the local stack's launcher and playground, as locally
        # S3 notifications and state machine tasks run the stack's functions in-process, as locally.
        lambdas = LambdaDispatcher(function_handlers(template()))
        lambdas.install()
        threads = set(threading.enumerate())
        try:
            yield {**names, "lambdas": lambdas, "jobs_dir": jobs_dir}
        finally:
            _stop_workflows(names["state_machine"], jobs_dir, threads)
            lambdas.uninstall()
            wiring.reset()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with emulated_aws(monkeypatch, tmp_path / "jobs") as names:
        yield names


def _stop_workflows(state_machine: str, jobs_dir: Path, before: set[threading.Thread]) -> None:
    """No workflow of a test outlives it: executions stopped, trainers killed, their threads joined."""
    import boto3

    from tt_local.process_launcher import reap_orphans

    client = boto3.client("stepfunctions", region_name="us-east-1")
    for execution in client.list_executions(stateMachineArn=state_machine, statusFilter="RUNNING")[
        "executions"
    ]:
        client.stop_execution(executionArn=execution["executionArn"])
    reap_orphans(jobs_dir)
    # moto interprets an execution in threads named after their targets.
    for thread in set(threading.enumerate()) - before:
        if thread.name.endswith(("(_execution_logic)", "(eval)", "(_exec_and_notify)")):
            thread.join(timeout=30)


@pytest.fixture
def gateway(aws: dict[str, Any]) -> Any:
    from functions.api.handler import lambda_handler as api
    from functions.authorizer.handler import lambda_handler as authorizer
    from tt_local.gateway import LocalGateway

    return LocalGateway(api, authorizer)


@pytest.fixture
def client(gateway: Any) -> Any:
    from tests.api_client import new_account

    return new_account(gateway, "acme")


@pytest.fixture
def other_client(gateway: Any) -> Any:
    from tests.api_client import new_account

    return new_account(gateway, "globex")


SEED_SPEC = {
    "name": "Customer Support Bot",
    "system_prompt": "You are a helpful support agent...",
    "guidelines": ["Be concise"],
    "constraints": ["Never promise refunds"],
    "examples": [{"input": "How do I cancel?", "output": "Go to Settings > Billing..."}],
    "base_model": "meta-llama/Llama-3.2-3B-Instruct",
}


@pytest.fixture
def spec_body() -> dict[str, Any]:
    import copy

    return copy.deepcopy(SEED_SPEC)


# `make test` runs the suite on two xdist workers. A file's tests stay on one worker, so its module fixtures
# (a running local stack, a trained model) are built once; the directories whose session fixtures are
# costly (a trained parent artifact, the synthesized stack, the browser's stack and page) stay whole on one
# worker. (xdist's own `loadgroup` marks do not reach the scheduler under pytest 9: it renames `_nodeid`.)
_WHOLE_DIRECTORIES = frozenset({"trainer", "infra", "browser"})


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ByFileOrDirectory(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            parts = path.split("/")
            return parts[1] if len(parts) > 2 and parts[1] in _WHOLE_DIRECTORIES else path

    return ByFileOrDirectory(config, log)
