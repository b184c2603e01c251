"""The local stack's own adapters, installed into tt_core.wiring: the trainer subprocess, the playground and
where base weights are found."""

from __future__ import annotations

from pathlib import Path

from tt_core import wiring
from tt_core.ports import ObjectStore
from tt_core.settings import Settings
from tt_local.base_models import LocalBaseModelWeights, base_models_dir
from tt_local.playground import LocalPlaygroundGenerator
from tt_local.process_launcher import LocalProcessLauncher

DEFAULT_JOBS_DIR = ".tt-local/jobs"


def jobs_dir(settings: Settings) -> Path:
    return Path(settings.local_jobs_dir or DEFAULT_JOBS_DIR)


def data_dir(settings: Settings) -> Path:
    """The local stack's data dir: its jobs live in <data-dir>/jobs."""
    return jobs_dir(settings).parent


def _launcher(objects: ObjectStore, settings: Settings) -> LocalProcessLauncher:
    return LocalProcessLauncher(
        objects, jobs_dir(settings), base_models_dir=base_models_dir(data_dir(settings))
    )


def _playground(objects: ObjectStore, settings: Settings) -> LocalPlaygroundGenerator:
    return LocalPlaygroundGenerator(objects, data_dir(settings) / "playground-models")


def _base_model_weights(_objects: ObjectStore, settings: Settings) -> LocalBaseModelWeights:
    return LocalBaseModelWeights(data_dir(settings))


def install() -> None:
    """From now on, wiring builds these wherever the settings say `mode == "local"`."""
    wiring.install_local_adapters(
        wiring.LocalAdapters(
            launcher=_launcher, playground=_playground, base_model_weights=_base_model_weights
        )
    )
