"""The local stack's TrainingLauncher: `python -m tt_trainer` in a subprocess, on SageMaker's layout."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

from tt_core.ports import ObjectStore, TrainingJobSpec, TrainingJobStatus
from tt_core.runs.artifacts import EPOCH_INDEX_FILE, EPOCHS_FOLDER, parse_epoch_index
from tt_local.base_models import staged_dir
from tt_trainer.errors import MEMORY_REMEDY
from tt_trainer.parent_watch import STACK_PID_VARIABLE

# A job directory is SageMaker's /opt/ml tree (input/, model/, output/, checkpoints/) plus these files.
PID_FILE = "pid"  # the trainer's pid, also its process group id
EXIT_CODE_FILE = "exit_code"  # the process's return code (negative: killed by that signal)
STOP_REQUESTED_FILE = "stop_requested"
REAPED_FILE = "reaped"  # killed by reap_orphans: the stack stopped while the job ran
PACKAGED_FILE = "packaged"  # model.tar.gz and output.tar.gz are uploaded
TRAINER_LOG_FILE = "trainer.log"  # the trainer's stdout and stderr

STOP_GRACE_SECONDS = 10.0
RESTART_REASON = (
    "The local stack stopped while this training job was running, so the job was ended. Start a new run."
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_EPOCH_PACKAGE = re.compile(r"checkpoint-epoch-[0-9]{1,6}\.tar\.gz")
# Inherited variables that would point the trainer's paths away from the job directory (README §1, §3).
_PATH_VARIABLES = ("TT_SM_ROOT", "TT_HYPERPARAMETERS_FILE", "TT_CHECKPOINT_DIR", "TT_FAILURE_FILE")

# Processes started by this Python process, by job directory: every launcher instance sees them, and a
# process's own return code is better than a pid check.
_processes: dict[str, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


class LocalProcessLauncher:
    def __init__(
        self,
        objects: ObjectStore,
        jobs_dir: Path,
        *,
        python: str = sys.executable,
        base_models_dir: Path | None = None,
    ) -> None:
        self._objects = objects
        self._jobs_dir = Path(jobs_dir).resolve()
        self._python = python
        # Base weights staged for the local stack (`tt admin stage-base-model --local`), read in place.
        self._base_models_dir = Path(base_models_dir).resolve() if base_models_dir is not None else None

    def start(self, job: TrainingJobSpec) -> None:
        job_dir = self._job_dir(job.job_name)
        with _lock:
            if (job_dir / PID_FILE).exists() or (job_dir / EXIT_CODE_FILE).exists():
                return  # started before: a retried StartTraining task
            self._lay_out(job, job_dir)
            with (job_dir / TRAINER_LOG_FILE).open("ab") as log:
                process = subprocess.Popen(
                    [self._python, "-m", "tt_trainer", "train", "--sm-root", str(job_dir)],
                    cwd=job_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_trainer_environment(),
                    start_new_session=True,  # its own process group: stop and reap kill everything it spawned
                )
            _processes[str(job_dir)] = process
            _write_atomic(job_dir / PID_FILE, f"{process.pid}\n")
        threading.Thread(
            target=_record_exit_when_done, args=(process, job_dir), name=f"tt-{job.job_name}", daemon=True
        ).start()

    def describe(self, job: TrainingJobSpec) -> TrainingJobStatus:
        job_dir = self._job_dir(job.job_name)
        if not job_dir.is_dir():
            return TrainingJobStatus(
                state="failed",
                failure_reason="This run's training is gone from the local stack: the stack was restarted "
                "or its data was removed. Start a new run.",
            )
        running, code = _process_state(job_dir)
        progress = _read_progress(job_dir)
        seen = TrainingJobStatus(
            state="running",
            progress=progress,
            log=_read_log(job_dir),
            epoch_index=self._sync_epochs(job, job_dir),
        )
        if running:
            starting = progress is None or progress.get("status") == "starting"
            return seen.model_copy(update={"state": "queued" if starting else "running"})
        if code == 0:
            self._package(job, job_dir)
            return seen.model_copy(update={"state": "completed"})
        reason = None if (job_dir / STOP_REQUESTED_FILE).exists() else _failure_reason(job_dir, code)
        if reason is None:
            return seen.model_copy(update={"state": "stopped"})
        return seen.model_copy(update={"state": "failed", "failure_reason": reason})

    def _sync_epochs(self, job: TrainingJobSpec, job_dir: Path) -> dict[str, Any] | None:
        """What SageMaker's checkpoint sync does for the epoch packages: each one the index lists (it is
        written after them) is put in storage under the checkpoint prefix; returns the index."""
        folder = job_dir / "checkpoints" / EPOCHS_FOLDER
        try:
            index = parse_epoch_index((folder / EPOCH_INDEX_FILE).read_bytes())
        except OSError:
            return None
        for entry in (index or {}).get("checkpoints", []):
            name = str(entry.get("file", "")) if isinstance(entry, dict) else ""
            path = folder / name
            if not _EPOCH_PACKAGE.fullmatch(name):
                continue
            key = f"{job.checkpoint_prefix}/{EPOCHS_FOLDER}/{name}"
            try:
                if self._objects.size(key) != path.stat().st_size:
                    self._objects.put_bytes(key, path.read_bytes(), "application/gzip")
            except FileNotFoundError:
                continue  # the trainer dropped it since the index was read: a newer epoch replaced it
        return index

    def stop(self, job_name: str) -> None:
        job_dir = self._job_dir(job_name)
        if not job_dir.is_dir() or not _process_state(job_dir)[0]:
            return  # unknown or already ended
        _write_atomic(job_dir / STOP_REQUESTED_FILE, "")
        pid = _read_int(job_dir / PID_FILE)
        if pid is None:
            return
        process = _processes.get(str(job_dir))
        if process is None and not _is_trainer(pid, job_dir):
            return  # ended meanwhile, or the pid now belongs to another program: never signal a stranger
        # SIGTERM first: the trainer checkpoints and exits 143, as on SageMaker; SIGKILL whatever is left.
        _signal_group(pid, signal.SIGTERM)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_GRACE_SECONDS)
        else:
            _wait_until_gone(pid, job_dir, STOP_GRACE_SECONDS)
        _signal_group(pid, signal.SIGKILL)

    def discard(self, job_name: str) -> None:
        """Remove the job's folder: its inputs (the user's rows, the spec), checkpoints, optimizer state."""
        job_dir = self._job_dir(job_name)
        if not job_dir.is_dir():
            return
        self.stop(job_name)
        # The thread that records the exit code would recreate the folder if it wrote after the removal.
        for thread in threading.enumerate():
            if thread.name == f"tt-{job_name}" and thread is not threading.current_thread():
                thread.join(timeout=STOP_GRACE_SECONDS)
        with _lock:
            _processes.pop(str(job_dir), None)
            shutil.rmtree(job_dir, ignore_errors=True)

    def _job_dir(self, job_name: str) -> Path:
        if not _NAME.fullmatch(job_name):
            raise ValueError(f"invalid training job name {job_name!r}")
        return self._jobs_dir / job_name

    def _lay_out(self, job: TrainingJobSpec, job_dir: Path) -> None:
        """input/config/hyperparameters.json and input/data/<channel>/…, as SageMaker's File mode does."""
        input_dir = job_dir / "input"
        if input_dir.exists():  # an earlier start failed before spawning: lay out afresh
            shutil.rmtree(input_dir)
        # The trainer reads its base model from the hyperparameters; the job's base_model is the default.
        hyperparameters = {"base_model": job.base_model, **job.hyperparameters}
        staged = self._staged_base_model(job)
        if staged is not None:
            hyperparameters.setdefault("base_model_dir", str(staged))
        _write_atomic(input_dir / "config" / "hyperparameters.json", json.dumps(hyperparameters, indent=2))
        for channel, prefix in job.channels.items():
            if not _NAME.fullmatch(channel):
                raise ValueError(f"invalid channel name {channel!r}")
            channel_dir = input_dir / "data" / channel
            for key in self._objects.list_keys(prefix):
                relative = _relative_path(key, prefix)
                if relative is None:
                    continue
                target = channel_dir.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self._objects.get_bytes(key))

    def _staged_base_model(self, job: TrainingJobSpec) -> Path | None:
        """The local stack's complete staged copy of the job's base model, unless a channel brings one."""
        if self._base_models_dir is None or "base_model" in job.channels:
            return None
        return staged_dir(self._base_models_dir, job.hyperparameters.get("base_model", job.base_model))

    def _package(self, job: TrainingJobSpec, job_dir: Path) -> None:
        """Upload the artifacts once, where SageMaker puts them: <output_prefix>/<job_name>/output/."""
        with _lock:
            if (job_dir / PACKAGED_FILE).exists():
                return
            base = "/".join(part for part in (job.output_prefix.rstrip("/"), job.job_name, "output") if part)
            keys = []
            for name, source in (
                ("model.tar.gz", job_dir / "model"),
                ("output.tar.gz", job_dir / "output" / "data"),
            ):
                key = f"{base}/{name}"
                self._objects.put_bytes(key, _tar_gz(source), "application/gzip")
                keys.append(key)
            _write_atomic(job_dir / PACKAGED_FILE, json.dumps(keys) + "\n")


