"""training_log.jsonl and the progress mirror in <checkpoint_dir>/progress/ (training_image/README.md §5)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tests.trainer.jobs import Job, eval_rows_from, item_rows, run_in_process
from tt_trainer.progress import PROGRESS_FILE, PROGRESS_MIRROR_DIR, TRAINING_LOG_FILE, ProgressReporter


def _step(reporter: ProgressReporter, step: int, loss: float = 1.5) -> None:
    reporter.train_step(
        step=step, total_steps=10, epoch=step / 10, loss=loss, learning_rate=2e-4, tokens_per_second=100.0
    )


def _log(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (directory / TRAINING_LOG_FILE).read_text().splitlines()]


def test_each_train_step_line_is_appended_to_the_log_and_the_mirror(tmp_path: Path) -> None:
    stream = io.StringIO()
    out, mirror = tmp_path / "out", tmp_path / "checkpoints" / "progress"
    reporter = ProgressReporter(out, stream, mirror_dir=mirror)
    reporter.update(status="starting", n_epochs=1)
    assert json.loads((mirror / PROGRESS_FILE).read_text())["status"] == "starting"
    reporter.event("data", rows=3)
    _step(reporter, 1, loss=2.0)
    _step(reporter, 2, loss=1.0)

    step_lines = [line for line in stream.getvalue().splitlines() if '"train_step"' in line]
    # The log holds the stdout lines ("event" included) with their timestamps; no other event goes there.
    logged = _log(out)
    assert [{k: v for k, v in e.items() if k != "timestamp"} for e in logged] == [
        json.loads(x) for x in step_lines
    ]
    assert all(e["timestamp"].endswith("Z") and len(e["timestamp"]) == 24 for e in logged)
    assert (mirror / TRAINING_LOG_FILE).read_text() == (out / TRAINING_LOG_FILE).read_text()
    assert [(e["event"], e["step"], e["loss"]) for e in _log(out)] == [
        ("train_step", 1, 2.0),
        ("train_step", 2, 1.0),
    ]
    progress = json.loads((out / PROGRESS_FILE).read_text())
    assert progress == json.loads((mirror / PROGRESS_FILE).read_text())
    assert progress["status"] == "training" and progress["step"] == 2 and progress["n_epochs"] == 1
    assert not [p.name for p in [*out.iterdir(), *mirror.iterdir()] if p.name.endswith(".tmp")]


def test_a_mirror_that_cannot_be_written_warns_once_and_never_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "checkpoints"
    blocker.write_text("a file where the checkpoint dir should be")
    stream = io.StringIO()
    reporter = ProgressReporter(tmp_path / "out", stream, mirror_dir=blocker / PROGRESS_MIRROR_DIR)
    reporter.update(status="starting")
    _step(reporter, 1)
    _step(reporter, 2)
    warnings = [json.loads(line) for line in stream.getvalue().splitlines() if '"warning"' in line]
    assert len(warnings) == 1 and "mirrored" in str(warnings[0]["message"])
    assert [e["step"] for e in _log(tmp_path / "out")] == [1, 2]


def test_a_resumed_job_keeps_the_earlier_steps_once(tmp_path: Path) -> None:
    mirror = tmp_path / "progress"
    first = ProgressReporter(None, io.StringIO(), mirror_dir=mirror)
    for step in (1, 2, 3, 4):
        _step(first, step)
    with (mirror / TRAINING_LOG_FILE).open("a") as log:
        log.write('{"event": "train_step", "step": 5, "tot')  # torn by a kill mid-write
    # The restarted job resumes from the checkpoint at step 2: steps 3 and 4 are trained (and logged) again.
    second = ProgressReporter(None, io.StringIO(), mirror_dir=mirror)
    _step(second, 3, loss=0.5)
    _step(second, 4, loss=0.25)
    assert [(e["step"], e["loss"]) for e in _log(mirror)] == [(1, 1.5), (2, 1.5), (3, 0.5), (4, 0.25)]


def test_a_fresh_job_in_a_reused_directory_starts_a_new_log(tmp_path: Path) -> None:
    for loss in (3.0, 2.0):
        reporter = ProgressReporter(tmp_path, io.StringIO())
        _step(reporter, 1, loss=loss)
    assert [(e["step"], e["loss"]) for e in _log(tmp_path)] == [(1, 2.0)]


def test_a_tiny_job_writes_the_training_log_and_its_mirror(tmp_path: Path) -> None:
    rows = item_rows(6)
    hp = {"max_steps": 3, "batch_size": 2, "logging_steps": 1}
    job = Job(tmp_path, hp).write(rows, eval_rows_from(rows[:1]))
    result = run_in_process(job)
    assert result.code == 0, result.stderr
    mirror = job.checkpoint_dir / PROGRESS_MIRROR_DIR
    unstamped = [{k: v for k, v in e.items() if k != "timestamp"} for e in _log(job.output_dir)]
    logged = [e for e in result.events if e["event"] in ("train_step", "validation")]
    assert unstamped == logged and _log(job.output_dir) == _log(mirror)
    assert [(e["event"], e["step"]) for e in _log(mirror)] == [
        *(("train_step", step) for step in (1, 2, 3)),
        ("validation", 3),  # 3 steps make an epoch of 6 rows, 2 a step
    ]
    progress = json.loads((mirror / PROGRESS_FILE).read_text())
    assert progress == json.loads((job.output_dir / PROGRESS_FILE).read_text())
    assert progress["status"] == "completed"
