"""LocalProcessLauncher: real trainer subprocesses on the tiny model, inputs and artifacts in (moto) S3."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import group_gone, process_gone
from tt_core.adapters.s3 import S3ObjectStore
from tt_core.ports import TrainingJobSpec, TrainingJobStatus
from tt_local.process_launcher import (
    EXIT_CODE_FILE,
    PACKAGED_FILE,
    PID_FILE,
    RESTART_REASON,
    TRAINER_LOG_FILE,
    LocalProcessLauncher,
    reap_orphans,
)

pytest.importorskip("torch")
pytest.importorskip("peft")

BUCKET = "tt-jobs-test"
OUTPUT_PREFIX = "accounts/a1/training-output"


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once here, so no trainer subprocess spends its time building tunedtensor/tiny-chat."""
    from tt_trainer.tiny import ensure_tiny_model

    configured = os.environ.get("TT_TINY_MODEL_CACHE")
    return ensure_tiny_model(
        Path(configured) if configured else tmp_path_factory.mktemp("tiny") / "tiny-chat"
    )


@pytest.fixture
def store(tiny_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3ObjectStore]:
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("TT_TINY_MODEL_CACHE", str(tiny_cache))  # the trainer subprocesses inherit it
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3ObjectStore(client, BUCKET)


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "jobs"
    reap_orphans(tmp_path / "jobs")  # a failed test leaves no trainer behind


@pytest.fixture
def launcher(store: S3ObjectStore, jobs_dir: Path) -> LocalProcessLauncher:
    return LocalProcessLauncher(store, jobs_dir)


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "You describe items."},
                {"role": "user", "content": f"Describe item {i}."},
                {"role": "assistant", "content": f"Item {i} is a red cube."},
            ]
        }
        for i in range(n)
    ]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _job(
    store: S3ObjectStore, name: str, *, base_model: str = "tunedtensor/tiny-chat", **hp: Any
) -> TrainingJobSpec:
    """Inputs in S3: the train channel is a folder prefix, eval and spec are single-object prefixes."""
    rows = _rows(8)
    store.put_bytes(f"runs/{name}/train/part-0001.jsonl", _jsonl(rows[:6]))
    eval_rows = [
        {"id": f"e{i}", "messages": r["messages"][:-1], "expected": "x"} for i, r in enumerate(rows[6:])
    ]
    store.put_bytes(f"runs/{name}/eval.jsonl", _jsonl(eval_rows))
    store.put_bytes(f"runs/{name}/tunedtensor.json", b'{"name": "Item describer"}')
    return TrainingJobSpec(
        job_name=name,
        base_model=base_model,
        hyperparameters={key: str(value) for key, value in hp.items()},
        channels={
            "train": f"runs/{name}/train/",
            "eval": f"runs/{name}/eval.jsonl",
            "spec": f"runs/{name}/tunedtensor.json",
        },
        output_prefix=OUTPUT_PREFIX,
        checkpoint_prefix=f"checkpoints/{name}",
        instance_type="local",
        max_runtime_seconds=600,
    )


def _wait(
    launcher: LocalProcessLauncher,
    job: TrainingJobSpec,
    until: Callable[[TrainingJobStatus], bool],
    seconds: float = 180.0,
) -> tuple[TrainingJobStatus, list[str]]:
    """Polls describe until `until` holds; the states seen on the way."""
    deadline = time.monotonic() + seconds
    seen: list[str] = []
    while True:
        status = launcher.describe(job)
        seen.append(status.state)
        if until(status):
            return status, seen
        if status.state in ("completed", "failed", "stopped") or time.monotonic() > deadline:
            log = (launcher._job_dir(job.job_name) / TRAINER_LOG_FILE).read_text()[-3000:]
            raise AssertionError(f"{status!r} after {seen[-5:]}\n{log}")
        time.sleep(0.1)


