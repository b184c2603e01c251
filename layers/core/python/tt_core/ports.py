"""Ports: the Protocols services depend on. Adapters implement them; tests/fakes.py fakes them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from tt_core.models.api_keys import Account, ApiKeyRecord
from tt_core.models.behavior_specs import BehaviorSpecRecord, RunSummary
from tt_core.models.common import PageQuery
from tt_core.models.datasets import DatasetRecord, ValidationReport
from tt_core.models.evaluation import JudgeVerdict
from tt_core.models.idempotency import IdempotencyRecord
from tt_core.models.playground import PlaygroundGeneration, PlaygroundTarget
from tt_core.models.runs import RunRecord, SpecRunStats
from tt_core.models.tuned_models import TunedModelRecord


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    def new_id(self) -> str: ...


class ObjectStore(Protocol):
    def put_bytes(self, key: str, body: bytes, content_type: str = ...) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def size(self, key: str) -> int | None:
        """The stored object's size in bytes, or None when there is none."""
        ...

    def iter_chunks(self, key: str, chunk_bytes: int) -> Iterator[bytes]: ...

    def clear_tags(self, key: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted."""
        ...

    def copy(self, source_key: str, target_key: str) -> None:
        """A server-side copy within the bucket."""
        ...


class UploadSigner(Protocol):
    def presign_put(self, key: str, content_type: str, expires: timedelta) -> tuple[str, dict[str, str]]:
        """A URL the client PUTs the object to, and the headers it must send with it."""
        ...


class AccountRepository(Protocol):
    def create_account(self, account: Account) -> None: ...

    def add_key(self, key: ApiKeyRecord) -> None: ...

    def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    def get_key(self, account_id: str, key_id: str) -> ApiKeyRecord | None: ...

    def list_keys(self, account_id: str, page: PageQuery) -> tuple[list[ApiKeyRecord], int]: ...

    def revoke_key(self, account_id: str, key_id: str, at: datetime) -> None:
        """Raises LastActiveKeyError when it is the account's only active key."""
        ...

    def touch_key(self, account_id: str, key_id: str, at: datetime, not_since: datetime) -> None:
        """Sets last_used_at unless it is already later than `not_since`."""
        ...


class SpecRepository(Protocol):
    def create(self, spec: BehaviorSpecRecord) -> None: ...

    def get(self, account_id: str, spec_id: str) -> BehaviorSpecRecord | None: ...

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[BehaviorSpecRecord], int]: ...

    def replace(self, spec: BehaviorSpecRecord, expected_version: int) -> bool:
        """Stores `spec` if the stored version is still `expected_version`; False if it moved on."""
        ...

    def delete(self, account_id: str, spec_id: str) -> bool: ...


class DatasetRepository(Protocol):
    def create(self, dataset: DatasetRecord) -> None: ...

    def get(self, account_id: str, dataset_id: str) -> DatasetRecord | None: ...

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[DatasetRecord], int]: ...

    def set_details(
        self, account_id: str, dataset_id: str, name: str, description: str | None, at: datetime
    ) -> None: ...

    def claim_validation(
        self, account_id: str, dataset_id: str, at: datetime, stale_before: datetime
    ) -> bool:
        """pending_upload → validating (or takes over a claim older than `stale_before`); False if taken."""
        ...

    def finish_validation(
        self, account_id: str, dataset_id: str, report: ValidationReport, claimed_at: datetime, at: datetime
    ) -> DatasetRecord | None:
        """validating → validated | invalid for the claim made at `claimed_at`; None if it was lost."""
        ...

    def release_validation(self, account_id: str, dataset_id: str, claimed_at: datetime) -> None:
        """validating → pending_upload for the claim made at `claimed_at` (validation must be retried)."""
        ...

    def delete(self, account_id: str, dataset_id: str) -> bool: ...


