"""Runs (PRODUCT.md §9): the start request, effective hyperparameters, the stored record and its views."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from tt_core.models.behavior_specs import RunSummary
from tt_core.models.common import STORABLE, Model, RequestModel, Timestamp

RunStatus = Literal["preparing", "training", "evaluating", "completed", "failed", "cancelled"]
ACTIVE_STATUSES: tuple[str, ...] = ("preparing", "training", "evaluating")
TERMINAL_STATUSES: tuple[str, ...] = ("completed", "failed", "cancelled")
LongExamples = Literal["error", "truncate", "skip"]
EventStatus = Literal["started", "completed", "failed", "cancelled", "info"]
# `eda` only so that runs stored before the offline augmenter was removed (§9.4) stay readable.
AugmentationMethod = Literal["claude", "bedrock", "eda", "none"]

# §9.2: stage → (status, label, lowest progress_pct).
STAGES: dict[str, tuple[str, str, int]] = {
    "compiling_spec": ("preparing", "Compiling spec", 0),
    "augmenting": ("preparing", "Augmenting examples", 5),
    "uploading_dataset": ("preparing", "Uploading dataset", 15),
    "training_queued": ("training", "Waiting for training capacity", 20),
    "training_running": ("training", "Training model", 25),
    "generating_predictions": ("evaluating", "Generating predictions", 85),
    "scoring": ("evaluating", "Scoring outputs", 95),
    "completed": ("completed", "Completed", 100),
    "failed": ("failed", "Failed", 0),
    "cancelled": ("cancelled", "Cancelled", 0),
}


class HyperparametersRequest(RequestModel):
    """§9.1: every field optional; limits as documented; defaults filled in per base model.

    PRODUCT.md gives no upper bound for learning_rate; 1 is one (a rate above it only diverges).
    """

    n_epochs: Annotated[int, Field(ge=1, le=20)] | None = None
    learning_rate: Annotated[float, Field(gt=0, le=1), STORABLE] | None = None
    batch_size: Annotated[int, Field(ge=1, le=4096)] | None = None
    lora_rank: Annotated[int, Field(ge=1, le=1024)] | None = None
    lora_alpha: Annotated[int, Field(ge=1, le=8192)] | None = None
    lora_dropout: Annotated[float, Field(ge=0, lt=1), STORABLE] | None = None
    max_seq_length: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    long_examples: LongExamples | None = None
    max_eval_examples: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_test_eval_examples: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    eval_reserved_output_tokens: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    early_stopping_patience: Annotated[int, Field(ge=1, le=20)] | None = None


class SplitRatios(RequestModel):
    train: Annotated[float, Field(ge=0, le=1), STORABLE]
    validation: Annotated[float, Field(ge=0, le=1), STORABLE]
    test: Annotated[float, Field(ge=0, le=1), STORABLE]

    @model_validator(mode="after")
    def _valid_split(self) -> SplitRatios:
        if self.train <= 0:
            raise ValueError("train must be greater than 0")
        if abs(self.train + self.validation + self.test - 1) > 1e-6:
            raise ValueError("train, validation and test must add up to 1")
        return self


class StartRunRequest(RequestModel):
    """The body of POST …/runs and …/runs/estimate; `{}` means every default."""

    augment: bool = True
    use_llm_judge: bool = True
    dataset_id: str | None = None
    parent_model_id: str | None = None
    split_ratios: SplitRatios | None = None
    hyperparameters: HyperparametersRequest = HyperparametersRequest()


class Hyperparameters(Model):
    """The effective values a run trains with (§9.6 `hyperparameters`)."""

    n_epochs: int
    learning_rate: float
    batch_size: int
    lora_rank: int
    lora_alpha: int
    lora_dropout: float
    max_seq_length: int
    long_examples: LongExamples
    max_eval_examples: int
    max_test_eval_examples: int
    max_output_tokens: int
    eval_reserved_output_tokens: int
    augment: bool
    use_llm_judge: bool
    early_stopping_patience: int | None = None  # §9.10; None (off) for runs stored before it existed


class RowCounts(Model):
    training: int
    augmented: int
    evaluation: int
    test: int


class RunEvent(Model):
    id: str
    stage: str
    label: str
    status: EventStatus
    message: str
    occurred_at: Timestamp


class EvalPlan(Model):
    """How the run's eval rows were chosen (§9.3), kept for the summary."""

    eval_split: str
    eval_overlaps_training: bool
    eval_examples_total: int
    eval_truncated: bool
    test_examples_total: int = 0
    test_truncated: bool = False


