"""The composition root: cached factories that build services from settings and adapters.

Nothing here runs at import time; tests call reset() between cases. Each factory imports its
service and adapters when first called, so a function's cold start loads only what its requests
use (the authorizer never loads datasets, the validator never loads specs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from tt_core.errors import InternalError
from tt_core.settings import Settings

if TYPE_CHECKING:
    from tt_core.adapters.dynamodb import DocumentPacker, DynamoTable
    from tt_core.ports import (
        Augmenter,
        BaseModelWeights,
        Judge,
        LanguageModel,
        ObjectStore,
        PlaygroundGenerator,
        TrainingLauncher,
    )
    from tt_core.services.api_keys import ApiKeyService
    from tt_core.services.behavior_specs import SpecService
    from tt_core.services.checkpoints import CheckpointService
    from tt_core.services.datasets import DatasetService
    from tt_core.services.execution_ended import ExecutionEndedService
    from tt_core.services.idempotency import IdempotencyService
    from tt_core.services.playground import PlaygroundService
    from tt_core.services.run_workflow import RunWorkflowService
    from tt_core.services.runs import RunService
    from tt_core.services.tuned_models import TunedModelService


@cache
def settings() -> Settings:
    return Settings.from_env()


@dataclass(frozen=True)
class LocalAdapters:
    """What the local stack installs for `mode == "local"`: factories of its own adapters.

    The local stack is another runtime: it registers these through `install_local_adapters` and is
    never imported from here, so the Lambda layer ships none of its code."""

    launcher: Callable[[ObjectStore, Settings], TrainingLauncher]
    playground: Callable[[ObjectStore, Settings], PlaygroundGenerator]
    base_model_weights: Callable[[ObjectStore, Settings], BaseModelWeights]


_local_adapters: LocalAdapters | None = None


def install_local_adapters(adapters: LocalAdapters) -> None:
    """The local stack's adapters, used from now on wherever the settings say `mode == "local"`."""
    global _local_adapters
    _local_adapters = adapters
    reset()


def _local() -> LocalAdapters:
    if _local_adapters is None:
        raise InternalError("TT_MODE is local but no local stack installed its adapters (tt_local.adapters)")
    return _local_adapters


@cache
def _client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


@cache
def _presigning_s3() -> Any:
    import boto3
    from botocore.config import Config

    # SigV4 signs the headers the client must send (Content-Type, If-None-Match).
    return boto3.session.Session().client("s3", config=Config(signature_version="s3v4"))


@cache
def _table() -> DynamoTable:
    from tt_core.adapters.dynamodb import DynamoTable

    return DynamoTable(_client("dynamodb"), settings().table_name)


@cache
def _packer() -> DocumentPacker:
    from tt_core.adapters.dynamodb import DocumentPacker
    from tt_core.adapters.s3 import S3ObjectStore

    return DocumentPacker(S3ObjectStore(_client("s3"), settings().bucket_name))


@cache
def api_key_service() -> ApiKeyService:
    from tt_core.adapters.dynamodb import DynamoAccountRepository
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.api_keys import ApiKeyService

    return ApiKeyService(DynamoAccountRepository(_table()), SystemClock(), UuidGenerator())


@cache
def spec_service() -> SpecService:
    from tt_core.adapters.dynamodb import DynamoSpecRepository
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.behavior_specs import SpecService

    runs = run_service()
    return SpecService(
        DynamoSpecRepository(_table(), _packer()),
        SystemClock(),
        UuidGenerator(),
        default_base_model=settings().default_base_model,
        runs=runs,
        deletion_hooks=(runs,),
    )


@cache
def _objects() -> Any:
    from tt_core.adapters.s3 import S3ObjectStore

    return S3ObjectStore(_client("s3"), settings().bucket_name)


@cache
def _launcher() -> TrainingLauncher:
    """SageMaker on AWS; on the local stack the launcher it installed (the trainer as a subprocess)."""
    config = settings()
    if config.mode == "local":
        return _local().launcher(_objects(), config)
    import boto3

    from tt_core.adapters.sagemaker import CLIENT_CONFIG, SageMakerLauncher

    return SageMakerLauncher(
        # Its own client: the retry policy (throttling) belongs to the launcher.
        boto3.session.Session().client("sagemaker", config=CLIENT_CONFIG),
        _objects(),
        bucket=config.bucket_name,
        image_uri=config.training_image_uri,
        role_arn=config.training_role_arn,
        volume_gb=config.training_volume_gb,
    )


@cache
def _base_model_weights() -> BaseModelWeights:
    """Where training jobs find base weights: the bucket's staged copies on AWS; the local stack's own
    answer (its staged copies and this machine's Hugging Face cache) locally."""
    config = settings()
    if config.mode == "local":
        return _local().base_model_weights(_objects(), config)
    from tt_core.adapters.staged_base_models import StagedBaseModelWeights

    return StagedBaseModelWeights(_objects(), stage=config.stage)


@cache
def run_service() -> RunService:
    from tt_core.adapters.dynamodb import (
        DynamoDatasetRepository,
        DynamoRunRepository,
        DynamoSpecRepository,
        DynamoTunedModelRepository,
    )
    from tt_core.adapters.stepfunctions import StepFunctionsStarter
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.runs import RunService

    config = settings()
    return RunService(
        DynamoRunRepository(_table(), _packer()),
        DynamoSpecRepository(_table(), _packer()),
        DynamoDatasetRepository(_table()),
        DynamoTunedModelRepository(_table()),
        _objects(),
        lambda: StepFunctionsStarter(_client("stepfunctions"), config.state_machine_arn),
        _launcher,
        SystemClock(),
        UuidGenerator(),
        config,
        _base_model_weights,
    )