class IdempotencyRepository(Protocol):
    def begin(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Stores an in-progress record, or returns the live record already holding the key."""
        ...

    def complete(self, record: IdempotencyRecord, status: int, body: Any) -> None: ...

    def release(self, record: IdempotencyRecord) -> None: ...


class SpecRunViews(Protocol):
    """What a spec shows of its runs (`_run_count`, `_latest_run_*`, `_runs`)."""

    def spec_stats(self, account_id: str, spec_ids: list[str]) -> dict[str, SpecRunStats]: ...

    def spec_runs(self, account_id: str, spec_id: str) -> list[RunSummary]: ...


class DatasetUsage(Protocol):
    def dataset_in_use(self, account_id: str, dataset_id: str) -> bool:
        """An active run trains on the dataset (or generated it)."""
        ...


class SpecDeletionHook(Protocol):
    """Called when a spec is deleted so each resource can cascade (runs, their datasets, …)."""

    def spec_deleted(self, account_id: str, spec_id: str) -> None: ...


class WorkflowStarter(Protocol):
    """The run workflow (a Step Functions state machine on AWS and on the local stack)."""

    def start(self, run_id: str, state: dict[str, Any]) -> str:
        """Starts one execution named by the run id (exactly once); returns the execution ARN."""
        ...

    def stop(self, execution_arn: str, cause: str) -> None:
        """Stops an execution; nothing happens when it has already ended."""
        ...


class TrainingJobSpec(BaseModel):
    """What a launcher needs to start one training job of the trainer in training_image/."""

    model_config = ConfigDict(frozen=True)

    job_name: str  # `tt-<fine_tune_job_id>`: ≤ 63 characters of [A-Za-z0-9-]
    base_model: str  # canonical id
    hyperparameters: dict[str, str]  # training_image/README.md §3 names; SageMaker passes strings
    # Channel name (train, eval, parent_model, spec) → object key prefix in the bucket.
    channels: dict[str, str]
    # Artifacts land at <output_prefix>/<job_name>/output/model.tar.gz and …/output.tar.gz.
    output_prefix: str
    # Checkpoints (and the trainer's live progress under progress/) are synced here.
    checkpoint_prefix: str
    instance_type: str
    max_runtime_seconds: int
    use_spot: bool = False


class TrainingJobStatus(BaseModel):
    """A launcher's view of a job: its state plus what the trainer reported so far."""

    state: Literal["queued", "running", "completed", "failed", "stopped"]
    failure_reason: str | None = None
    # The trainer's progress.json (training_image/README.md §5), when it could be read.
    progress: dict[str, Any] | None = None
    # The trainer's train_step and validation events so far (training_log.jsonl), oldest first.
    log: list[dict[str, Any]] = []
    # The trainer's epoch index (epochs/index.json under the checkpoint prefix), when it could be read.
    epoch_index: dict[str, Any] | None = None


class TrainingLauncher(Protocol):
    def start(self, job: TrainingJobSpec) -> None:
        """Starts the job; starting a job name that already exists is not an error (task retries)."""
        ...

    def describe(self, job: TrainingJobSpec) -> TrainingJobStatus: ...

    def stop(self, job_name: str) -> None:
        """Stops the job (SIGTERM, then it is gone); nothing happens when it has already ended."""
        ...

    def discard(self, job_name: str) -> None:
        """Removes what the job keeps outside the run's stored objects, once its run is deleted (the job was
        stopped). Nothing happens for an unknown job."""
        ...


class Augmenter(Protocol):
    """Generates training rows from training rows (PRODUCT.md §9.4); behind the LanguageModel port."""

    method: str  # the run's augmentation_method when this augmenter produced the rows

    def augment(
        self, rows: list[tuple[str, str]], count: int, *, seed: str, context: dict[str, Any]
    ) -> list[tuple[str, str]]:
        """Up to `count` new (input, output) pairs from `rows`; `context`: the spec's prompt fields."""
        ...


class LanguageModelError(Exception):
    """A language model call that failed after its retries: an error status, a refusal, no usable answer.

    `retryable` is False when trying again cannot help (a refused key, a bad request). The message
    never names the provider: it may reach a run's events.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class LanguageModel(Protocol):
    """Claude behind the Anthropic API or Amazon Bedrock (PRODUCT.md §9.4, §10.2): structured answers."""

    provider: str  # `claude` | `bedrock`: the run's augmentation_method for rows it generated

    def answer(
        self,
        *,
        model: str,
        system: str,
        prompt: str,
        tool_name: str,
        schema: dict[str, Any],
        max_tokens: int,
        deterministic: bool = False,
    ) -> dict[str, Any]:
        """The JSON object the model answered for the `tool_name` schema (not yet validated).

        `deterministic`: temperature 0 (the judge). Raises LanguageModelError once the client's own
        retries (rate limits, overload, connection errors) are spent.
        """
        ...


class Judge(Protocol):
    """Scores one model output against the spec (PRODUCT.md §10.2); behind the LanguageModel port."""

    model: str  # the run's judge_model

    def judge(self, *, context: dict[str, Any], prompt: str, expected: str, actual: str) -> JudgeVerdict:
        """`context`: the spec's system_prompt, guidelines and constraints. Raises LanguageModelError."""
        ...


class RunRepository(Protocol):
    def get(self, account_id: str, run_id: str) -> RunRecord | None: ...

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[RunRecord], int]: ...

    def list_for_spec(self, account_id: str, spec_id: str, page: PageQuery) -> tuple[list[RunRecord], int]:
        """The spec's runs, highest run_number first."""
        ...

    def active_run_ids(self, account_id: str) -> set[str]: ...

    def active_runs_everywhere(self) -> list[tuple[str, str]]:
        """(account id, run id) of every active run of the deployment."""
        ...

    def spec_stats(self, account_id: str, spec_ids: list[str]) -> dict[str, SpecRunStats]: ...

    def next_run_number(self, account_id: str, spec_id: str) -> int: ...

    def create(self, run: RunRecord, max_active: int) -> bool:
        """Stores a new run if the account has fewer than `max_active` active runs; False otherwise."""
        ...

    def save(self, run: RunRecord, expected_version: int) -> bool:
        """Stores `run` if the stored version is still `expected_version`; False if it moved on."""
        ...

    def record_score(self, account_id: str, spec_id: str, run_number: int, score: float | None) -> None: ...

    def delete_spec_runs(self, account_id: str, spec_id: str) -> list[RunRecord]: ...

    def add_throughput_sample(self, base_model: str, run_id: str, at: str, rate: float) -> None: ...

    def throughput_samples(self, base_model: str | None = None) -> list[float]: ...