def reap_orphans(jobs_dir: Path) -> list[str]:
    """Kill the trainers a crashed or killed stack left running (SIGKILL to their groups); their job names."""
    jobs_dir = Path(jobs_dir).resolve()
    if not jobs_dir.is_dir():
        return []
    reaped = []
    for job_dir in sorted(path for path in jobs_dir.iterdir() if path.is_dir()):
        pid = _read_int(job_dir / PID_FILE)
        if pid is None or (job_dir / EXIT_CODE_FILE).exists() or not _is_trainer(pid, job_dir):
            continue
        _signal_group(pid, signal.SIGKILL)
        _wait_until_gone(pid, job_dir, STOP_GRACE_SECONDS)
        _write_atomic(job_dir / REAPED_FILE, "")
        _write_atomic(job_dir / EXIT_CODE_FILE, f"{-signal.SIGKILL}\n")
        reaped.append(job_dir.name)
    return reaped


def _process_state(job_dir: Path) -> tuple[bool, int | None]:
    """(running, return code); not running without a code: it ended unrecorded (the stack had stopped)."""
    if (job_dir / REAPED_FILE).exists():  # killed by reap_orphans: over, even before the kernel says so
        return False, _read_int(job_dir / EXIT_CODE_FILE)
    process = _processes.get(str(job_dir))
    if process is not None:
        code = process.poll()
        if code is None:
            return True, None
        if not (job_dir / EXIT_CODE_FILE).exists():  # the waiting thread has not recorded it yet
            _write_atomic(job_dir / EXIT_CODE_FILE, f"{code}\n")
        return False, code
    code = _read_int(job_dir / EXIT_CODE_FILE)
    if code is not None:
        return False, code
    pid = _read_int(job_dir / PID_FILE)
    if pid is None or _is_trainer(pid, job_dir):
        return True, None  # not spawned yet (start is laying out the inputs), or still running
    return False, _read_int(job_dir / EXIT_CODE_FILE)  # it may have been recorded just now


