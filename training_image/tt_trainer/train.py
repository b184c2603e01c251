"""LoRA fine-tuning on transformers' Trainer: the project's own step composition, progress and resume rule.

Trainer (with accelerate) runs the loop, the schedule, mixed precision, clipping, the optimizer, checkpoint
save/resume/rotation and distributed data parallel. Kept here is what is ours: an optimizer step is a batch of
rows packed into as many micro-batches as packing makes (a number Trainer's fixed gradient accumulation cannot
express), its loss normalised by the step's label tokens across all processes; progress as a callback; and a
checkpoint is resumed only by a job with the same data and settings (its fingerprint).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import random
import resource
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tt_trainer import checkpoints, epochs
from tt_trainer.config import Hyperparameters
from tt_trainer.data import IGNORE_INDEX, MicroBatch, TokenizedRow, epoch_order, micro_batches
from tt_trainer.errors import ParentModelError, TrainingDivergedError, TrainingStoppedError
from tt_trainer.loss import head_options, linear_cross_entropy
from tt_trainer.progress import ProgressReporter


@dataclass(frozen=True)
class Precision:
    device: torch.device
    load_dtype: torch.dtype  # the frozen base weights
    amp_dtype: torch.dtype | None  # autocast compute dtype; None = full precision

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")  # type: ignore[arg-type]


def pick_precision(setting: str, device: torch.device | None = None) -> Precision:
    """bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU (or what the setting forces)."""
    if device is None:  # under torchrun, each process has its own GPU
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if setting == "fp32" or (setting == "auto" and device.type != "cuda"):
        return Precision(device, torch.float32, None)
    # Emulated bf16 (T4, V100) runs far slower than fp16: only native support counts.
    if setting == "bf16" or (setting == "auto" and torch.cuda.is_bf16_supported(including_emulation=False)):
        return Precision(device, torch.bfloat16, torch.bfloat16)
    # fp16 weights with fp32 adapters under autocast; the loss is scaled (GradScaler) to avoid underflow.
    return Precision(device, torch.float16, torch.float16)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def attach_lora(
    model: Any, hp: Hyperparameters, *, parent_dir: Path | None, gradient_checkpointing: bool
) -> Any:
    """Wrap the base model with a trainable LoRA adapter on its language model's linear layers, or continue
    the parent's."""
    with warnings.catch_warnings():
        # peft 0.21 still calls transformers' renamed is_gradient_checkpointing; nothing for us to act on.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return _attach_lora(model, hp, parent_dir=parent_dir, gradient_checkpointing=gradient_checkpointing)


def _attach_lora(
    model: Any, hp: Hyperparameters, *, parent_dir: Path | None, gradient_checkpointing: bool
) -> Any:
    from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model

    from tt_trainer.architecture import lora_target_modules

    if gradient_checkpointing:
        # Non-reentrant checkpointing works with frozen inputs: no enable_input_require_grads needed.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if parent_dir is None:
        config = LoraConfig(
            r=hp.lora_rank,
            lora_alpha=hp.lora_alpha,
            lora_dropout=hp.lora_dropout,
            target_modules=lora_target_modules(model),  # the language model's layers, never its towers
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config)
    try:
        parent_config = PeftConfig.from_pretrained(str(parent_dir))
    except (OSError, ValueError) as exc:
        raise ParentModelError(f"The parent adapter's configuration cannot be read ({exc}).") from None
    if getattr(parent_config, "peft_type", None) is None or str(parent_config.peft_type) not in (
        "LORA",
        "PeftType.LORA",
    ):
        raise ParentModelError("The parent model is not a LoRA adapter, so it cannot be continued.")
    # The parent's rank and alpha define the adapter's shape; dropout is a training choice of this run.
    parent_config.lora_dropout = hp.lora_dropout
    parent_config.inference_mode = False
    try:
        return PeftModel.from_pretrained(model, str(parent_dir), config=parent_config, is_trainable=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ParentModelError(f"The parent adapter cannot be loaded onto the base model ({exc}).") from None


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def accepts_argument(model: Any, argument: str) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return argument in inspect.signature(base.forward).parameters


# Layer types whose attention mask transformers builds from position_ids, so packed rows never see each other.
# Anything else (linear attention, convolutions, state-space blocks) carries state along the sequence, from
# one packed row into the next, unless its kernels are given the row boundaries.
PACKABLE_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})
_STATEFUL_MODEL_TYPES = (
    "mamba",
    "rwkv",
    "recurrent",
    "xlstm",
    "lfm2",
    "zamba",
    "jamba",
    "bamba",
    "falcon_h1",
)