def _archive(store: S3ObjectStore, key: str) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes(key)), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_a_job_runs_to_completion_and_its_artifacts_land_where_sagemaker_puts_them(
    launcher: LocalProcessLauncher, store: S3ObjectStore, jobs_dir: Path
) -> None:
    job = _job(
        store,
        "tt-complete",
        max_steps=4,
        n_epochs=1,
        batch_size=2,
        logging_steps=1,
        max_output_tokens=8,
        eval_reserved_output_tokens=4,
    )
    launcher.start(job)
    job_dir = jobs_dir / "tt-complete"
    assert json.loads((job_dir / "input/config/hyperparameters.json").read_text()) == {
        "base_model": "tunedtensor/tiny-chat",
        **job.hyperparameters,
    }
    assert (job_dir / "input/data/train/part-0001.jsonl").read_bytes() == store.get_bytes(
        "runs/tt-complete/train/part-0001.jsonl"
    )
    assert (job_dir / "input/data/eval/eval.jsonl").is_file()
    assert (job_dir / "input/data/spec/tunedtensor.json").is_file()

    status, seen = _wait(launcher, job, lambda s: s.state == "completed")
    assert set(seen) <= {"queued", "running", "completed"} and seen[0] == "queued"
    assert status.progress is not None and status.progress["status"] == "completed"
    # 6 rows, 2 a step: epoch 1 ends at step 3 with its validation line and its package.
    assert [(e["event"], e["step"]) for e in status.log] == [
        ("train_step", 1), ("train_step", 2), ("train_step", 3), ("validation", 3), ("train_step", 4),
    ]  # fmt: skip
    assert all(isinstance(e["loss"], float) for e in status.log if e["event"] == "train_step")
    assert status.epoch_index is not None and [c["epoch"] for c in status.epoch_index["checkpoints"]] == [1]
    assert store.list_keys("checkpoints/tt-complete/epochs/") == [
        "checkpoints/tt-complete/epochs/checkpoint-epoch-1.tar.gz"
    ]

    base = f"{OUTPUT_PREFIX}/tt-complete/output"
    assert store.list_keys(f"{OUTPUT_PREFIX}/") == [f"{base}/model.tar.gz", f"{base}/output.tar.gz"]
    model = _archive(store, f"{base}/model.tar.gz")
    assert {"adapter_config.json", "adapter_model.safetensors", "base_model.json", "tunedtensor.json"} <= set(
        model
    )
    assert all("/" not in name for name in model)  # files at the archive root, as SageMaker packs them
    assert json.loads(model["base_model.json"])["id"] == "tunedtensor/tiny-chat"
    assert json.loads(model["tunedtensor.json"]) == {"name": "Item describer"}
    output = _archive(store, f"{base}/output.tar.gz")
    predictions = [json.loads(line) for line in output["eval_predictions.jsonl"].splitlines()]
    assert [p["id"] for p in predictions] == ["e0", "e1"]
    assert {"progress.json", "training_log.jsonl"} <= set(output)

    # Packaged once: a later describe does not upload again; starting again changes nothing.
    store.delete(f"{base}/output.tar.gz")
    pid, log_size = (job_dir / PID_FILE).read_text(), (job_dir / TRAINER_LOG_FILE).stat().st_size
    launcher.start(job)
    again = LocalProcessLauncher(store, jobs_dir).describe(job)
    assert again.state == "completed" and (job_dir / PACKAGED_FILE).exists()
    assert store.list_keys(f"{OUTPUT_PREFIX}/") == [f"{base}/model.tar.gz"]
    assert (job_dir / PID_FILE).read_text() == pid
    assert (job_dir / TRAINER_LOG_FILE).stat().st_size == log_size
    assert (job_dir / EXIT_CODE_FILE).read_text().strip() == "0"


def test_an_unknown_base_model_fails_with_the_trainers_reason(
    launcher: LocalProcessLauncher, store: S3ObjectStore, jobs_dir: Path
) -> None:
    job = _job(store, "tt-unknown", base_model="acme/no-such-model", max_steps=2)
    launcher.start(job)
    status, _ = _wait(launcher, job, lambda s: s.state == "failed", seconds=120)
    assert status.failure_reason is not None
    assert status.failure_reason.startswith("Unknown base model 'acme/no-such-model'")
    assert status.progress is not None and status.progress["status"] == "failed"
    assert group_gone(int((jobs_dir / "tt-unknown" / PID_FILE).read_text()))
    assert store.list_keys(f"{OUTPUT_PREFIX}/") == []  # nothing is packaged for a failed job


def test_stop_ends_the_whole_process_group_and_the_job_stays_stopped(
    launcher: LocalProcessLauncher, store: S3ObjectStore, jobs_dir: Path
) -> None:
    job = _job(store, "tt-stop", max_steps=100000, batch_size=2, logging_steps=1)
    launcher.start(job)
    running, seen = _wait(launcher, job, lambda s: s.state == "running" and len(s.log) >= 2)
    assert "queued" in seen
    assert running.progress is not None and running.progress["status"] == "training"
    assert running.progress["total_steps"] == 100000
    pid = int((jobs_dir / "tt-stop" / PID_FILE).read_text())

    started = time.monotonic()
    launcher.stop("tt-stop")
    assert time.monotonic() - started < 10
    status = launcher.describe(job)
    assert status.state == "stopped" and status.failure_reason is None
    assert group_gone(pid)
    assert (
        status.progress is not None and status.progress["status"] == "stopped"
    )  # the trainer's own SIGTERM path
    assert (jobs_dir / "tt-stop" / EXIT_CODE_FILE).read_text().strip() == "143"

    launcher.stop("tt-stop")  # already ended
    launcher.stop("tt-never-started")  # unknown
    assert LocalProcessLauncher(store, jobs_dir).describe(job).state == "stopped"
    assert store.list_keys(f"{OUTPUT_PREFIX}/") == []


