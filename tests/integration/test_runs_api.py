"""Runs through the API on moto with the synthesized state machine and the real trainer (tiny model)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.conftest import SEED_SPEC

EXAMPLES = [
    {"input": "How do I cancel?", "output": "Go to Settings > Billing and choose Cancel plan."},
    {
        "input": "How do I reset my password?",
        "output": "Go to Settings > Security and choose Reset password.",
    },
    {"input": "Where can I see invoices?", "output": "Open Billing > Invoices from the dashboard."},
    {"input": "How do I add a teammate?", "output": "Go to Settings > Team and choose Invite member."},
    {"input": "Can I change my plan?", "output": "Go to Settings > Billing and choose Change plan."},
    {"input": "How do I update my card?", "output": "Go to Settings > Billing and choose Update card."},
    {"input": "Where do I find my API key?", "output": "Go to Settings > API keys and choose Create key."},
    {"input": "How do I delete my account?", "output": "Go to Settings > Account and choose Delete account."},
    {"input": "How do I export my data?", "output": "Go to Settings > Account and choose Export data."},
    {"input": "How do I change my email?", "output": "Go to Settings > Profile and choose Change email."},
    {"input": "How do I turn on 2FA?", "output": "Go to Settings > Security and choose Two-factor."},
    {"input": "How do I rename my team?", "output": "Go to Settings > Team and choose Rename team."},
]
TINY_SPEC = {**SEED_SPEC, "base_model": "tiny-chat", "examples": EXAMPLES}
FAST = {"hyperparameters": {"n_epochs": 1, "max_output_tokens": 8, "eval_reserved_output_tokens": 4}}


def create_spec(client: Any, body: dict[str, Any] | None = None) -> str:
    response = client.post("/behavior-specs", body or TINY_SPEC)
    assert response.status == 201, response.json()
    return str(response.json()["data"]["id"])


def wait_for(client: Any, run_id: str, statuses: tuple[str, ...], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()["data"]
        if run["status"] in statuses:
            return dict(run)
        time.sleep(0.5)
    raise AssertionError(
        f"run {run_id} is still {run['status']} ({run['current_stage']}): {_history(run_id)}"
    )


def _history(run_id: str) -> str:
    """The execution's last events, to tell where a stuck run's workflow is."""
    import boto3

    client = boto3.client("stepfunctions", region_name="us-east-1")
    for machine in client.list_state_machines()["stateMachines"]:
        arn = machine["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{run_id}"
        try:
            events = client.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=6)["events"]
        except client.exceptions.ExecutionDoesNotExist:
            continue
        return str([{k: v for k, v in e.items() if k != "timestamp"} for e in events])[:3000]
    return "no execution"


def test_start_validates_the_body_and_its_references(client: Any, other_client: Any) -> None:
    spec_id = create_spec(client)
    cases = [
        ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"max_output_tokens": 8, "eval_reserved_output_tokens": 9}},
         "hyperparameters.eval_reserved_output_tokens"),
        ({"split_ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}}, "split_ratios"),
        ({"dataset_id": "00000000-0000-4000-8000-000000000001"}, "dataset_id"),
        ({"parent_model_id": "00000000-0000-4000-8000-000000000001"}, "parent_model_id"),
        ({"augment": True, "surprise": 1}, "surprise"),
    ]  # fmt: skip
    for body, field in cases:
        for path in (f"/behavior-specs/{spec_id}/runs", f"/behavior-specs/{spec_id}/runs/estimate"):
            response = client.post(path, body)
            assert response.status == 400, (body, response.json())
            assert response.json()["error"]["details"][0]["field"] == field
    assert other_client.post(f"/behavior-specs/{spec_id}/runs", {}).status == 404
    assert client.post("/behavior-specs/not-a-uuid/runs", {}).status == 404
    assert client.get("/runs").json()["meta"]["total"] == 0  # nothing was created


def test_estimate_creates_nothing_and_reports_local_cost(client: Any) -> None:
    spec_id = create_spec(client)
    response = client.post(f"/behavior-specs/{spec_id}/runs/estimate", {})
    assert response.status == 200
    estimate = response.json()["data"]
    assert estimate["instance_type"] == "local" and estimate["estimated_cost_usd"] == 0
    assert estimate["estimated_cost_cents"] == 0 and estimate["estimated_epochs"] == 20
    # 12 examples: 2 held out, 10 train; augmentation targets min(500, max(30, 6 × 10)) = 60 rows.
    assert estimate["estimated_rows"] == 60
    assert estimate["duration"]["basis"] == "fallback" and estimate["duration"]["sample_count"] == 0
    assert client.get("/runs").json()["meta"]["total"] == 0


def test_a_default_run_completes_with_dataset_model_and_evaluation(
    client: Any, other_client: Any, aws: dict[str, Any]
) -> None:
    spec_id = create_spec(client)
    started = client.post(f"/behavior-specs/{spec_id}/runs", {})
    assert started.status == 201, started.json()
    run = started.json()["data"]
    assert (run["status"], run["current_stage"], run["progress_pct"], run["run_number"]) == (
        "preparing", "compiling_spec", 0, 1,
    )  # fmt: skip
    assert run["hyperparameters"]["n_epochs"] == 20 and run["hyperparameters"]["augment"] is True
    assert (
        run["spec_snapshot"]["id"] == spec_id
        and run["spec_snapshot"]["base_model"] == "tunedtensor/tiny-chat"
    )

    run = wait_for(client, run["id"], ("completed", "failed", "cancelled"))
    assert run["status"] == "completed", run["error"]
    assert run["progress_pct"] == 100 and run["completed_at"] and run["error"] is None
    counts = run["row_counts"]
    # No language model here: nothing is generated (§9.4).
    assert counts == {"training": 10, "augmented": 0, "evaluation": 2, "test": 0}
    assert run["augmentation_method"] == "none"
    stages = {event["stage"] for event in run["_events"]}
    assert {"compiling_spec", "augmenting", "uploading_dataset", "training_queued", "training_running",
            "generating_predictions", "scoring", "completed"} <= stages  # fmt: skip

    summary = run["eval_summary"]
    assert summary["eval_split"] == "spec_holdout" and summary["total"] == 2
    assert summary["scoring_method"] == "similarity" and summary["judge_model"] is None
    assert summary["avg_score"] > summary["baseline_avg_score"]
    assert summary["output_diagnostics"]["candidate"]["total"] == 2
    assert len(run["_evals"]) == 2 and {row["scored_by"] for row in run["_evals"]} == {"similarity"}

    dataset = client.get(f"/datasets/{run['dataset_id']}").json()["data"]
    assert dataset["source"] == "run" and dataset["status"] == "validated" and dataset["run_id"] == run["id"]
    assert dataset["name"] == f"{TINY_SPEC['name']} - Run #1" and dataset["row_count"] == counts["training"]
    assert (
        dataset["description"]
        == f"Auto-compiled from behaviour spec. {counts['training']} examples (not augmented)."
    )

    model = client.get(f"/models/{run['model_id']}").json()["data"]
    assert model["run_id"] == run["id"] and model["base_model"] == "tunedtensor/tiny-chat"
    assert model["name"] == f"tiny-chat-ft-{run['fine_tune_job_id'][:8]}"
    assert model["description"] == f"{TINY_SPEC['name']} run #1"
    assert client.get("/models").json()["meta"]["total"] == 1

    spec = client.get(f"/behavior-specs/{spec_id}").json()["data"]
    assert spec["_run_count"] == 1 and spec["_runs"][0]["id"] == run["id"]
    assert spec["_runs"][0]["eval_summary"] == {k: summary[k] for k in ("avg_score", "pass_rate")}
    listed = client.get("/behavior-specs").json()["data"][0]
    assert listed["_latest_run_status"] == "completed" and listed["_latest_run_score"] == summary["avg_score"]

    diagnostics = client.get(f"/runs/{run['id']}/diagnostics").json()["data"]
    assert diagnostics["training"]["state"] == "completed"
    assert (
        diagnostics["training"]["curve"]["samples"]
        and diagnostics["output_diagnostics"]["candidate"]["total"] == 2
    )

    assert client.post(f"/runs/{run['id']}/cancel").status == 409  # terminal: never changes again
    summary_rows = client.get("/runs", query="view=summary").json()["data"]
    assert set(summary_rows[0]) == {
        *("id", "behavior_spec_id", "run_number", "status", "progress_pct", "eval_summary"),
        *("model_id", "started_at", "completed_at", "_spec_name"),
    }

    # §9.10: the last 3 of its 20 epochs are kept, the newest is the registered model; another account sees
    # none of it; the signed URL is for that one object; deleting the spec deletes the packages.
    checkpoints = client.get(f"/runs/{run['id']}/checkpoints").json()["data"]
    assert [(c["epoch"], c["is_registered_model"]) for c in checkpoints] == [
        (20, True),
        (19, False),
        (18, False),
    ]
    assert all(c["metrics"]["valid_loss"] is not None and c["step"] == 5 * c["epoch"] for c in checkpoints)
    assert diagnostics["training"]["curve"]["latest_valid_loss"] == checkpoints[0]["metrics"]["valid_loss"]
    download = client.get(f"/runs/{run['id']}/checkpoints/19/download").json()["data"]
    assert download["filename"] == "checkpoint-epoch-19.tar.gz"
    assert f"/runs/{run['id']}/checkpoints/epochs/checkpoint-epoch-19.tar.gz?" in download["url"]
    for path in ("checkpoints", "checkpoints/19/download"):
        refused = other_client.get(f"/runs/{run['id']}/{path}")
        assert refused.status == 404 and refused.json()["error"]["code"] == "not_found"
    for epoch in ("17", "21", "abc", "²"):
        assert client.get(f"/runs/{run['id']}/checkpoints/{epoch}/download").status == 404

    import boto3

    def packages() -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=aws["bucket"], Prefix="accounts/")
        return [o["Key"] for o in listing.get("Contents", []) if "/checkpoints/epochs/" in o["Key"]]

    assert sorted(k.rsplit("/", 1)[1] for k in packages()) == [
        f"checkpoint-epoch-{e}.tar.gz" for e in (18, 19, 20)
    ]
    assert client.delete(f"/behavior-specs/{spec_id}").status == 204
    assert packages() == []
    assert client.get(f"/runs/{run['id']}/checkpoints").status == 404


def test_idempotent_start_creates_one_run_and_the_limit_is_enforced(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_core import wiring

    monkeypatch.setenv("TT_MAX_ACTIVE_RUNS", "1")
    wiring.reset()
    spec_id = create_spec(client)
    headers = {"Idempotency-Key": "start-once"}
    first = client.post(f"/behavior-specs/{spec_id}/runs", FAST, headers=headers)
    again = client.post(f"/behavior-specs/{spec_id}/runs", FAST, headers=headers)
    assert first.status == again.status == 201 and again.header("Idempotent-Replayed") == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    limited = client.post(f"/behavior-specs/{spec_id}/runs", FAST)
    assert limited.status == 409 and limited.json()["error"]["code"] == "run_limit_reached"

    run_id = first.json()["data"]["id"]
    cancelled = client.post(f"/runs/{run_id}/cancel")
    assert cancelled.status == 200 and cancelled.json()["data"]["status"] == "cancelled"
    assert client.post(f"/runs/{run_id}/cancel").json()["error"]["code"] == "run_not_cancellable"
    time.sleep(3)  # whatever the workflow still does, a cancelled run stays cancelled
    run = client.get(f"/runs/{run_id}").json()["data"]
    assert run["status"] == "cancelled" and run["completed_at"]
    second = client.post(f"/behavior-specs/{spec_id}/runs", FAST)  # the slot is free again
    assert second.status == 201 and second.json()["data"]["run_number"] == 2  # the refused start took none
    client.post(f"/runs/{second.json()['data']['id']}/cancel")


def test_unknown_base_model_in_the_trainer_fails_the_run_with_its_reason(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_core import wiring
    from tt_core.models.behavior_specs import BehaviorSpecRecord
    from tt_local.base_models import LocalBaseModelWeights

    # Past the start's preflight (it refuses a model without weights: test_base_model_preflight.py),
    # the trainer's own reason must still reach the run.
    monkeypatch.setattr(LocalBaseModelWeights, "available", lambda self, base_model: True)

    spec_id = create_spec(client)
    # A stored spec whose base model the trainer cannot load (as if its weights were missing).
    repo = wiring.spec_service()._specs
    record = next(r for r in repo.list_page(_account(client), _page())[0] if r.id == spec_id)
    broken = BehaviorSpecRecord.model_validate({**record.model_dump(), "base_model": "acme/missing-model",
                                                "version": record.version + 1})  # fmt: skip
    assert repo.replace(broken, expected_version=record.version)
    run = client.post(f"/behavior-specs/{spec_id}/runs", FAST).json()["data"]
    run = wait_for(client, run["id"], ("completed", "failed", "cancelled"))
    assert run["status"] == "failed" and "Unknown base model" in run["error"], run["error"]
    pid = int((aws["jobs_dir"] / f"tt-{run['fine_tune_job_id']}" / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # no trainer process is left behind
        os.kill(pid, 0)
    assert run["_events"][-1]["status"] == "failed"
    assert "sagemaker" not in run["error"].lower() and "s3://" not in run["error"]


def _account(client: Any) -> str:
    from tt_core import wiring

    key = wiring.api_key_service().find_key(client.key)
    assert key is not None
    return str(key.account_id)


def _page() -> Any:
    from tt_core.models.common import PageQuery

    return PageQuery(page=1, per_page=100)


@pytest.mark.parametrize("patience", [0, 21, "2", 1.5, True])
def test_early_stopping_patience_outside_1_to_20_is_a_validation_error(client: Any, patience: Any) -> None:
    spec_id = create_spec(client)
    for path in (f"/behavior-specs/{spec_id}/runs/estimate", f"/behavior-specs/{spec_id}/runs"):
        refused = client.post(path, {"hyperparameters": {"early_stopping_patience": patience}})
        assert refused.status == 400, refused.json()
        error = refused.json()["error"]
        assert error["code"] == "validation_error"
        assert [d["field"] for d in error["details"]] == ["hyperparameters.early_stopping_patience"]
    assert client.get("/runs").json()["meta"]["total"] == 0  # nothing was started