def _failure_reason(job_dir: Path, code: int | None) -> str | None:
    """Why the job failed, or None when it was stopped."""
    if code is None or (job_dir / REAPED_FILE).exists():
        return RESTART_REASON
    if code in (143, -signal.SIGTERM, -signal.SIGINT):
        return None
    if code < 0:
        # Nobody asked for a stop, so the likely killer is the kernel's out-of-memory killer.
        return (
            f"The training process was killed by {_signal_name(-code)}; the machine may have run out of "
            f"memory. {MEMORY_REMEDY}"
        )
    try:
        text = (job_dir / "output" / "failure").read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or f"The training process exited with code {code}."


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _record_exit_when_done(process: subprocess.Popen[bytes], job_dir: Path) -> None:
    code = process.wait()
    with contextlib.suppress(OSError):  # the job directory may have been removed meanwhile
        _write_atomic(job_dir / EXIT_CODE_FILE, f"{code}\n")


@functools.cache
def _usable_gpus() -> int:
    """GPUs the trainer's torch can use on this machine (asked once, in a child: torch is heavy)."""
    probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        return int(result.stdout.strip() or 0)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def _trainer_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SM_") and name not in _PATH_VARIABLES
    }
    # The trainer fails fast when the machine has a GPU its torch cannot use (on SageMaker, a broken
    # image); here the CPU build of torch is the normal install, so a local GPU it cannot use is not one.
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", SM_NUM_GPUS=str(_usable_gpus()))
    # The trainer watches this process and stops when it is gone (tt_trainer/parent_watch.py).
    env[STACK_PID_VARIABLE] = str(os.getpid())
    root = _trainer_import_root()
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


