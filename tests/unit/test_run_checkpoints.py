"""Epoch checkpoints in the workflow (PRODUCT.md §9.10): what a poll records and prunes, early stopping's
hyperparameter, the checkpoint list, and the curve's validation samples and over-fitting sentence."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import FixedClock, SequentialIds
from tests.unit.test_run_job_spec import NOW, _run, _service
from tests.unit.test_run_polling import _Runs
from tt_core.models.runs import EvalPlan, RowCounts, RunRecord
from tt_core.models.workflow import RunTaskState
from tt_core.ports import TrainingJobSpec, TrainingJobStatus
from tt_core.runs.artifacts import epoch_checkpoint_key
from tt_core.runs.diagnostics import MAX_SAMPLES, _thin, curve_samples, overfitting_insight
from tt_core.services.checkpoints import CheckpointService
from tt_core.services.run_workflow import RunWorkflowService
from tt_core.settings import Settings

RUN_ID = "6f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70"


class _Objects:
    def __init__(self, keys: list[str]) -> None:
        self.keys = set(keys)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.keys if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self.keys.discard(key)

    def size(self, key: str) -> int | None:
        return 1 if key in self.keys else None


class _Job:
    def __init__(self, index: dict[str, Any] | None) -> None:
        self.index = index

    def describe(self, job: TrainingJobSpec) -> TrainingJobStatus:
        return TrainingJobStatus(state="running", progress={"status": "training"}, epoch_index=self.index)


def _entry(epoch: int) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "step": 2 * epoch,
        "created_at": "2026-12-07T10:00:00.000Z",
        "metrics": {"train_loss": 1.0, "valid_loss": 2.0 - epoch / 10, "valid_token_accuracy": 0.5},
        "file": f"checkpoint-epoch-{epoch}.tar.gz",
    }


def _key(epoch: int) -> str:
    return epoch_checkpoint_key("a1", "r1", f"checkpoint-epoch-{epoch}.tar.gz")


def _poll(run: RunRecord, objects: _Objects, index: dict[str, Any] | None) -> RunRecord:
    runs, none = _Runs(run), None
    service = RunWorkflowService(
        runs, none, none, objects, _Job(index), none, FixedClock(NOW), SequentialIds(), Settings(), bucket="b"
    )  # type: ignore[arg-type]
    service.poll_training(RunTaskState(account_id="a1", run_id="r1", poll_seconds=60))
    return runs.run


def test_a_poll_records_the_kept_epochs_and_deletes_only_packages_the_trainer_dropped() -> None:
    index = {"checkpoints": [_entry(e) for e in (6, 5, 4, 2)], "selected_epoch": 2}
    # 1 and 3 were dropped; 7 is newer than the index read (written before the index): it stays.
    objects = _Objects(
        [_key(e) for e in range(1, 8)] + ["accounts/a1/runs/r1/checkpoints/progress/progress.json"]
    )
    run = _poll(_run("tunedtensor/tiny-chat"), objects, index)
    assert [c.epoch for c in run.checkpoints] == [6, 5, 4, 2] and run.selected_epoch == 2
    assert sorted(objects.keys) == sorted(
        [_key(e) for e in (2, 4, 5, 6, 7)] + ["accounts/a1/runs/r1/checkpoints/progress/progress.json"]
    )
    # No index readable this time (caught mid-sync): what the run knew stays.
    again = _poll(run, objects, None)
    assert [c.epoch for c in again.checkpoints] == [6, 5, 4, 2]


def test_the_list_marks_the_registered_epoch() -> None:
    run = _poll(_run("tunedtensor/tiny-chat"), _Objects([]), {"checkpoints": [_entry(e) for e in (5, 4, 3)]})
    none: Any = None
    service = CheckpointService(_Runs(run), none, none, FixedClock(NOW))  # type: ignore[arg-type]
    # No model yet: no epoch is the registered one.
    assert [c.is_registered_model for c in service.list("a1", RUN_ID)] == [False, False, False]
    registered = run.model_copy(update={"model_id": "m1"})
    service = CheckpointService(_Runs(registered), none, none, FixedClock(NOW))  # type: ignore[arg-type]
    assert [c.is_registered_model for c in service.list("a1", RUN_ID)] == [True, False, False]
    chosen = registered.model_copy(update={"selected_epoch": 3})
    service = CheckpointService(_Runs(chosen), none, none, FixedClock(NOW))  # type: ignore[arg-type]
    assert [c.is_registered_model for c in service.list("a1", RUN_ID)] == [False, False, True]


@pytest.mark.parametrize(
    ("overlaps", "evaluation", "passed"), [(False, 4, True), (True, 4, False), (False, 0, False)]
)
def test_early_stopping_reaches_the_trainer_only_with_held_out_rows(
    overlaps: bool, evaluation: int, passed: bool
) -> None:
    run = _run("tunedtensor/tiny-chat")
    run = run.model_copy(
        update={
            "hyperparameters": run.hyperparameters.model_copy(update={"early_stopping_patience": 2}),
            "eval_plan": EvalPlan(
                eval_split="spec_holdout",
                eval_overlaps_training=overlaps,
                eval_examples_total=evaluation,
                eval_truncated=False,
            ),
            "row_counts": RowCounts(training=10, augmented=0, evaluation=evaluation, test=0),
        }
    )
    job = _service(mode="local", run_timeout_hours=2).job_spec(run)
    assert job.hyperparameters.get("early_stopping_patience") == ("2" if passed else None)
    assert (
        "early_stopping_patience"
        not in _service(mode="local").job_spec(_run("tunedtensor/tiny-chat")).hyperparameters
    )


def _line(step: int, epoch: float, loss: float, **more: Any) -> dict[str, Any]:
    return {"event": "train_step", "step": step, "epoch": epoch, "loss": loss, "token_accuracy": 0.5, **more}


def _check(step: int, epoch: int, valid_loss: float) -> dict[str, Any]:
    return {
        "event": "validation",
        "step": step,
        "epoch": epoch,
        "valid_loss": valid_loss,
        "valid_token_accuracy": 0.4,
    }


def test_validation_lines_join_the_sample_of_their_step() -> None:
    samples = curve_samples([_line(1, 0.5, 3.0), _line(2, 1.0, 2.0), _check(2, 1, 2.5), _check(4, 2, 2.4)])
    assert [(s["epoch"], s["loss"], s["valid_loss"]) for s in samples] == [
        (0.5, 3.0, None),
        (1.0, 2.0, 2.5),
        (2, None, 2.4),  # its train_step line is missing: a sample of its own
    ]
    assert samples[1]["valid_token_accuracy"] == 0.4 and samples[0]["valid_token_accuracy"] is None


def test_thinning_keeps_every_epoch_end() -> None:
    samples = [{"loss": 1.0, "valid_loss": 2.0 if i % 50 == 49 else None} for i in range(1000)]
    thinned = _thin(samples)
    assert len(thinned) == MAX_SAMPLES
    assert sum(s["valid_loss"] is not None for s in thinned) == 20
    assert thinned[0] is samples[0] and thinned[-1] is samples[-1]


def test_the_over_fitting_sentence_needs_two_rising_epochs_while_training_loss_falls() -> None:
    def ends(valid: list[float], train: list[float]) -> list[dict[str, Any]]:
        return [
            {"epoch": float(i + 1), "loss": t, "valid_loss": v}
            for i, (v, t) in enumerate(zip(valid, train, strict=True))
        ]

    falling = [3.0, 2.0, 1.5, 1.0, 0.5, 0.2]
    assert overfitting_insight(ends([2.0, 1.8, 1.7, 1.6, 1.9, 2.2], falling)) == (
        "Validation loss rose after epoch 4: later epochs may be over-fitting; consider n_epochs=4 or "
        "early_stopping_patience."
    )
    assert overfitting_insight(ends([2.0, 1.8, 1.7, 1.6, 1.9, 1.5], falling)) is None  # rose once only
    assert (
        overfitting_insight(ends([2.0, 2.1, 2.2], [1.0, 1.2, 1.4])) is None
    )  # both rising: not over-fitting
