"""The run workflow's contract: the state machine that runs is the synthesized one; dataset runs;
cascades and the guards runs put on datasets and specs."""

from __future__ import annotations

import json
from typing import Any

import boto3
import requests

from tests.integration.test_runs_api import FAST, create_spec, wait_for
from tests.storage import template


def test_the_state_machine_that_runs_is_the_synthesized_one(aws: dict[str, Any]) -> None:
    from tt_local.provision import state_machines

    (definition,) = state_machines(template()).values()
    synthesized = json.loads(definition)
    stored = boto3.client("stepfunctions", region_name="us-east-1").describe_state_machine(
        stateMachineArn=aws["state_machine"]
    )
    running = json.loads(stored["definition"])
    assert running == synthesized
    states = running["States"]
    assert set(states) >= {"Prepare", "StartTraining", "WaitForTraining", "PollTraining", "TrainingFinished?",
                           "Evaluate", "Finish", "RecordFailure", "RunCompleted", "RunFailed"}  # fmt: skip
    for name in ("Prepare", "StartTraining", "PollTraining", "Evaluate", "Finish"):
        assert [c["Next"] for c in states[name]["Catch"]] == ["RecordFailure"]
        assert states[name]["TimeoutSeconds"] > 0
    assert states["RecordFailure"]["Next"] == "RunFailed"


def _upload(client: Any, rows: list[dict[str, str]]) -> str:
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    upload = client.post(
        "/datasets/upload-url", {"name": "faq", "filename": "faq.jsonl", "size": len(body)}
    ).json()["data"]
    assert (
        requests.put(upload["upload_url"], data=body, headers=upload["headers"], timeout=10).status_code
        == 200
    )
    dataset = client.post("/datasets/finalize", {"path": upload["path"], "name": "faq"}).json()["data"]
    assert dataset["status"] == "validated", dataset
    return str(dataset["id"])


def test_a_dataset_run_with_a_test_split_reports_both_blocks(client: Any) -> None:
    rows = [{"input": f"Where is setting {i}?", "output": f"Go to Settings > Panel {i}."} for i in range(20)]
    dataset_id = _upload(client, rows)
    spec_id = create_spec(client)
    body = {**FAST, "augment": False, "dataset_id": dataset_id,
            "split_ratios": {"train": 0.7, "validation": 0.15, "test": 0.15}}  # fmt: skip
    started = client.post(f"/behavior-specs/{spec_id}/runs", body)
    assert started.status == 201, started.json()
    assert started.json()["data"]["dataset_id"] == dataset_id

    # While the run is active (it has only just started) its dataset cannot be deleted.
    deleted = client.delete(f"/datasets/{dataset_id}")
    assert deleted.status == 409 and deleted.json()["error"]["code"] == "dataset_in_use"
    run = started.json()["data"]

    run = wait_for(client, run["id"], ("completed", "failed", "cancelled"))
    assert run["status"] == "completed", run["error"]
    assert run["dataset_id"] == dataset_id and run["augmentation_method"] == "none"
    assert run["row_counts"] == {"training": 14, "augmented": 0, "evaluation": 3, "test": 3}
    assert run["split_ratios"] == {"train": 0.7, "validation": 0.15, "test": 0.15}
    summary = run["eval_summary"]
    assert summary["eval_split"] == "dataset_validation" and summary["total"] == 3
    assert summary["output_diagnostics"]["test"]["candidate"]["total"] == 3
    assert client.delete(f"/datasets/{dataset_id}").status == 204  # the run has ended: the dataset is free


def test_deleting_a_spec_stops_and_deletes_its_runs_but_keeps_uploads(client: Any) -> None:
    spec_id = create_spec(client)
    run = client.post(f"/behavior-specs/{spec_id}/runs", {"hyperparameters": {"n_epochs": 20}}).json()["data"]
    wait_for(client, run["id"], ("training", "evaluating", "completed", "failed"), timeout=60)
    generated = client.get(f"/runs/{run['id']}").json()["data"]["dataset_id"]
    assert client.delete(f"/behavior-specs/{spec_id}").status == 204
    assert client.get(f"/runs/{run['id']}").status == 404
    assert client.get("/runs").json()["meta"]["total"] == 0
    if generated:
        assert client.get(f"/datasets/{generated}").status == 404
    # The slot it held is free: another spec can run up to the limit again.
    other = create_spec(client)
    for _ in range(2):
        started = client.post(f"/behavior-specs/{other}/runs", FAST)
        assert started.status == 201
        client.post(f"/runs/{started.json()['data']['id']}/cancel")


def test_runs_are_invisible_to_other_accounts(client: Any, other_client: Any) -> None:
    spec_id = create_spec(client)
    run = client.post(f"/behavior-specs/{spec_id}/runs", FAST).json()["data"]
    for path in (f"/runs/{run['id']}", f"/runs/{run['id']}/diagnostics", f"/behavior-specs/{spec_id}/runs"):
        assert other_client.get(path).status == 404
    assert other_client.post(f"/runs/{run['id']}/cancel").status == 404
    assert other_client.get("/runs").json()["meta"]["total"] == 0
    # Before training, every diagnostics object is there, empty.
    diagnostics = client.get(f"/runs/{run['id']}/diagnostics").json()["data"]
    assert diagnostics["training"]["state"] == "pending" and diagnostics["training"]["curve"]["samples"] == []
    assert diagnostics["output_diagnostics"]["candidate"]["total"] == 0 and diagnostics["insights"] == []
    assert client.post(f"/runs/{run['id']}/cancel").json()["data"]["status"] == "cancelled"