@cache
def run_workflow_service() -> RunWorkflowService:
    from tt_core.adapters.dynamodb import (
        DynamoDatasetRepository,
        DynamoRunRepository,
        DynamoTunedModelRepository,
    )
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.run_workflow import RunWorkflowService

    config = settings()
    augmenter, judge = _augmenter_and_judge()
    return RunWorkflowService(
        DynamoRunRepository(_table(), _packer()),
        DynamoDatasetRepository(_table()),
        DynamoTunedModelRepository(_table()),
        _objects(),
        _launcher(),
        augmenter,
        SystemClock(),
        UuidGenerator(),
        config,
        bucket=config.bucket_name,
        judge=judge,
    )


@cache
def execution_ended_service() -> ExecutionEndedService:
    from tt_core.adapters.dynamodb import DynamoRunRepository
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.execution_ended import ExecutionEndedService
    from tt_core.services.run_state import RunUpdater

    runs = DynamoRunRepository(_table(), _packer())
    return ExecutionEndedService(RunUpdater(runs, SystemClock(), UuidGenerator()), _launcher())


# Tests only (use_llm_transport): an httpx2 transport that answers instead of the language model.
_llm_transport: Any = None


def use_llm_transport(transport: Any) -> None:
    """Tests: language model clients built from now on send every request to `transport` (httpx2)."""
    global _llm_transport
    _llm_transport = transport
    language_model.cache_clear()
    run_workflow_service.cache_clear()


@cache
def language_model() -> LanguageModel | None:
    """Claude on the Anthropic API or on Bedrock, as the settings say (§9.4 order); None: offline."""
    from tt_core.adapters.anthropic_llm import language_model_for

    return language_model_for(settings(), transport=_llm_transport)


def _augmenter_and_judge() -> tuple[Augmenter | None, Judge | None]:
    """The LLM augmenter and judge when a language model is configured, else neither (§9.4, §10.2)."""
    llm = language_model()
    if llm is None:
        return None, None
    from tt_core.adapters.anthropic_llm import model_ids
    from tt_core.augmentation.llm import TIME_BUDGET_SHARE, LlmAugmenter
    from tt_core.evaluation.judge import LlmJudge

    config = settings()
    augmentation_model, judge_model = model_ids(config)
    budget = config.prepare_timeout_seconds * TIME_BUDGET_SHARE
    return LlmAugmenter(llm, model=augmentation_model, time_budget_seconds=budget), LlmJudge(
        llm, model=judge_model
    )


@cache
def checkpoint_service() -> CheckpointService:
    from tt_core.adapters.dynamodb import DynamoRunRepository
    from tt_core.adapters.s3 import S3DownloadSigner
    from tt_core.adapters.system import SystemClock
    from tt_core.services.checkpoints import CheckpointService

    return CheckpointService(
        DynamoRunRepository(_table(), _packer()),
        _objects(),
        S3DownloadSigner(_presigning_s3(), settings().bucket_name),
        SystemClock(),
    )


@cache
def tuned_model_service() -> TunedModelService:
    from tt_core.adapters.dynamodb import DynamoTunedModelRepository
    from tt_core.adapters.s3 import S3DownloadSigner
    from tt_core.adapters.system import SystemClock
    from tt_core.services.tuned_models import TunedModelService

    return TunedModelService(
        DynamoTunedModelRepository(_table()),
        _objects(),
        S3DownloadSigner(_presigning_s3(), settings().bucket_name),
        run_service(),
        SystemClock(),
    )


@cache
def playground_service() -> PlaygroundService:
    """Inference only on the local stack (PRODUCT.md §12), with the runtime of `tt models serve`."""
    from tt_core.services.playground import PlaygroundService

    config = settings()
    generator = _local().playground(_objects(), config) if config.mode == "local" else None
    return PlaygroundService(tuned_model_service(), generator)


@cache
def dataset_service() -> DatasetService:
    from tt_core.adapters.dynamodb import DynamoDatasetRepository
    from tt_core.adapters.s3 import S3ObjectStore, S3UploadSigner
    from tt_core.adapters.system import SystemClock, UuidGenerator
    from tt_core.services.datasets import DatasetService

    bucket = settings().bucket_name
    return DatasetService(
        DynamoDatasetRepository(_table()),
        S3ObjectStore(_client("s3"), bucket),
        S3UploadSigner(_presigning_s3(), bucket),
        SystemClock(),
        UuidGenerator(),
        bucket=bucket,
        usage=run_service(),
    )


@cache
def idempotency_service() -> IdempotencyService:
    from tt_core.adapters.dynamodb import DynamoIdempotencyRepository
    from tt_core.adapters.system import SystemClock
    from tt_core.services.idempotency import IdempotencyService

    return IdempotencyService(DynamoIdempotencyRepository(_table(), _packer()), SystemClock())


def reset() -> None:
    """Forget every cached object, e.g. after a test changed the environment."""
    global _llm_transport
    _llm_transport = None
    language_model.cache_clear()
    factories = (settings, _client, _presigning_s3, _table, _packer, _objects, _launcher, _base_model_weights)
    services = (
        api_key_service,
        spec_service,
        dataset_service,
        idempotency_service,
        run_service,
        run_workflow_service,
        execution_ended_service,
        tuned_model_service,
        playground_service,
    )
    for factory in (*factories, *services):
        factory.cache_clear()
