"""Where a run's objects live and how they are read: inputs, training outputs, eval results."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from tt_core.ports import ObjectStore
from tt_core.schema import ACCOUNTS_PREFIX

PREDICTIONS_FILE = "eval_predictions.jsonl"  # training_image/README.md §5


def run_prefix(account_id: str, run_id: str) -> str:
    return f"{ACCOUNTS_PREFIX}{account_id}/runs/{run_id}/"


def input_prefix(account_id: str, run_id: str, channel: str) -> str:
    return f"{run_prefix(account_id, run_id)}input/{channel}/"


def training_prefix(account_id: str, run_id: str) -> str:
    return f"{run_prefix(account_id, run_id)}training"


def checkpoint_prefix(account_id: str, run_id: str) -> str:
    return f"{run_prefix(account_id, run_id)}checkpoints"


# The trainer's epoch packages and their index, in its checkpoint dir (synced under the checkpoint prefix).
EPOCHS_FOLDER = "epochs"
EPOCH_INDEX_FILE = "index.json"


def epoch_checkpoint_key(account_id: str, run_id: str, filename: str) -> str:
    return f"{checkpoint_prefix(account_id, run_id)}/{EPOCHS_FOLDER}/{filename}"


def parse_epoch_index(body: bytes | None) -> dict[str, Any] | None:
    """The trainer's epochs/index.json, or None when absent or caught mid-write."""
    if body is None:
        return None
    try:
        index = json.loads(body)
    except ValueError:
        return None
    return index if isinstance(index, dict) else None


def job_output_key(account_id: str, run_id: str, job_name: str, archive: str) -> str:
    """SageMaker's layout: <output path>/<job name>/output/{model,output}.tar.gz."""
    return f"{training_prefix(account_id, run_id)}/{job_name}/output/{archive}"


def evals_key(account_id: str, run_id: str) -> str:
    return f"{run_prefix(account_id, run_id)}evals.json"


def model_artifact_key(account_id: str, model_id: str) -> str:
    return f"{ACCOUNTS_PREFIX}{account_id}/models/{model_id}/model.tar.gz"


def key_of(uri: str) -> str:
    """`s3://bucket/key` → key."""
    return uri.split("://", 1)[-1].split("/", 1)[1]


def read_dataset_examples(objects: ObjectStore, storage_path: str) -> list[Any]:
    """An uploaded (validated) dataset's rows as Examples."""
    from tt_core.runs.compiler import Example

    rows = []
    for line in objects.get_bytes(key_of(storage_path)).decode("utf-8-sig").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append(Example(row["input"], row["output"]))
    return rows


def read_predictions(objects: ObjectStore, output_key: str) -> list[dict[str, Any]]:
    """The trainer's eval_predictions.jsonl from its output.tar.gz (empty when it made none)."""
    with tarfile.open(fileobj=io.BytesIO(objects.get_bytes(output_key)), mode="r:gz") as archive:
        member = next((m for m in archive.getmembers() if m.name.lstrip("./") == PREDICTIONS_FILE), None)
        if member is None:
            return []
        handle = archive.extractfile(member)
        assert handle is not None
        text = handle.read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
