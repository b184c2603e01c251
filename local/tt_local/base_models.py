"""BaseModelWeights on the local stack: where its trainer really finds a base model's weights.

The local trainer never downloads (tt_trainer.base_model). It reads, in this order, a copy staged for the
local stack (`tt admin stage-base-model MODEL --local DATA_DIR`: <data-dir>/base-models/<id>/, complete once
its manifest is written; the launcher hands it to the trainer as base_model_dir), the built-in tiny-chat, and
this machine's Hugging Face cache. The emulated bucket's base-models/ prefix is not among them: it is the
AWS deployment's layout, and copying gigabytes through the emulator into each job folder would buy nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tt_core.schema import BASE_MODEL_MANIFEST, LOCAL_BASE_MODELS_DIR, LOCAL_DEFAULT_BASE_MODEL


def base_models_dir(data_dir: Path) -> Path:
    return data_dir / LOCAL_BASE_MODELS_DIR


def staged_dir(base_models: Path, base_model: str) -> Path | None:
    """The complete staged copy of `base_model` under `base_models`, or None."""
    directory = base_models.joinpath(*base_model.split("/"))
    return directory if (directory / BASE_MODEL_MANIFEST).is_file() else None


def in_hub_cache(base_model: str) -> bool:
    """The trainer's own lookup of the Hugging Face cache (HF_HUB_CACHE / HF_HOME as it reads them)."""
    from tt_trainer.base_model import resolve_base_model
    from tt_trainer.errors import TrainerError

    with tempfile.TemporaryDirectory(prefix="tt-base-model-") as scratch:
        try:
            source = resolve_base_model(base_model, None, staged_dir=None, scratch=Path(scratch))
        except TrainerError:
            return False
    # A cache entry of the config alone (AutoConfig) is not a model the trainer can load.
    return (source.path / "config.json").is_file() and any(source.path.glob("*.safetensors"))


class LocalBaseModelWeights:
    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir.resolve()

    def available(self, base_model: str) -> bool:
        if base_model == LOCAL_DEFAULT_BASE_MODEL:  # built by the trainer on first use
            return True
        if staged_dir(base_models_dir(self._data_dir), base_model) is not None:
            return True
        return in_hub_cache(base_model)

    def stage_command(self, base_model: str) -> str:
        return f"tt admin stage-base-model {base_model} --local {self._data_dir}"