class Run(Model):
    """The run object as `GET /runs/:id` returns it, without the `_…` fields."""

    id: str
    behavior_spec_id: str
    run_number: int
    status: RunStatus
    current_stage: str
    stage_label: str
    progress_pct: int
    status_message: str
    spec_snapshot: dict[str, Any]
    dataset_id: str | None = None
    parent_model_id: str | None = None
    fine_tune_job_id: str | None = None
    model_id: str | None = None
    hyperparameters: Hyperparameters
    split_ratios: SplitRatios | None = None
    augmentation_method: AugmentationMethod | None = None
    row_counts: RowCounts | None = None
    eval_summary: dict[str, Any] | None = None
    error: str | None = None
    started_at: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None = None


class CheckpointMetrics(Model):
    train_loss: float | None = None
    valid_loss: float | None = None
    valid_token_accuracy: float | None = None


class _EpochFields(Model):
    epoch: int
    step: int
    created_at: str
    metrics: CheckpointMetrics


class EpochCheckpoint(_EpochFields):
    """One kept epoch as the trainer's index lists it (training_image/README.md): `file` is its package."""

    file: str


class Checkpoint(_EpochFields):
    """An item of `GET /runs/:id/checkpoints` (§9.10)."""

    is_registered_model: bool


class CheckpointDownload(Model):
    """`GET /runs/:id/checkpoints/:epoch/download`: a signed GET URL of the package, valid 15 minutes."""

    url: str
    filename: str
    expires_at: Timestamp


class RunRecord(Run):
    """The stored run: the object plus what the workflow needs to remember."""

    account_id: str
    version: int = 1
    events: list[RunEvent] = []
    base_model: str
    execution_arn: str | None = None
    eval_plan: EvalPlan | None = None
    # Diagnostics' `training` object (§9.9), kept up to date by the poll loop.
    training: dict[str, Any] | None = None
    # The trainer's kept epoch checkpoints (§9.10) as its index lists them, newest first, and early
    # stopping's choice; kept up to date by the poll loop.
    checkpoints: list[EpochCheckpoint] = []
    selected_epoch: int | None = None

    @property
    def uploaded_dataset_id(self) -> str | None:
        """The uploaded dataset a dataset run trains on; a spec run's dataset_id is the one it generated."""
        return self.dataset_id if self.split_ratios is not None else None

    @property
    def job_name(self) -> str | None:
        """The training job's name: its id, prefixed (SageMaker names start with a letter)."""
        return f"tt-{self.fine_tune_job_id}" if self.fine_tune_job_id else None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def public(self) -> Run:
        return Run.model_validate(self.model_dump(include=set(Run.model_fields)))

    def summary(self) -> RunSummary:
        scores = None
        if self.eval_summary is not None:
            scores = {k: self.eval_summary.get(k) for k in ("avg_score", "pass_rate")}
        return RunSummary(
            id=self.id,
            behavior_spec_id=self.behavior_spec_id,
            run_number=self.run_number,
            status=self.status,
            progress_pct=self.progress_pct,
            eval_summary=scores,
            model_id=self.model_id,
            started_at=self.started_at,
            completed_at=self.completed_at,
            spec_name=self.spec_snapshot.get("name", ""),
        )


class RunListItem(Run):
    """A `view=full` list row: the run without `spec_snapshot` and `_evals` (§9.7)."""

    spec_snapshot: dict[str, Any] = Field(default_factory=dict, exclude=True)
    spec_name: str = Field(serialization_alias="_spec_name")
    events: list[RunEvent] = Field(serialization_alias="_events")


class RunDetail(Run):
    spec_name: str = Field(serialization_alias="_spec_name")
    events: list[RunEvent] = Field(serialization_alias="_events")
    evals: list[dict[str, Any]] = Field(serialization_alias="_evals")


class SpecRunStats(Model):
    """What a spec shows of its runs: `_run_count`, `_latest_run_status`, `_latest_run_score`."""

    run_count: int = 0
    latest_run_status: str | None = None
    latest_run_score: float | None = None


class RunDiagnostics(Model):
    """§9.9: every object and list always present, whatever the run's state."""

    run_id: str
    status: RunStatus
    stage: str
    stage_label: str
    progress_pct: int
    status_message: str
    summary: str
    insights: list[str]
    output_diagnostics: dict[str, Any]
    training: dict[str, Any]
    generated_at: str
