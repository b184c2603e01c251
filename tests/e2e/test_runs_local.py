"""Runs against a real `tt local up` over HTTP: the example spec end to end, cancel, and a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import RunningStack, free_port, start_stack, stop_stack
from tests.processes import process_gone

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "customer-support" / "tunedtensor.json").read_text())
TERMINAL = ("completed", "failed", "cancelled")
# Enough rows that training lasts well beyond the moments these tests act in.
LONG_SPEC = {
    **EXAMPLE,
    "examples": [{"input": f"Where is the setting number {i}?", "output": f"Open Settings > Panel {i}."}
                 for i in range(400)],
}  # fmt: skip
LONG_RUN = {"augment": False, "hyperparameters": {"batch_size": 1, "n_epochs": 20, "max_eval_examples": 2}}


def api(stack: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    return requests.request(method, f"{stack.base_url}/api/v1{path}", headers=headers, timeout=60, **kwargs)


def wait_run(stack: RunningStack, run_id: str, done: Any, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = api(stack, "GET", f"/runs/{run_id}").json()["data"]
        if done(run):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not get there: {run['status']} / {run['current_stage']}")


def trainer_pid(stack: RunningStack, run: dict[str, Any]) -> int:
    return int((stack.data_dir / "jobs" / f"tt-{run['fine_tune_job_id']}" / "pid").read_text())


def gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.2)
    return False


def start(stack: RunningStack, spec: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    spec_id = api(stack, "POST", "/behavior-specs", json=spec).json()["data"]["id"]
    response = api(stack, "POST", f"/behavior-specs/{spec_id}/runs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def test_the_example_spec_trains_evaluates_and_registers(local_stack: RunningStack) -> None:
    # The example's own settings, but short eval answers: the base model's babble would fill 256 tokens.
    run = start(
        local_stack,
        EXAMPLE,
        {"hyperparameters": {"max_output_tokens": 48, "eval_reserved_output_tokens": 16}},
    )
    run = wait_run(local_stack, run["id"], lambda r: r["status"] in TERMINAL)
    assert run["status"] == "completed", run["error"]
    summary = run["eval_summary"]
    assert summary["avg_score"] > summary["baseline_avg_score"]
    assert run["_evals"] and run["dataset_id"] and run["model_id"]
    assert [e["stage"] for e in run["_events"] if e["status"] == "started"] == [
        "compiling_spec", "augmenting", "uploading_dataset", "training_queued", "training_running",
        "generating_predictions", "scoring", "completed",
    ]  # fmt: skip
    assert gone(trainer_pid(local_stack, run), timeout=1)
    model = api(local_stack, "GET", f"/models/{run['model_id']}").json()["data"]
    assert model["provider"] == "tunedtensor" and model["fine_tune_job_id"] == run["fine_tune_job_id"]


def test_cancel_during_training_stops_the_trainer_for_good(local_stack: RunningStack) -> None:
    run = start(local_stack, LONG_SPEC, LONG_RUN)
    run = wait_run(
        local_stack, run["id"], lambda r: r["current_stage"] == "training_running" or r["status"] in TERMINAL
    )
    assert run["status"] == "training"
    pid = trainer_pid(local_stack, run)
    asked = time.monotonic()
    cancelled = api(local_stack, "POST", f"/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"
    assert gone(pid, timeout=15), "the trainer outlived the cancel"
    assert time.monotonic() - asked < 15
    time.sleep(3)  # late polls and task retries must not move a terminal run
    later = api(local_stack, "GET", f"/runs/{run['id']}").json()["data"]
    assert later["status"] == "cancelled" and later["_events"][-1]["status"] == "cancelled"
    assert api(local_stack, "POST", f"/runs/{run['id']}/cancel").status_code == 409


@pytest.mark.slow
def test_a_crash_of_the_stack_fails_its_active_runs_at_the_next_start(tmp_path: Path) -> None:
    data_dir, port = tmp_path / ".tt-local", free_port()
    stack = start_stack(data_dir, port, tmp_path)
    try:
        run = start(stack, LONG_SPEC, LONG_RUN)
        run = wait_run(
            stack, run["id"], lambda r: r["current_stage"] == "training_running" or r["status"] in TERMINAL
        )
        assert run["status"] == "training"
        pid = trainer_pid(stack, run)
        time.sleep(6)  # the stack saves its state every 5 s
    finally:
        stack.process.send_signal(signal.SIGKILL)
        stack.process.wait(timeout=30)
    restarted = start_stack(data_dir, port, tmp_path)
    try:
        assert gone(pid), "the orphaned trainer is still running after the restart"
        failed = api(restarted, "GET", f"/runs/{run['id']}").json()["data"]
        assert failed["status"] == "failed" and failed["error"] == "The local stack stopped during the run."
        assert failed["completed_at"] is not None
    finally:
        assert stop_stack(restarted) == 0


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def _upload(stack: RunningStack, rows: list[dict[str, str]]) -> str:
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    request = {"name": "dupes", "filename": "d.jsonl", "size": len(data), "contentType": "application/jsonl"}
    grant = api(stack, "POST", "/datasets/upload-url", json=request).json()["data"]
    assert (
        requests.put(grant["upload_url"], headers=grant["headers"], data=data, timeout=60).status_code == 200
    )
    dataset = api(stack, "POST", "/datasets/finalize", json={"path": grant["path"], "name": "dupes"}).json()[
        "data"
    ]
    deadline = time.monotonic() + 60
    while dataset["status"] not in ("validated", "invalid") and time.monotonic() < deadline:
        time.sleep(0.3)
        dataset = api(stack, "GET", f"/datasets/{dataset['id']}").json()["data"]
    assert dataset["status"] == "validated", dataset
    return str(dataset["id"])


def test_holdouts_stay_put_and_duplicates_never_sit_on_both_sides(local_stack: RunningStack) -> None:
    """Two runs of one unchanged spec evaluate the same prompts; a dataset's duplicated inputs are dropped
    before its split, so no evaluated input is trained on; the summary carries intervals and a verdict."""
    spec = {
        **EXAMPLE,
        "examples": [{"input": f"How do I change setting {i}?", "output": f"Open Settings > Panel {i}."}
                     for i in range(20)],
    }  # fmt: skip
    # Short answers and few eval rows: what is checked here is which rows, not how good the answers are.
    caps = {"n_epochs": 1, "max_output_tokens": 8, "eval_reserved_output_tokens": 8, "max_eval_examples": 4}
    quick = {"augment": False, "hyperparameters": caps}
    spec_id = api(local_stack, "POST", "/behavior-specs", json=spec).json()["data"]["id"]
    started = [
        api(local_stack, "POST", f"/behavior-specs/{spec_id}/runs", json=quick).json()["data"] for _ in "ab"
    ]
    runs = [wait_run(local_stack, run["id"], lambda r: r["status"] in TERMINAL) for run in started]
    assert [run["status"] for run in runs] == ["completed", "completed"], [run["error"] for run in runs]
    prompts = [sorted(row["prompt"] for row in run["_evals"]) for run in runs]
    assert prompts[0] and prompts[0] == prompts[1]
    summary = runs[0]["eval_summary"]
    assert summary["verdict"] == "inconclusive"  # under 10 rows
    assert len(summary["pass_rate_ci95"]) == 2 and len(summary["avg_score_delta_ci95"]) == 2

    unique = [{"input": f"Where is invoice {i}?", "output": f"Billing > Invoices > {i}."} for i in range(40)]
    duplicates = [
        {"input": f"  WHERE is invoice {i}? ", "output": f"Billing > Invoices > {i}."} for i in range(20)
    ]
    dataset_id = _upload(local_stack, unique + duplicates)
    run = api(
        local_stack, "POST", f"/behavior-specs/{spec_id}/runs", json={**quick, "dataset_id": dataset_id}
    )
    run = wait_run(local_stack, run.json()["data"]["id"], lambda r: r["status"] in TERMINAL)
    assert run["status"] == "completed", run["error"]
    train_dir = local_stack.data_dir / "jobs" / f"tt-{run['fine_tune_job_id']}" / "input" / "data" / "train"
    trained = {
        _normalised(message["content"])
        for path in train_dir.rglob("*.jsonl")
        for line in path.read_text().splitlines()
        for message in json.loads(line)["messages"]
        if message["role"] == "user"
    }
    evaluated = {_normalised(row["prompt"]) for row in run["_evals"]}
    assert evaluated and trained and not evaluated & trained
    assert any("dropped before splitting" in event["message"] for event in run["_events"])


def test_a_five_epoch_run_keeps_three_checkpoints_that_serve(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    """§9.10 over HTTP: epochs 5, 4, 3 kept with their validation loss, the curve's epoch ends, a download
    that is a model artifact, and `tt models serve RUN --epoch 3` answering a chat request."""
    fast = {"n_epochs": 5, "max_eval_examples": 2, "max_output_tokens": 8, "eval_reserved_output_tokens": 4}
    small = {**EXAMPLE, "examples": EXAMPLE["examples"][:12]}  # 10 training rows: 5 steps an epoch
    run = start(local_stack, small, {"augment": False, "hyperparameters": fast})
    run = wait_run(local_stack, run["id"], lambda r: r["status"] in TERMINAL)
    assert run["status"] == "completed", run["error"]
    listed = api(local_stack, "GET", f"/runs/{run['id']}/checkpoints").json()["data"]
    assert [c["epoch"] for c in listed] == [5, 4, 3]
    assert all(c["metrics"]["valid_loss"] is not None for c in listed)
    assert [c["is_registered_model"] for c in listed] == [True, False, False]
    curve = api(local_stack, "GET", f"/runs/{run['id']}/diagnostics").json()["data"]["training"]["curve"]
    ends = [s for s in curve["samples"] if s["valid_loss"] is not None]
    assert [s["epoch"] for s in ends] == [1, 2, 3, 4, 5]
    assert all(s["token_accuracy"] is not None for s in curve["samples"])
    assert curve["latest_valid_loss"] == ends[-1]["valid_loss"] == listed[0]["metrics"]["valid_loss"]
    assert api(local_stack, "GET", f"/runs/{run['id']}/checkpoints/2/download").status_code == 404

    download = api(local_stack, "GET", f"/runs/{run['id']}/checkpoints/3/download").json()["data"]
    assert download["filename"] == "checkpoint-epoch-3.tar.gz"
    archive = tmp_path / download["filename"]
    archive.write_bytes(requests.get(download["url"], timeout=30).content)
    with tarfile.open(archive) as package:
        names = set(package.getnames())
    assert {"adapter_config.json", "adapter_model.safetensors", "training-metrics.json"} <= names

    port = free_port()
    env = {
        **os.environ,
        "TUNED_TENSOR_URL": local_stack.base_url,
        "TUNED_TENSOR_API_KEY": local_stack.api_key,
    }
    command = [sys.executable, "-m", "tt_cli.main", "models", "serve", run["id"], "--epoch", "3"]
    command += ["--port", str(port), "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        answer = None
        deadline = time.monotonic() + 120
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                answer = requests.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={
                        "messages": [{"role": "user", "content": "How do I reset my password?"}],
                        "max_tokens": 8,
                    },
                    timeout=60,
                )
            except requests.ConnectionError:
                time.sleep(0.3)
        assert answer is not None, server.stderr.read() if server.poll() is not None else "no answer in 120 s"
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == f"run-{run['id'][:8]}-epoch-3" and body["choices"][0]["message"]["content"]
    finally:
        server.terminate()
        server.wait(timeout=30)