def packing_blocker(config: Any) -> str | None:
    """Why rows must not share sequences with this model, or None when packing keeps them apart.

    Qwen3.5's Gated DeltaNet layers, for instance, honour row boundaries only through cu_seq_lens in their
    CUDA kernels (their PyTorch fallback ignores them): packing there leaks one row's state into the next."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layer_types = list(getattr(text, "layer_types", None) or [])
    layer_types += list(getattr(text, "layers_block_type", None) or [])
    others = sorted({str(t) for t in layer_types} - PACKABLE_LAYER_TYPES - {"attention"})
    if others:
        return f"its {', '.join(others)} layers would carry state from one packed row into the next"
    model_type = str(getattr(text, "model_type", "") or getattr(config, "model_type", ""))
    if any(kind in model_type for kind in _STATEFUL_MODEL_TYPES):
        return f"its {model_type} layers would carry state from one packed row into the next"
    return None


def settle_packing(hp: Hyperparameters, config: Any, reporter: ProgressReporter) -> Hyperparameters:
    """The hyperparameters with packing turned off (and a warning) where the model cannot keep rows apart."""
    reason = packing_blocker(config) if hp.packing else None
    if reason is None:
        return hp
    reporter.event(
        "warning", message=f"packing is off for this base model: {reason}; rows are padded instead"
    )
    return hp.model_copy(update={"packing": False})


def uses_flash_attention(model: Any) -> bool:
    config = getattr(model, "config", None)
    return "flash" in str(getattr(config, "_attn_implementation", None) or "")


def model_inputs(batch: MicroBatch, *, boundaries: bool = False) -> dict[str, Any]:
    """Forward arguments of a micro-batch; boundaries: pass packed rows' cu_seq_lens (flash attention)."""
    kwargs: dict[str, Any] = {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
        # Required for packing: with a cache, transformers does not detect packed rows in position_ids and
        # would let them attend to each other.
        "use_cache": False,
    }
    if boundaries and batch.attention_mask is None:
        kwargs.update(batch.sequence_boundaries())
    return kwargs


