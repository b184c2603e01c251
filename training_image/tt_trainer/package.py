"""The model artifact in SM_MODEL_DIR (PRODUCT.md §11): adapter, tokenizer, chat template, metrics, ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tt_trainer.base_model import BASE_MODEL_FILE, BaseModelSource

METRICS_FILE = "training-metrics.json"
SPEC_FILE = "tunedtensor.json"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
# from_pretrained options that describe the loading machine, not the tokenizer.
LOAD_OPTIONS = frozenset(
    {"local_files_only", "is_local", "trust_remote_code", "cache_dir", "force_download", "token", "proxies"}
    | {"subfolder", "_commit_hash", "_from_auto"}
)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def save_artifact(
    model: Any,
    tokenizer: Any,
    model_dir: Path,
    *,
    base: BaseModelSource,
    hub_revision: str | None,
    metrics: dict[str, Any],
    spec_file: Path | None,
) -> None:
    """Write every artifact file; the adapter names its base model by canonical id, never a local path."""
    model_dir.mkdir(parents=True, exist_ok=True)
    # peft's model card (README.md) names the base by where it was loaded from: make that the id too.
    base_model = model.get_base_model()
    base_model.config.name_or_path = base.id
    base_model.name_or_path = base.id
    for config in model.peft_config.values():
        config.base_model_name_or_path = base.id
        # A hub revision lets plain peft fetch exactly the base trained on; tiny-chat has none on the hub.
        config.revision = hub_revision
    # Embeddings are never trained here; "auto" would look up the base config by id just to find that out.
    model.save_pretrained(str(model_dir), save_embedding_layers=False)
    # Belt and braces: peft versions differ in what they copy into adapter_config.json.
    adapter_config_path = model_dir / ADAPTER_CONFIG
    adapter_config = json.loads(adapter_config_path.read_text())
    adapter_config["base_model_name_or_path"] = base.id
    _write_json(adapter_config_path, adapter_config)
    tokenizer.save_pretrained(str(model_dir))
    _drop_load_options(model_dir / TOKENIZER_CONFIG)
    _write_json(model_dir / METRICS_FILE, metrics)
    _write_json(model_dir / BASE_MODEL_FILE, {"id": base.id, "revision": base.revision})
    if spec_file is not None:
        shutil.copyfile(spec_file, model_dir / SPEC_FILE)


def _drop_load_options(path: Path) -> None:
    """transformers keeps how the tokenizer was loaded (local_files_only, is_local, ...) in its init kwargs
    and saves them: options of this machine that would stop whoever loads the artifact from downloading."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(config, dict) and LOAD_OPTIONS & set(config):
        _write_json(path, {k: v for k, v in config.items() if k not in LOAD_OPTIONS})


def find_spec_file(channel: Path | None) -> Path | None:
    """The run's tunedtensor.json from the optional spec channel (the file, or the .json in a directory)."""
    if channel is None:
        return None
    if channel.is_file():
        return channel
    named = channel / SPEC_FILE
    if named.is_file():
        return named
    found = sorted(channel.rglob("*.json"))
    return found[0] if found else None
