"""The run-start preflight (PRODUCT.md §9.1, §2.4): a base model without weights is refused with 409
base_model_unavailable, naming the command that stages it, before anything is created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEED_SPEC
from tests.fakes import FixedClock, SequentialIds, StagedWeights
from tt_core.errors import BaseModelUnavailableError, InvalidRequestError, NotFoundError
from tt_core.models.behavior_specs import CreateBehaviorSpecRequest
from tt_core.models.common import PageQuery
from tt_core.models.runs import StartRunRequest
from tt_core.settings import Settings

LLAMA = "meta-llama/Llama-3.2-3B-Instruct"
AWS_MESSAGE = (
    f"Base model {LLAMA} is not available in this deployment: its weights have not been staged. "
    f"An operator stages them with: tt admin stage-base-model {LLAMA}"
)


class _Workflow:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, run_id: str, state: dict[str, Any]) -> str:
        self.started.append(run_id)
        return f"arn:aws:states:us-east-1:123456789012:execution:m:{run_id}"

    def stop(self, execution_arn: str, cause: str) -> None:
        return None


@pytest.fixture
def runs(aws: dict[str, Any]) -> Any:
    """A RunService over moto's table and bucket, with a fake workflow and fake staged weights."""
    import boto3

    from tt_core.adapters.dynamodb import (
        DocumentPacker,
        DynamoDatasetRepository,
        DynamoRunRepository,
        DynamoSpecRepository,
        DynamoTable,
        DynamoTunedModelRepository,
    )
    from tt_core.adapters.s3 import S3ObjectStore
    from tt_core.services.behavior_specs import SpecService
    from tt_core.services.runs import RunService

    class Harness:
        def __init__(self, settings: Settings) -> None:
            table = DynamoTable(boto3.client("dynamodb"), aws["table"])
            self.objects = S3ObjectStore(boto3.client("s3"), aws["bucket"])
            packer = DocumentPacker(self.objects)
            self.weights = StagedWeights()
            self.workflow = _Workflow()
            self.datasets = DynamoDatasetRepository(table)
            self.service = RunService(
                DynamoRunRepository(table, packer),
                DynamoSpecRepository(table, packer),
                self.datasets,
                DynamoTunedModelRepository(table),
                self.objects,
                lambda: self.workflow,
                lambda: None,  # no training here
                FixedClock(),
                SequentialIds(),
                settings,
                lambda: self.weights,
            )
            specs = SpecService(
                DynamoSpecRepository(table, packer),
                FixedClock(),
                SequentialIds(),
                default_base_model=LLAMA,
                runs=self.service,
            )
            self.spec = specs.create("acct", CreateBehaviorSpecRequest.model_validate(SEED_SPEC))

        def stored_runs(self) -> int:
            return int(self.service.list("acct", PageQuery(), "full")[1])

    return Harness


def test_start_and_estimate_refuse_unstaged_weights_and_store_nothing(runs: Any) -> None:
    harness = runs(Settings(mode="aws"))
    assert harness.spec.base_model == LLAMA
    for attempt in (harness.service.start, harness.service.estimate):
        with pytest.raises(BaseModelUnavailableError) as refused:
            attempt("acct", harness.spec.id, StartRunRequest())
        assert (refused.value.http_status, refused.value.code) == (409, "base_model_unavailable")
        assert refused.value.message == AWS_MESSAGE
    assert harness.weights.asked == [LLAMA, LLAMA]
    # Nothing was created: no run, no execution, no dataset, and no run number was drawn.
    assert harness.stored_runs() == 0 and harness.workflow.started == []
    assert harness.datasets.list_page("acct", PageQuery())[1] == 0

    harness.weights.staged.add(LLAMA)  # the operator staged them
    run = harness.service.start("acct", harness.spec.id, StartRunRequest())
    assert run.run_number == 1 and run.status == "preparing" and harness.workflow.started == [run.id]


def test_other_refusals_come_first(runs: Any) -> None:
    """404 for the spec and 400 for the body are answered before the weights are looked at (§9.1 order)."""
    harness = runs(Settings(mode="aws"))
    with pytest.raises(NotFoundError):
        harness.service.start("acct", "00000000-0000-4000-8000-00000000dead", StartRunRequest())
    missing = StartRunRequest(dataset_id="00000000-0000-4000-8000-00000000beef")
    with pytest.raises(InvalidRequestError):
        harness.service.estimate("acct", harness.spec.id, missing)
    assert harness.weights.asked == []


def test_the_local_stack_names_its_own_command(runs: Any) -> None:
    harness = runs(Settings(mode="local"))
    with pytest.raises(BaseModelUnavailableError) as refused:
        harness.service.start("acct", harness.spec.id, StartRunRequest())
    assert refused.value.message == (
        f"Base model {LLAMA} is not available on this machine: its weights are neither staged for the local "
        f"stack nor in the local Hugging Face cache. Stage them with: tt admin stage-base-model {LLAMA}"
    )