class _HeadInput(torch.nn.Module):
    """Stands in for the vocabulary head during one forward pass: keeps the hidden states the head would have
    turned into logits and computes nothing (an empty tensor goes on through scaling and capping)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        self.hidden = hidden
        return hidden[..., :0]


@contextlib.contextmanager
def _head_inputs(model: Any) -> Iterator[tuple[_HeadInput, torch.nn.Module]]:
    causal_lm = getattr(model, "module", model)  # under DDP
    if hasattr(causal_lm, "get_base_model"):
        causal_lm = causal_lm.get_base_model()
    head = causal_lm.get_output_embeddings()
    stand_in = _HeadInput()
    causal_lm.set_output_embeddings(stand_in)
    try:
        yield stand_in, head
    finally:
        causal_lm.set_output_embeddings(head)


def loss_terms(
    model: Any, batch: MicroBatch, *, keep_logits: bool | None = None, boundaries: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over the label tokens of one micro-batch, and how many of them the model predicts
    (argmax).

    The forward pass stops before the vocabulary head, at the label positions only (logits_to_keep as a
    boolean mask); the head and the loss then run a few positions at a time (tt_trainer.loss): with
    vocabularies of 100k+ tokens, the fp32 logits of every label position would dwarf every activation."""
    labels = batch.labels
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != IGNORE_INDEX
    kwargs = model_inputs(batch, boundaries=uses_flash_attention(model) if boundaries is None else boundaries)
    if keep_logits if keep_logits is not None else accepts_argument(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = keep
    with _head_inputs(model) as (stand_in, head):
        model(**kwargs)
    hidden, weight = stand_in.hidden, head.weight
    assert hidden is not None and isinstance(weight, torch.Tensor)
    if hidden.dim() == 3:  # the model ignored logits_to_keep
        hidden = hidden[keep]
    return linear_cross_entropy(
        hidden,
        weight,
        targets[targets != IGNORE_INDEX],
        **head_options(getattr(model, "module", model).config),
    )


def loss_sum(model: Any, batch: MicroBatch, **options: Any) -> torch.Tensor:
    """Summed cross-entropy over the label tokens of one micro-batch (`loss_terms`' first)."""
    return loss_terms(model, batch, **options)[0]


def training_fingerprint(
    hp: Hyperparameters,
    base_id: str,
    rows: Sequence[TokenizedRow],
    parent: str | None,
    validation: Sequence[TokenizedRow] = (),
) -> str:
    """Identifies a training run: a checkpoint is resumed only by a job with the same data and settings.

    parent: the parent adapter's content digest (base_model.adapter_digest), None without one; validation:
    the rows whose loss decides early stopping."""
    digest = hashlib.sha256()
    settings = hp.model_dump(exclude={"logging_steps", "checkpoint_steps", "max_output_tokens"})
    digest.update(json.dumps({"base": base_id, "parent": parent, "hp": settings}, sort_keys=True).encode())
    for row in rows:
        digest.update(json.dumps([row.input_ids, row.labels]).encode())
    if validation:
        digest.update(b"validation")
        for row in validation:
            digest.update(json.dumps([row.input_ids, row.labels]).encode())
    return digest.hexdigest()


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    # ru_maxrss is in KiB on Linux: the whole process, base weights included.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@dataclass
class TrainResult:
    steps: int
    total_steps: int
    resumed_from: int
    train_runtime_seconds: float
    train_loss: float
    loss_history: list[dict[str, Any]]
    tokens: int
    positions: int
    tokens_per_second: float
    peak_memory_bytes: int
    step_losses: list[float] = field(default_factory=list)
    # Per epoch: {epoch, step, train_loss, valid_loss, valid_token_accuracy} (PRODUCT.md §9.10).
    epochs: list[dict[str, Any]] = field(default_factory=list)
    selected_epoch: int | None = None  # early stopping's choice, whose weights the model now holds
    stopped_early: bool = False


def plan_steps(hp: Hyperparameters, n_rows: int) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps)."""
    per_epoch = math.ceil(n_rows / hp.batch_size)
    return per_epoch, hp.max_steps or per_epoch * hp.n_epochs


def epochs_run(hp: Hyperparameters, n_rows: int, steps: int) -> int | float:
    """Passes over the rows that `steps` optimizer steps make: n_epochs, unless max_steps decides."""
    if hp.max_steps is None:
        return hp.n_epochs
    epochs = round(steps / plan_steps(hp, n_rows)[0], 4)
    return int(epochs) if epochs.is_integer() else epochs


def adapter_shape(model: Any) -> tuple[int, int]:
    """(rank, alpha) of the adapter being trained: a continued parent keeps its own, whatever was asked."""
    config = next(iter(model.peft_config.values()))
    alpha = config.lora_alpha
    return int(config.r), int(alpha) if float(alpha).is_integer() else alpha


def check_finite(loss: float, *, step: int, total_steps: int, epoch: float, hp: Hyperparameters) -> None:
    """A NaN or infinite loss never recovers: stop before the broken weights are saved as a model."""
    if math.isfinite(loss):
        return
    raise TrainingDivergedError(
        f"The loss became {'NaN' if math.isnan(loss) else 'infinite'} at step {step} of {total_steps} "
        f"(epoch {round(epoch, 2):g}): training diverged. Lower learning_rate (now {hp.learning_rate:g}) "
        "and start a new run."
    )


def distributed() -> tuple[int, int]:
    """(this process's rank, number of processes): torchrun's variables, (0, 1) for a single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _label_count(row: TokenizedRow) -> int:
    return sum(label != IGNORE_INDEX for label in row.labels)


class StepBatches(torch.utils.data.Dataset[dict[str, Any]]):
    """Item k: this process's micro-batches of optimizer step k of the current epoch.

    Every process reads the same items (the loader is not sharded): each takes every world-th row of the
    step, and the loss is divided by the whole step's label tokens, so N processes add up to one."""

    def __init__(self, rows: Sequence[TokenizedRow], hp: Hyperparameters, *, pad_id: int) -> None:
        self.rows, self.hp, self.pad_id = rows, hp, pad_id
        self.rank, self.world = distributed()
        # Packed sequences hold at most the longest row: attention work per sequence stays bounded by what
        # padding would have cost, while the short rows fill the gaps.
        self.capacity = max(len(r) for r in rows)
        self.epoch, self._order = -1, list[int]()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self._order = epoch, epoch_order(len(self.rows), self.hp.seed, epoch)

    def __len__(self) -> int:
        return plan_steps(self.hp, len(self.rows))[0]

    def __getitem__(self, k: int) -> dict[str, Any]:
        size = self.hp.batch_size
        step = [self.rows[i] for i in self._order[k * size : (k + 1) * size]]
        mine = step[self.rank :: self.world]
        batches = micro_batches(
            mine or step[:1],  # a process left without rows still joins the gradient exchange, weighted 0
            packing=self.hp.packing,
            micro_batch_size=self.hp.effective_micro_batch_size,
            pack_capacity=self.capacity,
            pad_id=self.pad_id,
            max_tokens=self.hp.micro_batch_tokens,
        )
        return {
            "micro_batches": batches,
            "step_label_tokens": sum(_label_count(r) for r in step),
            "weight": float(self.world) if mine else 0.0,
        }


def _only(items: list[dict[str, Any]]) -> dict[str, Any]:
    return items[0]


@dataclass(frozen=True)
class Validation:
    loss: float  # mean cross-entropy per label token
    token_accuracy: float


def validate(trainer: Any, rows: Sequence[TokenizedRow], *, pad_id: int) -> Validation | None:
    """The loss and token accuracy of the expected answers, teacher-forced (assistant tokens only), without
    dropout or gradients. Each process takes every world-th row; the sums are added up across processes."""
    if not rows:
        return None
    rank, world = distributed()
    model, hp, device = trainer.model, trainer.hp, trainer.args.device
    sums = [0.0, 0.0, 0.0]  # loss, hits, label tokens
    mine = list(rows[rank::world])
    batches = (
        micro_batches(
            mine,
            packing=hp.packing,
            micro_batch_size=hp.effective_micro_batch_size,
            pack_capacity=max(len(r) for r in rows),
            pad_id=pad_id,
            max_tokens=hp.micro_batch_tokens,
        )
        if mine
        else []
    )
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                batch = batch.to(device)
                with trainer.compute_loss_context_manager():
                    loss, hits = loss_terms(
                        model, batch, keep_logits=trainer.keep_logits, boundaries=trainer.boundaries
                    )
                sums = [sums[0] + float(loss), sums[1] + int(hits), sums[2] + batch.label_tokens]
    finally:
        model.train()
    if world > 1:
        total = torch.tensor(sums, dtype=torch.float64, device=device)
        sums = trainer.accelerator.reduce(total, reduction="sum").tolist()
    loss_total, hits_total, tokens = sums
    return Validation(loss_total / tokens, hits_total / tokens) if tokens else None


def _trainer_class() -> type:
    from transformers import Trainer

    class StepTrainer(Trainer):
        """Trainer whose dataloader yields whole optimizer steps, each run as its micro-batches."""

        def __init__(self, *args: Any, steps: StepBatches, hp: Hyperparameters, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self.steps, self.hp = steps, hp
            self.boundaries = hp.packing and uses_flash_attention(self.model)
            self.keep_logits = accepts_argument(self.model, "logits_to_keep")
            self.step_losses: list[float] = []
            self.step_hits = self.step_labels = 0  # the last step's, across processes: its token accuracy
            self.tokens = self.positions = 0
            self.step_learning_rate = 0.0

        def get_train_dataloader(self) -> torch.utils.data.DataLoader[Any]:
            # Not sharded by accelerate: each process picks its share of a step's rows (StepBatches).
            return torch.utils.data.DataLoader(self.steps, batch_size=1, shuffle=False, collate_fn=_only)

        def training_step(
            self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None
        ) -> torch.Tensor:
            model.train()
            batches, weight, total = inputs["micro_batches"], inputs["weight"], inputs["step_label_tokens"]
            step_loss = torch.zeros((), device=self.args.device)
            hits = torch.zeros((), dtype=torch.int64, device=self.args.device)
            for i, batch in enumerate(batches):
                batch = batch.to(self.args.device)
                # Gradients are exchanged between processes once per step, after its last micro-batch.
                last = i == len(batches) - 1
                with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                    with self.compute_loss_context_manager():
                        summed, batch_hits = loss_terms(
                            model, batch, keep_logits=self.keep_logits, boundaries=self.boundaries
                        )
                    # Divided by the whole step's label tokens: the same loss as one big batch, however split.
                    # DDP averages the processes' gradients; `weight` (the world size) turns that into a sum.
                    self.accelerator.backward(summed * (weight / total))
                step_loss += summed.detach() * (weight > 0)
                hits += batch_hits * (weight > 0)
                self.tokens += batch.tokens
                self.positions += batch.positions
            loss = step_loss / total
            if self.args.world_size > 1:
                loss = self.accelerator.reduce(loss, reduction="sum")
                hits = self.accelerator.reduce(hits, reduction="sum")
            self.step_hits, self.step_labels = int(hits), total
            value, done = float(loss), self.state.global_step + 1
            check_finite(
                value, step=done, total_steps=self.state.max_steps, epoch=done / len(self.steps), hp=self.hp
            )
            self.step_losses.append(value)
            assert self.optimizer is not None
            self.step_learning_rate = float(self.optimizer.param_groups[0]["lr"])
            return loss.detach()

    return StepTrainer


@dataclass
class EpochEnd:
    """What the end of every epoch does (PRODUCT.md §9.10): validation on the eval rows' expected answers,
    the epoch's package in `store` (the first process only), and early stopping after `patience` epochs
    without a better validation loss (None: off)."""

    validation_rows: Sequence[TokenizedRow] = ()
    store: epochs.EpochCheckpoints | None = None
    package: Callable[[Path, dict[str, Any]], None] | None = None
    patience: int | None = None


# Product schedule names → transformers' (whose "constant" would skip the warmup).
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def _progress_callback(
    trainer: Any,
    hp: Hyperparameters,
    *,
    reporter: ProgressReporter,
    fingerprint: str,
    resumed: checkpoints.Checkpoint | None,
    should_stop: Callable[[], bool],
    epoch_end: EpochEnd,
    pad_id: int,
) -> Any:
    from transformers import TrainerCallback

    earlier = resumed.state if resumed is not None else {}

    class Progress(TrainerCallback):
        """The epoch's row order; progress lines and the loss history every logging_steps and at each epoch's
        end, with what the epoch's end does (EpochEnd); a stop request ends training after the step, with a
        checkpoint; each checkpoint is marked as this job's. Only the first process writes."""

        def __init__(self) -> None:
            self.history: list[dict[str, Any]] = list(earlier.get("loss_history", []))
            self.step_losses: list[float] = list(earlier.get("step_losses", []))
            self.epochs: list[dict[str, Any]] = list(earlier.get("epochs", []))
            self.elapsed_before = float(earlier.get("elapsed_seconds", 0.0))
            self.tokens_before = int(earlier.get("tokens", 0))
            self.stopped = self.stopped_early = False
            self.started = self.window_started = time.perf_counter()
            self.window: list[float] = []
            self.window_tokens = self.window_hits = self.window_labels = 0

        @property
        def elapsed(self) -> float:
            return self.elapsed_before + time.perf_counter() - self.started

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = self.window_started = time.perf_counter()

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # Also where a resumed job starts: state.epoch is then the checkpoint's (e.g. 2.5 → epoch 2).
            trainer.steps.set_epoch(int(state.epoch or 0))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            done, total, per_epoch = state.global_step, state.max_steps, len(trainer.steps)
            loss = trainer.step_losses[-1]
            self.step_losses.append(loss)
            self.window.append(loss)
            self.window_hits += trainer.step_hits
            self.window_labels += trainer.step_labels
            epoch_ended = done % per_epoch == 0
            if done % hp.logging_steps == 0 or done == total or epoch_ended:
                self._log(state, done, total)
            if epoch_ended and self._end_epoch(state, done // per_epoch, done):
                self.stopped_early = control.should_training_stop = True
                control.should_save = False  # the selected epoch is the model: nothing left to resume
            elif done >= total:
                control.should_save = False  # the model itself is saved next: no checkpoint of the last step
            elif self._stop_everywhere(args):
                self.stopped = control.should_training_stop = True
                control.should_save = args.save_strategy != "no"

        def _log(self, state: Any, done: int, total: int) -> None:
            now = time.perf_counter()
            mean = sum(self.window) / len(self.window)
            accuracy = self.window_hits / self.window_labels if self.window_labels else None
            epoch = done / len(trainer.steps)
            self.history.append(
                {
                    "step": done,
                    "epoch": round(epoch, 4),
                    "loss": round(mean, 6),
                    "learning_rate": trainer.step_learning_rate,
                    "token_accuracy": None if accuracy is None else round(accuracy, 6),
                }
            )
            if state.is_world_process_zero:
                reporter.train_step(
                    step=done,
                    total_steps=total,
                    epoch=epoch,
                    loss=mean,
                    learning_rate=trainer.step_learning_rate,
                    tokens_per_second=(trainer.tokens - self.window_tokens)
                    / max(now - self.window_started, 1e-9),
                    token_accuracy=accuracy,
                )
            self.window, self.window_tokens, self.window_started = [], trainer.tokens, now
            self.window_hits = self.window_labels = 0

        def _end_epoch(self, state: Any, epoch: int, done: int) -> bool:
            """Validate, package the epoch; whether early stopping ends training here."""
            measured = validate(trainer, epoch_end.validation_rows, pad_id=pad_id)
            losses = self.step_losses[-len(trainer.steps) :]
            entry = {
                "epoch": epoch,
                "step": done,
                "metrics": {
                    "train_loss": round(sum(losses) / len(losses), 6),
                    "valid_loss": None if measured is None else round(measured.loss, 6),
                    "valid_token_accuracy": None if measured is None else round(measured.token_accuracy, 6),
                },
            }
            self.epochs = [e for e in self.epochs if e["epoch"] != epoch] + [entry]
            patience = epoch_end.patience
            if state.is_world_process_zero:
                if measured is not None:
                    reporter.validation(
                        step=done, epoch=epoch, loss=measured.loss, token_accuracy=measured.token_accuracy
                    )
                if epoch_end.store is not None and epoch_end.package is not None:
                    package = epoch_end.package
                    epoch_end.store.save(
                        entry,
                        lambda folder: package(folder, entry),
                        protect=epochs.best_epoch(self.epochs) if patience else None,
                    )
            return patience is not None and epochs.patience_spent(self.epochs, patience)

        @staticmethod
        def _stop_everywhere(args: Any) -> bool:
            """Every process stops after the same step (one stopping alone would leave the others waiting)."""
            asked = should_stop()
            if args.world_size == 1:
                return asked
            flag = torch.tensor(float(asked), device=args.device)
            return bool(trainer.accelerator.reduce(flag, reduction="sum") > 0)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            checkpoints.mark(
                folder,
                fingerprint,
                {
                    "loss_history": self.history,
                    "step_losses": self.step_losses,
                    "epochs": self.epochs,
                    "elapsed_seconds": self.elapsed,
                    "tokens": self.tokens_before + trainer.tokens,
                },
            )
            reporter.event("checkpoint", step=state.global_step, checkpoint=folder.name)

    return Progress()


def train(
    model: Any,
    rows: Sequence[TokenizedRow],
    hp: Hyperparameters,
    *,
    precision: Precision,
    pad_id: int,
    reporter: ProgressReporter,
    checkpoint_dir: Path | None = None,
    fingerprint: str = "",
    should_stop: Callable[[], bool] = lambda: False,
    validation_rows: Sequence[TokenizedRow] = (),
    package_epoch: Callable[[Path, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Run the optimizer steps; resume from this job's checkpoint; on a stop request, checkpoint and raise.

    At each epoch's end: the validation loss of `validation_rows` and, with a checkpoint dir, the epoch's
    package written by `package_epoch` (folder, the epoch's entry); with early stopping, the model ends up
    holding the best epoch's weights (TrainResult.selected_epoch)."""
    from transformers import PrinterCallback, TrainingArguments

    hp = settle_packing(hp, model.config, reporter)
    epoch_end = _epoch_end(hp, checkpoint_dir, fingerprint, validation_rows, package_epoch, reporter)
    steps = StepBatches(rows, hp, pad_id=pad_id)
    per_epoch, total_steps = plan_steps(hp, len(rows))
    resumed = checkpoints.resumable(checkpoint_dir, fingerprint, total_steps)
    if distributed()[0] == 0:
        checkpoints.discard_others(checkpoint_dir, resumed)
    if resumed is not None:
        reporter.event("resumed", step=resumed.step, total_steps=total_steps, checkpoint=resumed.path.name)
    cpu = precision.device.type != "cuda"
    with tempfile.TemporaryDirectory(prefix="tt-trainer-out-") as scratch:
        args = TrainingArguments(
            output_dir=str(checkpoint_dir or scratch),
            per_device_train_batch_size=1,  # one item = one optimizer step's micro-batches (StepBatches)
            gradient_accumulation_steps=1,
            max_steps=total_steps,
            learning_rate=hp.learning_rate,
            lr_scheduler_type=SCHEDULES[hp.lr_scheduler],
            warmup_steps=round(hp.warmup_ratio * total_steps),
            weight_decay=hp.weight_decay,
            max_grad_norm=hp.max_grad_norm,
            optim="adamw_torch",
            seed=hp.seed,
            bf16=precision.amp_dtype == torch.bfloat16,
            fp16=precision.amp_dtype == torch.float16,
            use_cpu=cpu,
            ddp_backend="gloo" if cpu and distributed()[1] > 1 else None,
            ddp_find_unused_parameters=False,
            logging_strategy="no",  # the progress callback logs: Trainer's log rounds the loss
            logging_nan_inf_filter=False,
            save_strategy="steps" if checkpoint_dir is not None else "no",
            save_steps=hp.checkpoint_steps or per_epoch,
            save_total_limit=1,
            report_to=[],
            disable_tqdm=True,
            dataloader_pin_memory=False,
            remove_unused_columns=False,
        )
        trainer = _trainer_class()(model=model, args=args, steps=steps, hp=hp)
        trainer.remove_callback(PrinterCallback)
        progress = _progress_callback(
            trainer,
            hp,
            reporter=reporter,
            fingerprint=fingerprint,
            resumed=resumed,
            should_stop=should_stop,
            epoch_end=epoch_end,
            pad_id=pad_id,
        )
        trainer.add_callback(progress)
        if precision.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(precision.device)
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resumed.path) if resumed is not None else None)
        runtime = time.perf_counter() - started
    if progress.stopped:
        saved = checkpoint_dir is not None
        raise TrainingStoppedError(
            f"Training was stopped (SIGTERM) after step {trainer.state.global_step} of {total_steps}. "
            + (
                "A checkpoint was saved; a job with the same inputs resumes from it."
                if saved
                else "No checkpoint could be saved."
            )
        )
    selected = epochs.best_epoch(progress.epochs) if epoch_end.patience else None
    if selected is not None and epoch_end.store is not None:
        epoch_end.store.select(selected)
        if selected != progress.epochs[-1]["epoch"]:
            epoch_end.store.load_adapter(model, selected)
        reporter.event("selected_epoch", epoch=selected, stopped_early=progress.stopped_early)
    return TrainResult(
        steps=trainer.state.global_step if progress.stopped_early else total_steps,
        total_steps=total_steps,
        resumed_from=resumed.step if resumed is not None else 0,
        train_runtime_seconds=round(progress.elapsed_before + runtime, 3),
        train_loss=round(sum(progress.step_losses) / max(1, len(progress.step_losses)), 6),
        loss_history=progress.history,
        tokens=progress.tokens_before + trainer.tokens,
        positions=trainer.positions,
        tokens_per_second=trainer.tokens / runtime if runtime > 0 else 0.0,
        peak_memory_bytes=peak_memory_bytes(precision.device),
        step_losses=progress.step_losses,
        epochs=progress.epochs,
        selected_epoch=selected,
        stopped_early=progress.stopped_early,
    )


def _epoch_end(
    hp: Hyperparameters,
    checkpoint_dir: Path | None,
    fingerprint: str,
    validation_rows: Sequence[TokenizedRow],
    package_epoch: Callable[[Path, dict[str, Any]], None] | None,
    reporter: ProgressReporter,
) -> EpochEnd:
    """The epoch-end work this job can do: packages need a checkpoint dir, early stopping needs validation
    rows and the packages (the selected epoch's weights are read back from its package)."""
    first = distributed()[0] == 0
    store = (
        epochs.EpochCheckpoints(checkpoint_dir, fingerprint)
        if first and checkpoint_dir is not None and package_epoch is not None
        else None
    )
    patience = hp.early_stopping_patience
    if patience is not None and not validation_rows:
        reporter.event("warning", message="early stopping is off: the run has no evaluation rows to measure")
        patience = None
    elif patience is not None and (checkpoint_dir is None or package_epoch is None):
        reporter.event("warning", message="early stopping is off: epoch checkpoints cannot be kept")
        patience = None
    return EpochEnd(validation_rows=validation_rows, store=store, package=package_epoch, patience=patience)