class TunedModelRepository(Protocol):
    def create(self, model: TunedModelRecord) -> None: ...

    def get(self, account_id: str, model_id: str) -> TunedModelRecord | None: ...

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[TunedModelRecord], int]: ...

    def detach_spec(self, account_id: str, spec_id: str) -> None: ...


class TunedModelStore(TunedModelRepository, Protocol):
    """The repository plus what deleting and the playground's inventory need."""

    def list_all(self, account_id: str) -> list[TunedModelRecord]: ...

    def delete(self, account_id: str, model_id: str) -> bool:
        """False when the model was not there."""
        ...


class DownloadSigner(Protocol):
    def presign_get(self, key: str, expires: timedelta, filename: str) -> str:
        """A URL anyone holding it can GET the object with until it expires."""
        ...


class ModelUsage(Protocol):
    def model_in_use(self, account_id: str, model_id: str) -> bool:
        """An active run continues the model (its parent_model_id)."""
        ...


class PlaygroundGenerator(Protocol):
    """Local inference with the runtime of `tt models serve` (PRODUCT.md §15)."""

    def has_weights(self, base_model: str) -> bool:
        """The base model's weights are on this machine (tiny-chat always is: it is built locally)."""
        ...

    def complete(
        self,
        target: PlaygroundTarget,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> PlaygroundGeneration:
        """Raises InvalidRequestError for a prompt the model cannot take (longer than its context).

        `stop`: the answer ends before the first of these; `seed`: repeatable sampling (PRODUCT.md §15.4)."""
        ...


class BaseModelWeights(Protocol):
    """Whether this deployment's training jobs will find a base model's weights (PRODUCT.md §9.1, §14.6)."""

    def available(self, base_model: str) -> bool:
        """A complete staged copy (or, on the local stack, the machine's Hugging Face cache) has them;
        tunedtensor/tiny-chat always is (the trainer builds it)."""
        ...

    def stage_command(self, base_model: str) -> str:
        """The operator command that stages the weights where these training jobs read them."""
        ...


class ModelInventory(Protocol):
    def list_all(self, account_id: str) -> list[TunedModelRecord]: ...