# -- the adapters --------------------------------------------------------------------------------------------


def test_aws_weights_are_the_staged_copies_with_their_manifest(aws: dict[str, Any]) -> None:
    import boto3

    from tt_core.adapters.s3 import S3ObjectStore
    from tt_core.adapters.staged_base_models import StagedBaseModelWeights

    objects = S3ObjectStore(boto3.client("s3"), aws["bucket"])
    weights = StagedBaseModelWeights(objects)
    assert weights.available("tunedtensor/tiny-chat")  # the trainer builds it
    assert not weights.available(LLAMA)
    objects.put_bytes(f"base-models/{LLAMA}/model.safetensors", b"x")
    assert not weights.available(LLAMA)  # files without the manifest: a partial copy
    objects.put_bytes(f"base-models/{LLAMA}/base_model.json", b"{}")
    assert weights.available(LLAMA)
    assert not weights.available("meta-llama/Llama-3.2-3B")  # a prefix of the id is another model
    assert weights.stage_command(LLAMA) == f"tt admin stage-base-model {LLAMA}"
    prod = StagedBaseModelWeights(objects, stage="prod")
    assert prod.stage_command(LLAMA) == f"tt admin stage-base-model {LLAMA} --stack TunedTensor-prod"


def _hub_snapshot(cache: Path, model_id: str, files: dict[str, bytes]) -> Path:
    """The Hugging Face cache layout: refs/main names the commit, snapshots/<commit>/ holds the files."""
    repo = cache / f"models--{model_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, body in files.items():
        (snapshot / name).write_bytes(body)
    return snapshot


def test_local_weights_are_where_the_local_trainer_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_local.base_models import LocalBaseModelWeights

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    data_dir = tmp_path / "data"
    weights = LocalBaseModelWeights(data_dir)
    assert weights.available("tunedtensor/tiny-chat")
    assert not weights.available(LLAMA)
    assert weights.stage_command(LLAMA) == f"tt admin stage-base-model {LLAMA} --local {data_dir.resolve()}"

    # Staged for the local stack: complete once its manifest is there.
    staged = data_dir / "base-models" / "meta-llama" / "Llama-3.2-3B-Instruct"
    staged.mkdir(parents=True)
    (staged / "config.json").write_text("{}")
    assert not weights.available(LLAMA)
    (staged / "base_model.json").write_text(json.dumps({"id": LLAMA, "revision": None}))
    assert weights.available(LLAMA)

    # In the Hugging Face cache: a config alone is not a model; with weights it is.
    qwen = "Qwen/Qwen3.5-2B"
    snapshot = _hub_snapshot(cache, qwen, {"config.json": b"{}"})
    assert not weights.available(qwen)
    (snapshot / "model.safetensors").write_bytes(b"x")
    assert weights.available(qwen)


def test_the_local_launcher_hands_a_staged_copy_to_the_trainer(tmp_path: Path) -> None:
    from tt_core.ports import TrainingJobSpec
    from tt_local.process_launcher import LocalProcessLauncher

    class NoObjects:
        def list_keys(self, prefix: str) -> list[str]:
            return []

    base_models = tmp_path / "base-models"
    staged = base_models / "meta-llama" / "Llama-3.2-3B-Instruct"
    staged.mkdir(parents=True)
    (staged / "base_model.json").write_text("{}")
    launcher = LocalProcessLauncher(NoObjects(), tmp_path / "jobs", base_models_dir=base_models)

    def laid_out(base_model: str, channels: dict[str, str]) -> dict[str, Any]:
        job = TrainingJobSpec(
            job_name=f"job-{len(channels)}-{base_model.rsplit('/', 1)[-1].replace('.', '-')}",
            base_model=base_model,
            hyperparameters={"base_model": base_model},
            channels=channels,
            output_prefix="out",
            checkpoint_prefix="ckpt",
            instance_type="local",
            max_runtime_seconds=60,
        )
        job_dir = tmp_path / "jobs" / job.job_name
        launcher._lay_out(job, job_dir)
        return dict(json.loads((job_dir / "input" / "config" / "hyperparameters.json").read_text()))

    assert laid_out(LLAMA, {})["base_model_dir"] == str(staged.resolve())
    assert "base_model_dir" not in laid_out("Qwen/Qwen3.5-2B", {})  # not staged: the Hugging Face cache
    # A job that brings its own base_model channel reads that one.
    assert "base_model_dir" not in laid_out(LLAMA, {"base_model": "base-models/x/"})


def test_the_manifest_is_the_file_the_trainer_reads_the_revision_from() -> None:
    from tt_core.schema import BASE_MODEL_MANIFEST
    from tt_trainer.base_model import BASE_MODEL_FILE

    assert BASE_MODEL_MANIFEST == BASE_MODEL_FILE
