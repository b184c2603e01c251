"""Reading and writing `tunedtensor.json`, and turning it into an API body (PRODUCT.md §7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tt_cli.errors import CliError
from tt_core.models.base_models import UnknownBaseModelError, canonical_base_model
from tt_core.models.behavior_specs import WRITABLE_FIELDS

DEFAULT_PATH = "tunedtensor.json"
# Keys other Tuned Tensor clients write for local training (PRODUCT.md §7): allowed, never sent.
LOCAL_ONLY_KEYS = ("hyperparameters", "dataset_prebuilt")


def read_json(path: str | Path) -> Any:
    """The parsed file; a missing or unparseable file is a `cli_error`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError.local(f"{path} not found", hint="Create one with `tt init`.") from None
    except OSError as error:
        raise CliError.local(f"Cannot read {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise CliError.local(f"{path} is not valid JSON: {error}") from None


def read_object(path: str | Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise CliError.local(f"{path} must hold a JSON object")
    return data


def write_json(path: str | Path, data: Any) -> None:
    """2-space indent and a final newline, keys in the order given (PRODUCT.md §7)."""
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def canonical_or_same(model: Any) -> Any:
    """The canonical base-model id, or the value unchanged so the server reports what is wrong."""
    if not isinstance(model, str):
        return model
    try:
        return canonical_base_model(model)
    except UnknownBaseModelError:
        return model


def lintable(data: Any) -> Any:
    """The file as the checks see it: local-only keys are neither checked nor reported as unknown."""
    if not isinstance(data, dict):
        return data
    return {key: value for key, value in data.items() if key not in LOCAL_ONLY_KEYS}


def spec_body(data: dict[str, Any]) -> dict[str, Any]:
    """The writable fields only (`id` and unknown keys dropped), base_model canonicalised."""
    body = {key: data[key] for key in WRITABLE_FIELDS if key in data}
    if "base_model" in body:
        body["base_model"] = canonical_or_same(body["base_model"])
    return body


def with_id(data: dict[str, Any], spec_id: str) -> dict[str, Any]:
    """The file's object with `id` set: first when new, in place when it was already there."""
    if "id" in data:
        return {key: (spec_id if key == "id" else value) for key, value in data.items()}
    return {"id": spec_id, **data}
