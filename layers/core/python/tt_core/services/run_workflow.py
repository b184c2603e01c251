"""The run workflow's steps (ARCHITECTURE.md §4): each Step Functions task calls one method here.

Every method takes the execution's state and returns it updated. A step that finds its run no longer
active changes nothing (a cancel or a failure won the race) and lets the workflow end.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from tt_core.errors import NotFoundError, RunStepError
from tt_core.language.text import normalise
from tt_core.models.datasets import DatasetRecord
from tt_core.models.runs import STAGES, EpochCheckpoint, EvalPlan, RowCounts, RunRecord
from tt_core.models.tuned_models import TunedModelRecord, model_name
from tt_core.models.workflow import RunTaskState
from tt_core.observability import count, tracer
from tt_core.ports import (
    Augmenter,
    Clock,
    DatasetRepository,
    IdGenerator,
    Judge,
    ObjectStore,
    RunRepository,
    TrainingJobSpec,
    TrainingJobStatus,
    TrainingLauncher,
    TunedModelRepository,
)
from tt_core.runs.artifacts import (
    checkpoint_prefix,
    epoch_checkpoint_key,
    evals_key,
    input_prefix,
    job_output_key,
    model_artifact_key,
    read_dataset_examples,
    run_prefix,
    training_prefix,
)
from tt_core.runs.diagnostics import training_view
from tt_core.runs.lineage import TRAIN_FILE, ancestors_training_inputs
from tt_core.runs.memory_plan import plan_for_job
from tt_core.runs.polling import next_poll_seconds
from tt_core.schema import BASE_MODELS_PREFIX, LOCAL_DEFAULT_BASE_MODEL
from tt_core.services.run_evaluation import evaluate_predictions
from tt_core.services.run_state import RunUpdater, stage_label
from tt_core.settings import Settings

if TYPE_CHECKING:
    from tt_core.runs.compiler import Example, SplitPlan

EVAL_FILE, SPEC_FILE = "eval.jsonl", "tunedtensor.json"
PRIMARY, TEST = "primary", "test"
# The run's hyperparameters the trainer takes (training_image/README.md §3); the rest are the workflow's.
TRAINER_HYPERPARAMETERS = (
    *("n_epochs", "learning_rate", "batch_size", "lora_rank", "lora_alpha", "lora_dropout"),
    *("max_seq_length", "long_examples", "max_output_tokens", "eval_reserved_output_tokens"),
)
_STAGE_ORDER = list(STAGES)
_INTERNAL = "an unexpected error occurred. Start the run again; if it fails again, contact your operator."


def early_stopping_usable(eval_overlaps_training: bool, eval_rows: int) -> bool:
    """§9.10: a validation loss shows over-fitting only on evaluation rows the model does not train on."""
    return eval_rows > 0 and not eval_overlaps_training


class RunWorkflowService:
    def __init__(
        self,
        runs: RunRepository,
        datasets: DatasetRepository,
        models: TunedModelRepository,
        objects: ObjectStore,
        launcher: TrainingLauncher,
        augmenter: Augmenter | None,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
        *,
        bucket: str,
        judge: Judge | None = None,
    ) -> None:
        self._runs = runs
        self._datasets = datasets
        self._models = models
        self._objects = objects
        self._launcher = launcher
        self._augmenter = augmenter  # None: no language model is configured, nothing is generated (§9.4)
        self._judge = judge  # None: no language model is configured, outputs are scored by similarity
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._bucket = bucket
        self._updater = RunUpdater(runs, clock, ids)

    def _stage(self, run: RunRecord, stage: str, message: str, **changes: Any) -> RunRecord | None:
        """Moves the run to `stage`: one `completed` event for the stage it leaves, one `started` event."""

        def change(current: RunRecord) -> RunRecord:
            events = []
            if current.current_stage != stage:
                events = [(current.current_stage, "completed", f"{current.stage_label} finished."),
                          (stage, "started", message)]  # fmt: skip
            return self._updater.moved(current, stage=stage, message=message, events=events, **changes)

        return self._updater.update(run.account_id, run.id, change)

    def _info(self, run: RunRecord, message: str) -> None:
        self._updater.update(
            run.account_id,
            run.id,
            lambda r: self._updater.moved(r, events=[(r.current_stage, "info", message)]),
        )

    # --- Prepare ---------------------------------------------------------------------------------
    @tracer.capture_method
    def prepare(self, state: RunTaskState) -> RunTaskState:
        from tt_core.augmentation.llm import augment_training_rows
        from tt_core.runs.compiler import (
            Example,
            eval_jsonl,
            training_jsonl,
        )
        from tt_core.specs.prompt import compose_system_prompt

        run = self._updater.load(state.account_id, state.run_id)
        if not run.active:
            return state
        snapshot, hp = run.spec_snapshot, run.hyperparameters
        system = compose_system_prompt(
            snapshot.get("system_prompt", ""), snapshot.get("guidelines", []), snapshot.get("constraints", [])
        )
        if run.uploaded_dataset_id is not None:
            dataset = self._datasets.get(run.account_id, run.uploaded_dataset_id)
            if dataset is None:
                raise RunStepError(
                    "Compiling failed: the run's dataset was deleted. Upload it again and start a new run."
                )
            examples = read_dataset_examples(self._objects, dataset.storage_path)
        else:
            examples = [Example(e["input"], e["output"]) for e in snapshot["examples"]]
        plan = self._split(run, examples)

        generated: list[Example] = []
        method = "none"
        if hp.augment:
            moved = self._stage(run, "augmenting", "Generating extra training rows from the training rows.")
            if moved is None:
                return state
            excluded = [row.input for row in (*plan.eval, *plan.test)]
            context = {k: snapshot.get(k) for k in ("system_prompt", "guidelines", "constraints")}
            generated, method, note = augment_training_rows(
                plan.train, exclude_inputs=excluded, augmenter=self._augmenter, seed=run.id, context=context
            )
            if note is not None:
                self._info(run, note)
        training_rows = [*plan.train, *generated]
        row_counts = RowCounts(
            training=len(training_rows),
            augmented=len(generated),
            evaluation=len(plan.eval),
            test=len(plan.test),
        )
        moved = self._stage(
            run, "uploading_dataset", f"Uploading {len(training_rows)} training rows.",
            augmentation_method=method, row_counts=row_counts,
        )  # fmt: skip
        if moved is None:
            return state

        train_key = input_prefix(run.account_id, run.id, "train") + TRAIN_FILE
        train_bytes = training_jsonl(training_rows, system)
        self._objects.put_bytes(train_key, train_bytes, "application/jsonl")
        evals = eval_jsonl(plan.eval, system, split=PRIMARY, id_prefix="eval")
        evals += eval_jsonl(plan.test, system, split=TEST, id_prefix="test")
        self._objects.put_bytes(
            input_prefix(run.account_id, run.id, "eval") + EVAL_FILE, evals, "application/jsonl"
        )
        spec_file = {k: v for k, v in snapshot.items() if k != "updated_at"}
        self._objects.put_bytes(
            input_prefix(run.account_id, run.id, "spec") + SPEC_FILE,
            json.dumps(spec_file, ensure_ascii=False, indent=2).encode(),
            "application/json",
        )
        dataset_id, created = run.dataset_id, None
        if run.uploaded_dataset_id is None and dataset_id is None:
            created = self._generated_dataset(run, training_rows, train_key, train_bytes, method)
            dataset_id = created.id
        eval_plan = EvalPlan.model_validate(plan, from_attributes=True)
        usable = early_stopping_usable(plan.eval_overlaps_training, len(plan.eval))
        if hp.early_stopping_patience is not None and not usable:
            self._info(
                run,
                "early_stopping_patience is ignored: the run has no evaluation rows apart from its training "
                "rows, so a validation loss would not show over-fitting. Every epoch is trained and the last "
                "one is the model.",
            )
        try:
            linked = self._updater.update(
                run.account_id,
                run.id,
                lambda r: self._updater.moved(r, progress=19, dataset_id=dataset_id, eval_plan=eval_plan),
            )
        except NotFoundError:  # the spec was deleted meanwhile: its cascade has already run
            linked = None
            self._discard_stored(run)
        if linked is None and created is not None:
            # A cancel (or the spec's deletion) won the race: the run keeps no dataset it did not have.
            self._datasets.delete(created.account_id, created.id)
        return state.model_copy(update={"poll_seconds": self._settings.poll_seconds})

    def _split(self, run: RunRecord, examples: list[Example]) -> SplitPlan:
        """§9.3: duplicates dropped, a selection stable across runs, the parent's training rows checked."""
        from dataclasses import replace

        from tt_core.errors import InvalidRequestError
        from tt_core.runs.compiler import split_run_rows

        dataset_id = run.uploaded_dataset_id
        try:
            plan = split_run_rows(
                examples,
                run.split_ratios,
                # Stable seeds, so successive runs are compared on the same rows (§10.6).
                seed=dataset_id or run.behavior_spec_id,
                max_eval=run.hyperparameters.max_eval_examples,
                max_test=run.hyperparameters.max_test_eval_examples,
            )
        except InvalidRequestError as error:  # the start checked the ratios on rows before dedup
            raise RunStepError(
                "Compiling failed: once rows with repeated inputs are dropped, the split ratios leave no "
                "training rows. Add rows or raise the train share, and start a new run."
            ) from error
        if plan.duplicates_dropped:
            what = "rows" if dataset_id else "examples"
            self._info(
                run,
                f"{plan.duplicates_dropped} {what} were dropped before splitting: each repeats an earlier "
                "one's input (compared ignoring case and spacing), so no input is both trained on and "
                "evaluated.",
            )
        if run.parent_model_id and not plan.eval_overlaps_training:
            trained = ancestors_training_inputs(
                run.account_id,
                run.parent_model_id,
                runs=self._runs,
                models=self._models,
                objects=self._objects,
            )
            if trained is None:
                self._info(
                    run,
                    "The parent model's training rows are no longer stored: the evaluation rows may include "
                    "rows it trained on, so they are counted as overlapping training.",
                )
            if trained is None or any(normalise(row.input) in trained for row in plan.eval):
                plan = replace(plan, eval_overlaps_training=True)
        return plan

    def _discard_stored(self, run: RunRecord) -> None:
        """Everything stored under a deleted run's prefix (what this step wrote after the cascade)."""
        for key in self._objects.list_keys(run_prefix(run.account_id, run.id)):
            self._objects.delete(key)

    def _generated_dataset(
        self, run: RunRecord, rows: list[Any], key: str, data: bytes, method: str
    ) -> DatasetRecord:
        """§9.4: the compiled training rows as a `source: "run"` dataset named after the run."""
        now = self._clock.now()
        augmented = "augmented" if method != "none" else "not augmented"
        dataset = DatasetRecord(
            id=self._ids.new_id(),
            account_id=run.account_id,
            name=f"{run.spec_snapshot.get('name', '')} - Run #{run.run_number}"[:255],
            description=f"Auto-compiled from behaviour spec. {len(rows)} examples ({augmented}).",
            status="validated",
            row_count=len(rows),
            file_size_bytes=len(data),
            estimated_tokens=math.ceil(sum(len(r.input) + len(r.output) for r in rows) / 4),
            duplicate_rows=len(rows) - len({(r.input, r.output) for r in rows}),
            storage_path=f"s3://{self._bucket}/{key}",
            validation_error_count=0,
            source="run",
            run_id=run.id,
            created_at=now,
            updated_at=now,
        )
        self._datasets.create(dataset)
        return dataset

    # --- StartTraining ---------------------------------------------------------------------------
    def job_spec(self, run: RunRecord) -> TrainingJobSpec:
        hp = run.hyperparameters
        hyperparameters = {name: str(getattr(hp, name)) for name in TRAINER_HYPERPARAMETERS}
        hyperparameters["base_model"] = run.base_model
        evaluated, counts = run.eval_plan, run.row_counts
        if (
            hp.early_stopping_patience is not None
            and evaluated is not None
            and counts is not None
            and early_stopping_usable(evaluated.eval_overlaps_training, counts.evaluation)
        ):
            hyperparameters["early_stopping_patience"] = str(hp.early_stopping_patience)
        profile = self._settings.training_profile(run.base_model)
        plan = plan_for_job(
            run.base_model,
            profile,
            max_seq_length=hp.max_seq_length,
            batch_size=hp.batch_size,
            lora_rank=hp.lora_rank,
            lora_dropout=hp.lora_dropout,
        )
        if plan is not None and self._settings.mode == "aws":
            # The profile's GPU decides the micro-batch and checkpointing; a local machine is not that GPU.
            hyperparameters.update(plan.trainer_hyperparameters())
        channels = {name: input_prefix(run.account_id, run.id, name) for name in ("train", "eval", "spec")}
        if self._settings.mode == "aws" and run.base_model != LOCAL_DEFAULT_BASE_MODEL:
            # The operator's staged weights; tiny-chat is built by the trainer itself, and the local
            # stack's trainer reads real base models from this machine's Hugging Face cache.
            channels["base_model"] = f"{BASE_MODELS_PREFIX}{run.base_model}/"
        if run.parent_model_id:
            parent = self._models.get(run.account_id, run.parent_model_id)
            if parent is None:
                raise RunStepError(
                    "Training could not start: the parent model was deleted. Start a new run without it."
                )
            channels["parent_model"] = parent.artifact_key
        assert run.job_name is not None
        return TrainingJobSpec(
            job_name=run.job_name,
            base_model=run.base_model,
            hyperparameters=hyperparameters,
            channels=channels,
            output_prefix=training_prefix(run.account_id, run.id),
            checkpoint_prefix=checkpoint_prefix(run.account_id, run.id),
            instance_type=profile.instance_type,
            max_runtime_seconds=int(self._settings.run_timeout_hours * 3600),
            use_spot=self._settings.training_use_spot,
        )

    @tracer.capture_method
    def start_training(self, state: RunTaskState) -> RunTaskState:
        run = self._updater.load(state.account_id, state.run_id)
        if not run.active:
            return state
        if run.job_name is None:  # a retried task reuses the job it named
            job_id = self._ids.new_id()
            named = self._updater.update(
                run.account_id,
                run.id,
                lambda r: r.model_copy(update={"fine_tune_job_id": job_id, "version": r.version + 1}),
            )
            if named is None:
                return state
            run = named
        self._launcher.start(self.job_spec(run))
        self._stage(run, "training_queued", "Waiting for a training machine.")
        return state.model_copy(update={"job_name": run.job_name})

    # --- PollTraining ----------------------------------------------------------------------------
    @tracer.capture_method
    def poll_training(self, state: RunTaskState) -> RunTaskState:
        run = self._updater.load(state.account_id, state.run_id)
        if not run.active:
            return state.model_copy(update={"training_state": "stopped"})
        now = self._clock.now()
        hours = self._settings.run_timeout_hours
        elapsed = (now - run.started_at).total_seconds()
        if elapsed > hours * 3600:
            if run.job_name:
                self._launcher.stop(run.job_name)
            raise RunStepError(f"Run timed out after {hours:g} hours.")
        status = self._launcher.describe(self.job_spec(run))
        if status.state == "failed":
            reason = status.failure_reason or "the training job failed without a reason."
            raise RunStepError(f"Training failed: {reason}")
        if status.state == "stopped":
            raise RunStepError("Training stopped before it finished. Start the run again.")
        progress = status.progress or {}
        training = training_view(
            status, n_epochs=run.hyperparameters.n_epochs, previous=run.training, now=now
        )
        skipped = int((progress.get("data") or {}).get("skipped") or 0)
        self._note_skipped(run, skipped)
        stage, pct, message = self._progress_stage(run, status.state, progress)
        if _STAGE_ORDER.index(stage) < _STAGE_ORDER.index(run.current_stage):
            stage = run.current_stage  # what the trainer says can lag behind: a run never goes back a stage
        self._stage(run, stage, message, training=training, progress=pct, **self._epochs(run, status))
        # Longer waits as the run ages: the execution's history stays bounded however long it runs.
        polls = state.polls + 1
        wait = next_poll_seconds(
            polls,
            interval_seconds=self._settings.poll_seconds,
            run_timeout_seconds=hours * 3600,
            elapsed_seconds=elapsed,
        )
        return state.model_copy(update={"training_state": status.state, "polls": polls, "poll_seconds": wait})

    def _epochs(self, run: RunRecord, status: TrainingJobStatus) -> dict[str, Any]:
        """The kept epoch checkpoints the trainer's index lists (for the run record); stored packages it no
        longer keeps are deleted (storage keeps what the trainer's sync once uploaded)."""
        index = status.epoch_index
        if index is None:
            return {}
        kept = [EpochCheckpoint.model_validate(entry) for entry in index.get("checkpoints", [])]
        files = {c.file for c in kept}
        newest = max((c.epoch for c in kept), default=0)
        prefix = epoch_checkpoint_key(run.account_id, run.id, "checkpoint-epoch-")
        for key in self._objects.list_keys(prefix):
            epoch = key[len(prefix) :].removesuffix(".tar.gz")
            # A package newer than the index read may not be listed yet: only older ones are gone for good.
            if key.rpartition("/")[2] not in files and epoch.isdigit() and int(epoch) < newest:
                self._objects.delete(key)
        selected = index.get("selected_epoch")
        return {"checkpoints": kept, "selected_epoch": selected if isinstance(selected, int) else None}

    def _note_skipped(self, run: RunRecord, skipped: int) -> None:
        if not skipped or any(e.status == "info" and "max_seq_length" in e.message for e in run.events):
            return
        rows = "1 training example" if skipped == 1 else f"{skipped} training examples"
        if run.hyperparameters.long_examples == "truncate":
            # §9.5: truncation keeps the input's start; a row that cannot fit even so is left out.
            self._info(run, f"{rows} left out: even truncated, they do not fit max_seq_length.")
        else:
            self._info(run, f"{rows} longer than max_seq_length skipped (long_examples is skip).")

    @staticmethod
    def _progress_stage(run: RunRecord, state: str, progress: dict[str, Any]) -> tuple[str, int, str]:
        n_epochs = run.hyperparameters.n_epochs
        if progress.get("status") in ("generating_predictions", "completed") or state == "completed":
            done, total = progress.get("eval_rows_done") or 0, progress.get("eval_rows_total") or 0
            pct = 85 + (9 * done // total if total else (9 if state == "completed" else 0))
            return "generating_predictions", pct, f"Generating predictions ({done} of {total} rows)."
        if state == "running" and progress.get("status") == "training":
            epoch = float(progress.get("epoch") or 0)
            pct = min(84, 25 + math.floor(60 * epoch / n_epochs))
            return (
                "training_running",
                pct,
                f"Training epoch {min(n_epochs, math.floor(epoch) + 1)} of {n_epochs}.",
            )
        if state == "running":
            return "training_running", 25, "Loading the base model."
        return "training_queued", 20, "Waiting for a training machine."

    # --- Evaluate --------------------------------------------------------------------------------
    @tracer.capture_method
    def evaluate(self, state: RunTaskState) -> RunTaskState:
        run = self._updater.load(state.account_id, state.run_id)
        if not run.active:
            return state
        moved = self._stage(run, "scoring", "Scoring base and tuned outputs.")
        if moved is None:
            return state
        judge = self._judge if run.hyperparameters.use_llm_judge else None
        if run.hyperparameters.use_llm_judge and judge is None:
            self._info(run, "No LLM judge is configured: outputs are scored by similarity.")
        previous = self._previous_completed(moved)
        assert run.job_name is not None and run.eval_plan is not None
        output_key = job_output_key(run.account_id, run.id, run.job_name, "output.tar.gz")
        context = {k: run.spec_snapshot.get(k) for k in ("system_prompt", "guidelines", "constraints")}
        results, summary = evaluate_predictions(
            self._objects, output_key, run, previous=previous, judge=judge, context=context,
            timeout_seconds=self._settings.evaluate_timeout_seconds,
        )  # fmt: skip
        fallbacks = sum(
            row["scored_by"] == "similarity_fallback"
            for split in results.values() if split for side in split.values() for row in side
        )  # fmt: skip
        if fallbacks:
            count("JudgeFallbacks", fallbacks)
            self._info(run, f"{fallbacks} output(s) could not be judged and were scored by similarity.")
        self._objects.put_bytes(
            evals_key(run.account_id, run.id), json.dumps(results).encode(), "application/json"
        )
        self._updater.update(
            run.account_id, run.id,
            lambda r: self._updater.moved(r, progress=99, eval_summary=summary.model_dump(mode="json")),
        )  # fmt: skip
        return state

    def _previous_completed(self, run: RunRecord) -> tuple[str, list[dict[str, Any]]] | None:
        """The previous completed run of the spec (highest lower run_number) and its candidate rows."""
        from tt_core.models.common import PageQuery

        runs, _ = self._runs.list_for_spec(
            run.account_id, run.behavior_spec_id, PageQuery(page=1, per_page=100)
        )
        for other in runs:
            if other.run_number < run.run_number and other.status == "completed":
                key = evals_key(run.account_id, other.id)
                if self._objects.size(key) is None:
                    return None
                return other.id, json.loads(self._objects.get_bytes(key))["primary"]["candidate"]
        return None

    # --- Finish ----------------------------------------------------------------------------------
    @tracer.capture_method
    def finish(self, state: RunTaskState) -> RunTaskState:
        run = self._updater.load(state.account_id, state.run_id)
        if not run.active:
            return state
        if run.model_id is None:  # name the model first, so a retried Finish registers the same one
            model_id = self._ids.new_id()
            named = self._updater.update(
                run.account_id, run.id,
                lambda r: r.model_copy(update={"model_id": model_id, "version": r.version + 1}),
            )  # fmt: skip
            if named is None:
                return state
            run = named
        assert run.model_id and run.job_name and run.fine_tune_job_id
        artifact = model_artifact_key(run.account_id, run.model_id)
        self._objects.copy(job_output_key(run.account_id, run.id, run.job_name, "model.tar.gz"), artifact)
        if self._models.get(run.account_id, run.model_id) is None:
            self._models.create(
                TunedModelRecord(
                    id=run.model_id,
                    account_id=run.account_id,
                    name=model_name(run.base_model, run.fine_tune_job_id),
                    provider_model_id=f"s3://{self._bucket}/{artifact}",
                    base_model=run.base_model,
                    run_id=run.id,
                    behavior_spec_id=run.behavior_spec_id,
                    fine_tune_job_id=run.fine_tune_job_id,
                    description=f"{run.spec_snapshot.get('name', '')} run #{run.run_number}",
                    created_at=self._clock.now(),
                    artifact_key=artifact,
                    lora_rank=run.hyperparameters.lora_rank,
                    lora_alpha=run.hyperparameters.lora_alpha,
                )
            )
        done = self._stage(run, "completed", f"Model {run.model_id} is registered.")
        if done is not None:
            count("RunsCompleted")
            score = (done.eval_summary or {}).get("avg_score")
            self._runs.record_score(done.account_id, done.behavior_spec_id, done.run_number, score)
            self._record_throughput(done)
        return state

    def _record_throughput(self, run: RunRecord) -> None:
        from tt_core.models.common import format_timestamp
        from tt_core.runs.estimation import rate_minutes_per_million

        data = self._objects.get_bytes(input_prefix(run.account_id, run.id, "train") + TRAIN_FILE)
        tokens = math.ceil(len(data.decode("utf-8")) / 4)
        assert run.completed_at is not None
        minutes = (run.completed_at - run.started_at).total_seconds() / 60
        rate = rate_minutes_per_million(minutes, tokens, run.hyperparameters.n_epochs)
        self._runs.add_throughput_sample(run.base_model, run.id, format_timestamp(run.completed_at), rate)

    # --- RecordFailure ---------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def record_failure(self, state: RunTaskState) -> RunTaskState:
        run = self._updater.load(state.account_id, state.run_id)
        if not run.active:
            return state
        message = self._error_message(run, state)
        failed = self._updater.fail(run.account_id, run.id, message)
        if failed is not None and failed.job_name:
            self._launcher.stop(failed.job_name)
        return state

    @staticmethod
    def _error_message(run: RunRecord, state: RunTaskState) -> str:
        """Our own step errors carry a readable sentence; anything else gets a generic one (§9.2)."""
        error = state.error
        if error is not None and error.Cause:
            try:
                cause = json.loads(error.Cause)
            except ValueError:
                cause = {}
            if isinstance(cause, dict) and cause.get("errorType") == RunStepError.__name__:
                return str(cause.get("errorMessage"))
        if error is not None and error.Error == "States.Timeout":
            return f"{stage_label(run.current_stage)} took too long and was stopped. Start the run again."
        return f"{stage_label(run.current_stage)} failed: {_INTERNAL}"
