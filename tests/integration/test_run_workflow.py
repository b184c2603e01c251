"""The run workflow's contract: the state machine that runs is the synthesized one; dataset runs;
cascades and the guards runs put on datasets and specs."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import requests

from tests.fake_training import InstantTrainer
from tests.integration.test_runs_api import EXAMPLES, FAST, TINY_SPEC, _account, create_spec, wait_for
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


def test_deleting_a_spec_stops_and_deletes_its_runs_but_keeps_uploads(
    client: Any, aws: dict[str, Any]
) -> None:
    spec_id = create_spec(client)
    run = client.post(f"/behavior-specs/{spec_id}/runs", {"hyperparameters": {"n_epochs": 20}}).json()["data"]
    wait_for(client, run["id"], ("training", "evaluating", "completed", "failed"), timeout=60)
    run = client.get(f"/runs/{run['id']}").json()["data"]
    generated = run["dataset_id"]
    job_dir = aws["jobs_dir"] / f"tt-{run['fine_tune_job_id']}"
    assert generated and job_dir.is_dir()  # training has started: the job holds a copy of the rows
    assert client.delete(f"/behavior-specs/{spec_id}").status == 204
    assert client.get(f"/runs/{run['id']}").status == 404
    assert client.get("/runs").json()["meta"]["total"] == 0
    assert client.get(f"/datasets/{generated}").status == 404
    assert not job_dir.exists()  # nor does the training job's folder (rows, spec, optimizer state) stay
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


@pytest.mark.parametrize("action", ["cancel", "delete_spec"])
def test_a_run_ended_while_prepare_uploads_leaves_no_dataset(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    from tt_core import wiring
    from tt_core.adapters.stepfunctions import StepFunctionsStarter
    from tt_core.models.workflow import RunTaskState
    from tt_core.runs.artifacts import run_prefix

    # Prepare is driven by hand, so that the cancel (or the spec's deletion) lands at a chosen point:
    # after the run entered uploading_dataset, before its dataset is created.
    monkeypatch.setattr(StepFunctionsStarter, "start", lambda self, run_id, state: f"arn:execution:{run_id}")
    monkeypatch.setattr(StepFunctionsStarter, "stop", lambda self, arn, cause: None)
    spec_id = create_spec(client)
    run = client.post(f"/behavior-specs/{spec_id}/runs", {**FAST, "augment": False}).json()["data"]
    objects = wiring._objects()
    put = objects.put_bytes

    def put_then_end_the_run(key: str, data: bytes, content_type: str) -> None:
        put(key, data, content_type)
        if key.endswith("/input/spec/tunedtensor.json"):
            path = f"/runs/{run['id']}/cancel" if action == "cancel" else f"/behavior-specs/{spec_id}"
            ended = client.post(path) if action == "cancel" else client.delete(path)
            assert ended.status in (200, 204)

    monkeypatch.setattr(objects, "put_bytes", put_then_end_the_run)
    account = _account(client)
    wiring.run_workflow_service().prepare(RunTaskState(account_id=account, run_id=run["id"]))
    assert client.get("/datasets").json()["meta"]["total"] == 0
    if action == "cancel":
        cancelled = client.get(f"/runs/{run['id']}").json()["data"]
        assert cancelled["status"] == "cancelled" and cancelled["dataset_id"] is None
    else:  # the run is gone: so is everything Prepare stored for it
        assert objects.list_keys(run_prefix(account, run["id"])) == []


class DivergingTrainer(InstantTrainer):
    """Trains one poll (having left out 2 rows that even truncated do not fit), then fails as the trainer
    does when the loss becomes NaN (tests/trainer/test_failures.py)."""

    REASON = (
        "The loss became NaN at step 2 of 4 (epoch 1): training diverged. Lower learning_rate (now 1) and "
        "start a new run."
    )
    polls = 0

    def describe(self, job: Any) -> Any:
        from tt_core.ports import TrainingJobStatus

        self.polls += 1
        if self.polls == 1:
            progress = {"status": "training", "epoch": 0.5, "data": {"skipped": 2}}
            return TrainingJobStatus(state="running", progress=progress)
        return TrainingJobStatus(state="failed", failure_reason=self.REASON, progress={"status": "failed"})


def test_a_diverged_training_fails_the_run_with_its_reason_and_registers_no_model(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from functools import cache

    from tt_core import wiring

    trainer = DivergingTrainer(wiring._objects())
    monkeypatch.setattr(wiring, "_launcher", cache(lambda: trainer))  # as install_instant_training does
    wiring.run_workflow_service.cache_clear()
    wiring.run_service.cache_clear()
    spec_id = create_spec(client)
    body = {**FAST, "augment": False, "hyperparameters": {**FAST["hyperparameters"], "learning_rate": 1.0}}
    started = client.post(f"/behavior-specs/{spec_id}/runs", body)
    assert started.status == 201, started.json()
    run = wait_for(client, started.json()["data"]["id"], ("completed", "failed", "cancelled"), timeout=60)
    assert run["status"] == "failed" and run["error"] == f"Training failed: {DivergingTrainer.REASON}"
    assert run["model_id"] is None and client.get("/models").json()["meta"]["total"] == 0
    # long_examples is truncate (the default): nothing was skipped by choice, and the event says so.
    infos = [event["message"] for event in run["_events"] if event["status"] == "info"]
    assert infos == ["2 training examples left out: even truncated, they do not fit max_seq_length."]


def test_prepare_evaluates_the_same_distinct_rows_every_run_and_flags_what_a_parent_trained_on(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from tt_core import wiring
    from tt_core.adapters.dynamodb import DynamoRunRepository, DynamoTunedModelRepository
    from tt_core.adapters.stepfunctions import StepFunctionsStarter
    from tt_core.errors import RunStepError
    from tt_core.language.text import normalise
    from tt_core.models.tuned_models import TunedModelRecord
    from tt_core.models.workflow import RunTaskState
    from tt_core.runs.artifacts import input_prefix

    # §9.3, Prepare driven by hand (no training): which rows each run trains on and evaluates.
    monkeypatch.setattr(StepFunctionsStarter, "start", lambda self, run_id, state: f"arn:execution:{run_id}")
    monkeypatch.setattr(StepFunctionsStarter, "stop", lambda self, arn, cause: None)
    account, objects = _account(client), wiring._objects()
    runs, models = (
        DynamoRunRepository(wiring._table(), wiring._packer()),
        DynamoTunedModelRepository(wiring._table()),
    )

    def inputs(run_id: str, channel: str) -> list[str]:
        data = objects.get_bytes(input_prefix(account, run_id, channel) + f"{channel}.jsonl").decode()
        lines = [json.loads(line) for line in data.splitlines()]
        return [line["messages"][-2 if channel == "train" else -1]["content"]
                for line in lines if line.get("split", "primary") == "primary"]  # fmt: skip

    def prepared(spec_id: str, **body: Any) -> tuple[Any, str]:
        """(the prepared run, the id of a model registered for it, as Finish would)."""
        started = client.post(f"/behavior-specs/{spec_id}/runs", {**FAST, "augment": False, **body})
        assert started.status == 201, started.json()
        run_id = started.json()["data"]["id"]
        wiring.run_workflow_service().prepare(RunTaskState(account_id=account, run_id=run_id))
        assert client.post(f"/runs/{run_id}/cancel").status == 200  # frees the slot; the stored rows stay
        run = runs.get(account, run_id)
        assert run is not None and run.eval_plan is not None
        model_id = f"00000000-0000-4000-8000-{run.run_number:012d}"
        models.create(TunedModelRecord(
            id=model_id, account_id=account, name=f"m{run.run_number}", provider_model_id="x",
            base_model=run.base_model, run_id=run_id, behavior_spec_id=spec_id, fine_tune_job_id="j",
            description="", created_at=datetime.now(UTC), artifact_key="k", lora_rank=16, lora_alpha=32,
        ))  # fmt: skip
        return run, model_id

    # Spec runs: an unchanged spec holds out the same examples, whatever the run.
    examples = [{"input": f"How do I change setting {i}?", "output": f"Open panel {i}."} for i in range(20)]
    spec_id = create_spec(client, {**TINY_SPEC, "examples": examples})
    first, first_model = prepared(spec_id)
    again, _ = prepared(spec_id, parent_model_id=first_model)
    assert len(inputs(first.id, "eval")) == 4 and inputs(again.id, "eval") == inputs(first.id, "eval")
    assert again.eval_plan.eval_overlaps_training is False  # the parent held out the same examples

    # Dataset runs: 100 rows, 20 of them repeating an earlier input (respaced, recased).
    rows = [{"input": f"Where is setting {i}?", "output": f"Panel {i}."} for i in range(80)]
    rows += [{"input": f"  WHERE is   setting {i}? ", "output": "Elsewhere."} for i in range(0, 80, 4)]
    dataset_id = _upload(client, rows)
    split = {"dataset_id": dataset_id, "split_ratios": {"train": 0.8, "validation": 0.2, "test": 0.0}}
    plain, _ = prepared(spec_id, **split)
    evaluated = inputs(plain.id, "eval")
    assert plain.row_counts.model_dump() == {"training": 64, "augmented": 0, "evaluation": 16, "test": 0}
    assert not {normalise(text) for text in evaluated} & {normalise(t) for t in inputs(plain.id, "train")}
    assert plain.eval_plan.eval_overlaps_training is False
    assert [e.message for e in plain.events if e.status == "info"] == [
        "20 rows were dropped before splitting: each repeats an earlier one's input (compared ignoring "
        "case and spacing), so no input is both trained on and evaluated."
    ]
    # A parent that trained on every row has seen these eval rows, and so has a grandparent's child.
    _, everything = prepared(
        spec_id, dataset_id=dataset_id, split_ratios={"train": 1.0, "validation": 0.0, "test": 0.0}
    )
    child, child_model = prepared(spec_id, **split, parent_model_id=everything)
    assert inputs(child.id, "eval") == evaluated and child.eval_plan.eval_overlaps_training is True
    grandchild, _ = prepared(spec_id, **split, parent_model_id=child_model)
    assert grandchild.eval_plan.eval_overlaps_training is True

    # The start checks the ratios on the rows as uploaded; once duplicates are dropped none may be left.
    twice = _upload(client, [{"input": "Same?", "output": "A."}, {"input": "same? ", "output": "B."}])
    halves = {"train": 0.5, "validation": 0.5, "test": 0.0}
    started = client.post(
        f"/behavior-specs/{spec_id}/runs", {**FAST, "dataset_id": twice, "split_ratios": halves}
    )
    assert started.status == 201, started.json()
    with pytest.raises(RunStepError, match="the split ratios leave no training rows"):
        wiring.run_workflow_service().prepare(
            RunTaskState(account_id=account, run_id=started.json()["data"]["id"])
        )


@pytest.mark.parametrize(("examples", "ignored"), [(4, True), (12, False)])
def test_early_stopping_is_ignored_with_an_info_event_when_the_eval_rows_are_the_training_rows(
    client: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, examples: int, ignored: bool
) -> None:
    """§9.10: under 5 examples every one is trained and evaluated, so a validation loss cannot show
    over-fitting: the run says so and the job gets no patience."""
    from tt_core import wiring
    from tt_core.adapters.stepfunctions import StepFunctionsStarter
    from tt_core.models.workflow import RunTaskState

    monkeypatch.setattr(StepFunctionsStarter, "start", lambda self, run_id, state: f"arn:execution:{run_id}")
    spec_id = create_spec(client, {**TINY_SPEC, "examples": EXAMPLES[:examples]})
    body = {"augment": False, "hyperparameters": {"early_stopping_patience": 2}}
    run = client.post(f"/behavior-specs/{spec_id}/runs", body).json()["data"]
    assert run["hyperparameters"]["early_stopping_patience"] == 2
    service = wiring.run_workflow_service()
    service.prepare(RunTaskState(account_id=_account(client), run_id=run["id"]))
    prepared = client.get(f"/runs/{run['id']}").json()["data"]
    notes = [e["message"] for e in prepared["_events"] if e["status"] == "info"]
    assert any(n.startswith("early_stopping_patience is ignored") for n in notes) is ignored
    record = wiring.run_service()._run(_account(client), run["id"])
    job = service.job_spec(record.model_copy(update={"fine_tune_job_id": "job"}))
    assert job.hyperparameters.get("early_stopping_patience") == (None if ignored else "2")
