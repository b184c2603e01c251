"""LoRA fine-tuning: peft adapter, plain PyTorch loop, accumulation, schedule, checkpoints, SIGTERM stop."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import random
import resource
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tt_trainer.checkpoints import CheckpointStore
from tt_trainer.config import Hyperparameters
from tt_trainer.data import IGNORE_INDEX, MicroBatch, TokenizedRow, epoch_order, micro_batches
from tt_trainer.errors import ParentModelError, TrainingDivergedError, TrainingStoppedError
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
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
    """Wrap the base model with a trainable LoRA adapter on all linear layers, or continue the parent's."""
    with warnings.catch_warnings():
        # peft 0.21 still calls transformers' renamed is_gradient_checkpointing; nothing for us to act on.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return _attach_lora(model, hp, parent_dir=parent_dir, gradient_checkpointing=gradient_checkpointing)


def _attach_lora(
    model: Any, hp: Hyperparameters, *, parent_dir: Path | None, gradient_checkpointing: bool
) -> Any:
    from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model

    if gradient_checkpointing:
        # Non-reentrant checkpointing works with frozen inputs: no enable_input_require_grads needed.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if parent_dir is None:
        config = LoraConfig(
            r=hp.lora_rank,
            lora_alpha=hp.lora_alpha,
            lora_dropout=hp.lora_dropout,
            target_modules="all-linear",
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


def lr_factor(step: int, *, total: int, warmup: int, kind: str) -> float:
    """Multiplier of the peak learning rate at a 0-based optimizer step: linear warmup, then decay."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def warmup_steps(hp: Hyperparameters, total_steps: int) -> int:
    return round(hp.warmup_ratio * total_steps)


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


def loss_sum(
    model: Any, batch: MicroBatch, *, keep_logits: bool | None = None, boundaries: bool | None = None
) -> torch.Tensor:
    """Summed cross-entropy over the label tokens of one micro-batch.

    Logits are computed only where a label follows (logits_to_keep as a boolean mask): with vocabularies of
    100k+ tokens, the full logits of a batch would dwarf every other activation."""
    labels = batch.labels
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != IGNORE_INDEX
    kwargs = model_inputs(batch, boundaries=uses_flash_attention(model) if boundaries is None else boundaries)
    if keep_logits if keep_logits is not None else accepts_argument(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = keep
    logits = model(**kwargs).logits
    if logits.dim() == 3:  # the model ignored logits_to_keep
        logits = logits[keep]
    return F.cross_entropy(logits.float(), targets[targets != IGNORE_INDEX], reduction="sum")


def training_fingerprint(
    hp: Hyperparameters, base_id: str, rows: Sequence[TokenizedRow], parent: str | None
) -> str:
    """Identifies a training run: a checkpoint is resumed only by a job with the same data and settings.

    parent: the parent adapter's content digest (base_model.adapter_digest), None without one."""
    digest = hashlib.sha256()
    settings = hp.model_dump(exclude={"logging_steps", "checkpoint_steps", "max_output_tokens"})
    digest.update(json.dumps({"base": base_id, "parent": parent, "hp": settings}, sort_keys=True).encode())
    for row in rows:
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
    loss_history: list[dict[str, float]]
    tokens: int
    positions: int
    tokens_per_second: float
    peak_memory_bytes: int
    step_losses: list[float] = field(default_factory=list)


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


def train(
    model: Any,
    rows: Sequence[TokenizedRow],
    hp: Hyperparameters,
    *,
    precision: Precision,
    pad_id: int,
    reporter: ProgressReporter,
    checkpoints: CheckpointStore | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Run the optimizer steps; resume from a matching checkpoint; on a stop request, checkpoint and raise."""
    device = precision.device
    hp = settle_packing(hp, model.config, reporter)
    boundaries = hp.packing and uses_flash_attention(model)
    per_epoch, total_steps = plan_steps(hp, len(rows))
    warmup = warmup_steps(hp, total_steps)
    micro = hp.effective_micro_batch_size
    # Packed sequences hold at most the longest row: attention work per sequence stays bounded by what
    # padding would have cost, while the short rows fill the gaps.
    capacity = max(len(r) for r in rows)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total=total_steps, warmup=warmup, kind=hp.lr_scheduler)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision.amp_dtype == torch.float16)
    keep_logits = accepts_argument(model, "logits_to_keep")

    start, history, step_losses, elapsed_before, tokens_before = 0, [], [], 0.0, 0
    latest = checkpoints.latest() if checkpoints is not None else None
    if latest is not None and latest.step < total_steps:
        training = CheckpointStore.restore(latest, model)
        optimizer.load_state_dict(training["optimizer"])
        scheduler.load_state_dict(training["scheduler"])
        scaler.load_state_dict(training["scaler"])
        torch.set_rng_state(training["rng_cpu"])
        if device.type == "cuda" and training.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(training["rng_cuda"], device)
        start = latest.step
        history = list(latest.state["loss_history"])
        step_losses = list(latest.state["step_losses"])
        elapsed_before = float(latest.state["elapsed_seconds"])
        tokens_before = int(latest.state["tokens"])
        reporter.event("resumed", step=start, total_steps=total_steps, checkpoint=latest.path.name)

    checkpoint_every = hp.checkpoint_steps or per_epoch

    def rng_state() -> tuple[torch.Tensor, torch.Tensor | None]:
        return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def save_checkpoint(
        step: int, rng: tuple[torch.Tensor, torch.Tensor | None], trained_tokens: int
    ) -> None:
        """rng and trained_tokens as they were when step `step` (0-based: the next one to train) began."""
        if checkpoints is None or not checkpoints.enabled:
            return
        path = checkpoints.save(
            step=step,
            model=model,
            training={
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng_cpu": rng[0],
                "rng_cuda": rng[1],
            },
            state={
                "total_steps": total_steps,
                "loss_history": history,
                "step_losses": step_losses,
                "elapsed_seconds": elapsed_before + (time.perf_counter() - started),
                "tokens": tokens_before + trained_tokens,
            },
        )
        reporter.event("checkpoint", step=step, checkpoint=path.name)

    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    tokens = positions = 0
    window_tokens, window_started, window_losses = 0, started, []
    order_epoch, order = -1, []
    for step in range(start, total_steps):
        epoch, offset = divmod(step, per_epoch)
        if epoch != order_epoch:
            order_epoch, order = epoch, epoch_order(len(rows), hp.seed, epoch)
        batch_rows = [rows[i] for i in order[offset * hp.batch_size : (offset + 1) * hp.batch_size]]
        batches = micro_batches(
            batch_rows, packing=hp.packing, micro_batch_size=micro, pack_capacity=capacity, pad_id=pad_id
        )
        label_tokens = sum(b.label_tokens for b in batches)
        step_loss = torch.zeros((), device=device)
        # A stop between micro-batches discards the step: its checkpoint must not include the dropout draws
        # of the micro-batches already run, or the resumed run would differ from an uninterrupted one.
        step_rng, step_tokens = rng_state(), tokens
        for batch in batches:
            if should_stop():
                optimizer.zero_grad(set_to_none=True)
                saved = checkpoints is not None and checkpoints.enabled and step > 0
                if saved:
                    save_checkpoint(step, step_rng, step_tokens)
                raise TrainingStoppedError(
                    f"Training was stopped (SIGTERM) after step {step} of {total_steps}. "
                    + (
                        "A checkpoint was saved; a job with the same inputs resumes from it."
                        if saved
                        else "No checkpoint could be saved."
                    )
                )
            batch = batch.to(device)
            with torch.autocast(
                device.type,
                dtype=precision.amp_dtype or torch.float32,
                enabled=precision.amp_dtype is not None,
            ):
                summed = loss_sum(model, batch, keep_logits=keep_logits, boundaries=boundaries)
            # Normalised by the label tokens of the whole step: the same loss as one big batch, however split.
            scaler.scale(summed / label_tokens).backward()
            step_loss += summed.detach()
            tokens += batch.tokens
            positions += batch.positions
            window_tokens += batch.tokens
        loss = float(step_loss) / label_tokens
        check_finite(loss, step=step + 1, total_steps=total_steps, epoch=(step + 1) / per_epoch, hp=hp)
        if hp.max_grad_norm > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, hp.max_grad_norm)
        learning_rate = optimizer.param_groups[0]["lr"]
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step_losses.append(loss)
        window_losses.append(loss)
        done = step + 1
        if done % hp.logging_steps == 0 or done == total_steps:
            now = time.perf_counter()
            epoch_float = done / per_epoch
            mean_loss = sum(window_losses) / len(window_losses)
            history.append(
                {
                    "step": done,
                    "epoch": round(epoch_float, 4),
                    "loss": round(mean_loss, 6),
                    "learning_rate": learning_rate,
                }
            )
            reporter.train_step(
                step=done,
                total_steps=total_steps,
                epoch=epoch_float,
                loss=mean_loss,
                learning_rate=learning_rate,
                tokens_per_second=window_tokens / max(now - window_started, 1e-9),
            )
            window_tokens, window_started, window_losses = 0, now, []
        if done % checkpoint_every == 0 and done < total_steps:
            save_checkpoint(done, rng_state(), tokens)
    runtime = time.perf_counter() - started
    return TrainResult(
        steps=total_steps,
        total_steps=total_steps,
        resumed_from=start,
        train_runtime_seconds=round(elapsed_before + runtime, 3),
        train_loss=round(sum(step_losses) / max(1, len(step_losses)), 6),
        loss_history=history,
        tokens=tokens_before + tokens,
        positions=positions,
        tokens_per_second=tokens / runtime if runtime > 0 else 0.0,
        peak_memory_bytes=peak_memory_bytes(device),
        step_losses=step_losses,
    )