def _trainer_import_root() -> Path | None:
    """The directory holding the tt_trainer package: where it is importable here, else the repo's."""
    spec = importlib.util.find_spec("tt_trainer")
    if spec is not None and spec.origin:
        return Path(spec.origin).resolve().parent.parent
    repo_copy = Path(__file__).resolve().parents[2] / "training_image"
    return repo_copy if (repo_copy / "tt_trainer").is_dir() else None


def _relative_path(key: str, prefix: str) -> PurePosixPath | None:
    """The key's path inside its channel: relative to the prefix's folder when the prefix names no folder."""
    if prefix.endswith("/"):
        relative = key[len(prefix) :]
    elif key[len(prefix) :].startswith("/"):
        relative = key[len(prefix) + 1 :]
    else:  # the prefix is a file's key (or the start of names): keep the names under the prefix's folder
        folder = prefix.rpartition("/")[0]
        relative = key[len(folder) + 1 :] if folder else key
    if not relative or relative.endswith("/"):
        return None  # a folder marker
    path = PurePosixPath(relative)
    if any(part in ("", ".", "..") for part in path.parts) or path.is_absolute():
        raise ValueError(f"object key {key!r} cannot be laid out inside its channel")
    return path


def _tar_gz(source: Path) -> bytes:
    """The directory's files at the archive root, as SageMaker packs /opt/ml/model and /opt/ml/output/data."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file():
                    archive.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    return buffer.getvalue()


def _read_progress(job_dir: Path) -> dict[str, Any] | None:
    try:
        progress = json.loads((job_dir / "output" / "data" / "progress.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return progress if isinstance(progress, dict) else None


def _read_log(job_dir: Path) -> list[dict[str, Any]]:
    try:
        lines = (job_dir / "output" / "data" / "training_log.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the last line torn by a write in progress
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _command_line(pid: int) -> list[str]:
    """The process's arguments; empty when it is gone (or a zombie)."""
    proc = Path("/proc")
    if proc.is_dir():
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    try:  # macOS: no /proc
        result = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return result.stdout.split()


def _is_trainer(pid: int, job_dir: Path) -> bool:
    """Whether pid is this job's trainer (a pid file may outlive its process, and pids get reused)."""
    args = _command_line(pid)
    for i in range(len(args) - 1):
        if args[i] == "-m" and args[i + 1] == "tt_trainer":
            break
    else:
        return False
    if "--sm-root" not in args[:-1]:
        return False
    return Path(args[args.index("--sm-root") + 1]).name == job_dir.name


def _wait_until_gone(pid: int, job_dir: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _is_trainer(pid, job_dir) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