def test_reap_orphans_kills_running_trainers_and_nothing_else(
    launcher: LocalProcessLauncher, store: S3ObjectStore, jobs_dir: Path
) -> None:
    job = _job(store, "tt-orphan", max_steps=100000)
    launcher.start(job)
    pid = int((jobs_dir / "tt-orphan" / PID_FILE).read_text())
    # A stale pid file whose pid now belongs to another program must be left alone.
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (jobs_dir / "tt-stale").mkdir()
        (jobs_dir / "tt-stale" / PID_FILE).write_text(f"{stranger.pid}\n")

        assert reap_orphans(jobs_dir) == ["tt-orphan"]
        assert group_gone(pid)
        assert stranger.poll() is None
        assert (jobs_dir / "tt-orphan" / EXIT_CODE_FILE).read_text().strip() == str(-signal.SIGKILL)
        status = launcher.describe(job)
        assert status.state == "failed" and status.failure_reason == RESTART_REASON
        assert reap_orphans(jobs_dir) == []
    finally:
        stranger.kill()
        stranger.wait()


def test_a_job_the_stack_does_not_know_has_failed(
    launcher: LocalProcessLauncher, store: S3ObjectStore
) -> None:
    status = launcher.describe(_job(store, "tt-lost"))
    assert status.state == "failed"
    assert (
        status.failure_reason is not None and "training is gone from the local stack" in status.failure_reason
    )
    assert "tt-lost" not in status.failure_reason  # the product's words: no internal job name
    with pytest.raises(ValueError):
        launcher.describe(_job(store, "tt-lost").model_copy(update={"job_name": "../escape"}))


def test_a_killed_process_its_parent_has_not_collected_yet_counts_as_gone() -> None:
    """The reap test once failed under load: the killed trainer was a zombie, which still answers
    kill(pid, 0), until the launcher's waiting thread collected it."""
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert not process_gone(child.pid) and not group_gone(child.pid)
        os.killpg(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it has ended; not collected: a zombie
        os.kill(child.pid, 0)  # what the old check asked: a zombie still "exists"
        assert process_gone(child.pid) and group_gone(child.pid)
    finally:
        child.kill()
        child.wait()
    assert process_gone(child.pid)


def test_discard_removes_what_a_finished_job_left_on_this_machine(
    launcher: LocalProcessLauncher, jobs_dir: Path
) -> None:
    # What a finished job leaves: its inputs (the user's training rows), checkpoints with optimizer state.
    job_dir = jobs_dir / "tt-finished"
    for name in ("input/data/train/train.jsonl", "checkpoints/step-2/optimizer.pt", EXIT_CODE_FILE):
        (job_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (job_dir / name).write_text("0\n")
    launcher.discard("tt-finished")
    assert not job_dir.exists()
    launcher.discard("tt-finished")  # gone already, or never started: nothing to do
    assert list(jobs_dir.iterdir()) == []


def test_a_trainer_killed_by_the_system_is_explained_with_settings_the_run_has(tmp_path: Path) -> None:
    from tt_local.process_launcher import _failure_reason

    reason = _failure_reason(tmp_path, -signal.SIGKILL)
    assert reason is not None and "SIGKILL" in reason and "max_seq_length" in reason
    assert "micro_batch_size" not in reason  # a trainer setting a run cannot set


def test_epoch_packages_reach_storage_and_one_dropped_meanwhile_is_skipped(
    launcher: LocalProcessLauncher, store: S3ObjectStore, jobs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SageMaker's checkpoint sync does, on the local stack: each package the trainer's index lists is
    put under the checkpoint prefix once. The trainer may delete one between the index read and the upload
    (a newer epoch replaced it): that poll goes on without it."""
    job = _job(store, "sync")
    folder = jobs_dir / "sync" / "checkpoints" / "epochs"
    folder.mkdir(parents=True)
    for epoch in (2, 3):
        (folder / f"checkpoint-epoch-{epoch}.tar.gz").write_bytes(b"package %d" % epoch)
    entries = [{"epoch": e, "file": f"checkpoint-epoch-{e}.tar.gz"} for e in (3, 2, 1)]  # 1: already gone
    entries.append({"epoch": 9, "file": "../../escape.tar.gz"})  # never read: not a package name
    (folder / "index.json").write_text(json.dumps({"checkpoints": entries}))
    real_read = Path.read_bytes

    def vanishing(path: Path) -> bytes:
        if path.name == "checkpoint-epoch-2.tar.gz":
            raise FileNotFoundError(path)
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", vanishing)
    index = launcher._sync_epochs(job, jobs_dir / "sync")
    assert index is not None and [e["epoch"] for e in index["checkpoints"]] == [3, 2, 1, 9]
    assert store.list_keys("checkpoints/sync/epochs/") == [
        "checkpoints/sync/epochs/checkpoint-epoch-3.tar.gz"
    ]
    assert store.get_bytes("checkpoints/sync/epochs/checkpoint-epoch-3.tar.gz") == b"package 3"
