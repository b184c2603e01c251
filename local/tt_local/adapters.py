"""The local stack's own adapters, installed into tt_core.wiring: the trainer subprocess, the playground."""

from __future__ import annotations

from pathlib import Path

from tt_core import wiring
from tt_core.ports import ObjectStore
from tt_core.settings import Settings
from tt_local.playground import LocalPlaygroundGenerator
from tt_local.process_launcher import LocalProcessLauncher

DEFAULT_JOBS_DIR = ".tt-local/jobs"


def jobs_dir(settings: Settings) -> Path:
    return Path(settings.local_jobs_dir or DEFAULT_JOBS_DIR)


def _launcher(objects: ObjectStore, settings: Settings) -> LocalProcessLauncher:
    return LocalProcessLauncher(objects, jobs_dir(settings))


def _playground(objects: ObjectStore, settings: Settings) -> LocalPlaygroundGenerator:
    return LocalPlaygroundGenerator(objects, jobs_dir(settings).parent / "playground-models")


def install() -> None:
    """From now on, wiring builds these wherever the settings say `mode == "local"`."""
    wiring.install_local_adapters(wiring.LocalAdapters(launcher=_launcher, playground=_playground))
