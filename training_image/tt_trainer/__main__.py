"""The SageMaker training contract: `python -m tt_trainer [train]` reads /opt/ml, trains, writes the model."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from tt_trainer.config import CHANNELS, Hyperparameters, JobPaths, load_hyperparameters, resolve_paths
from tt_trainer.errors import MEMORY_REMEDY, TrainerError
from tt_trainer.parent_watch import watch_parent
from tt_trainer.progress import PROGRESS_MIRROR_DIR, ProgressReporter

FAILURE_LIMIT = 1024  # SageMaker shows the first 1 KiB of the failure file as FailureReason
# In the run's hyperparameters (PRODUCT.md §9.1): a forward pass takes at most 4 rows, fewer with a smaller
# batch_size (micro_batch_size is a trainer-only knob the product never sets).


class StopRequest:
    """Turns SIGTERM (SageMaker's stop, spot interruption) into a flag the loops check between steps."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.request()

    def request(self) -> None:
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tt_trainer",
        description="Tuned Tensor trainer. Paths default to SageMaker's /opt/ml layout and SM_* variables.",
    )
    # SageMaker starts training containers as `<entrypoint> train`.
    parser.add_argument("mode", nargs="?", choices=["train"], default="train")
    parser.add_argument("--sm-root", type=Path, help="use this directory instead of /opt/ml")
    parser.add_argument("--hyperparameters", type=Path, dest="hyperparameters_file")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--output-data-dir", type=Path)
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--failure-file", type=Path)
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help=f"a channel directory or file; NAME is one of {', '.join(CHANNELS)}",
    )
    return parser.parse_args(argv)


def _channel_overrides(specs: Sequence[str]) -> dict[str, Path]:
    overrides = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or name not in CHANNELS or not path:
            raise SystemExit(
                f"--channel expects NAME=PATH with NAME one of {', '.join(CHANNELS)}; got {spec!r}"
            )
        overrides[name] = Path(path)
    return overrides


def write_failure(path: Path, reason: str) -> None:
    """One paragraph, the first thing SageMaker and the workflow show for a failed job."""
    text = " ".join(reason.split())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text[:FAILURE_LIMIT] + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"cannot write the failure file: {exc}", file=sys.stderr)


def run_job(
    paths: JobPaths, environ: Mapping[str, str], reporter: ProgressReporter, stop: StopRequest
) -> None:
    """Check what can fail cheaply first (hyperparameters, rows, tokenizer), then train and evaluate."""
    hp, ignored = load_hyperparameters(paths.hyperparameters_file, environ)
    if ignored:
        reporter.event("warning", message=f"ignored unknown hyperparameters: {', '.join(ignored)}")
    reporter.event("start", hyperparameters=hp.model_dump())
    reporter.update(status="starting", n_epochs=hp.n_epochs)
    # Heavy imports here, not at module level: a bad config gets its failure file in well under a second.
    from tt_trainer import architecture, data, package, predict, train
    from tt_trainer import base_model as bm
    from tt_trainer.device import require_usable_gpu

    require_usable_gpu(environ)

    train_channel = paths.channel("train")
    if train_channel is None:
        raise data.no_rows_received("train")
    rows = data.load_train_rows(train_channel)
    eval_channel = paths.channel("eval")
    eval_rows = data.load_eval_rows(eval_channel) if eval_channel is not None else []

    with tempfile.TemporaryDirectory(prefix="tt-trainer-") as scratch_name:
        scratch = Path(scratch_name)
        staged = paths.channel("base_model") or (Path(hp.base_model_dir) if hp.base_model_dir else None)
        source = bm.resolve_base_model(
            hp.base_model, hp.base_model_revision, staged_dir=staged, scratch=scratch
        )
        parent_channel = paths.channel("parent_model")
        parent_dir = bm.find_adapter_dir(parent_channel, scratch) if parent_channel is not None else None
        if parent_dir is not None:
            _check_parent_base(bm.parent_base_model_id(parent_dir), source.id)

        tokenizer = bm.load_tokenizer(source, trust_remote_code=hp.trust_remote_code)
        if bm.ensure_chat_template(tokenizer):
            reporter.event(
                "warning",
                message=(
                    "the base model's tokenizer has no chat template: rows are rendered as ChatML, each "
                    f"turn ending with its eos token {tokenizer.eos_token}; the model keeps this template, "
                    "so serving renders the same"
                ),
            )
        encoder = data.ChatEncoder(tokenizer)
        pad_id = bm.choose_pad_id(tokenizer)
        config = bm.load_config(source, trust_remote_code=hp.trust_remote_code)
        context = bm.context_length(config)
        max_seq_length = min(hp.max_seq_length, context) if context else hp.max_seq_length
        tokenized, report = data.tokenize_rows(
            rows, encoder, max_seq_length=max_seq_length, long_examples=hp.long_examples
        )
        validation = data.validation_rows(eval_rows, encoder, max_seq_length=max_seq_length)
        reporter.event(
            "data",
            max_seq_length=max_seq_length,
            eval_rows=len(eval_rows),
            validation_rows=len(validation),
            **report.as_dict(),
        )
        hp = train.settle_packing(hp, config, reporter)

        precision = train.pick_precision(hp.precision)
        kernels = architecture.linear_attention_warning(config, precision.device)
        if kernels is not None:
            reporter.event("warning", message=kernels)
        train.seed_everything(hp.seed)
        model = bm.load_model(
            source,
            dtype=precision.load_dtype,
            device=precision.device,
            trust_remote_code=hp.trust_remote_code,
        )
        stop_ids = bm.stop_token_ids(tokenizer, model)
        attention = architecture.attention_of(model)

        gradient_checkpointing = (
            hp.gradient_checkpointing
            if hp.gradient_checkpointing is not None
            else precision.device.type == "cuda"
        )
        peft_model = train.attach_lora(
            model, hp, parent_dir=parent_dir, gradient_checkpointing=gradient_checkpointing
        )
        trainable, total = train.count_parameters(peft_model)
        _, total_steps = train.plan_steps(hp, len(tokenized))
        reporter.event(
            "model",
            base_model=source.id,
            revision=source.revision,
            parent_model=parent_dir is not None,
            device=precision.device.type,
            precision=precision.name,
            processes=train.distributed()[1],
            attn_implementation=attention,
            trainable_parameters=trainable,
            total_parameters=total,
            total_steps=total_steps,
        )
        reporter.update(
            status="training",
            step=0,
            total_steps=total_steps,
            epoch=0.0,
            n_epochs=train.epochs_run(hp, len(tokenized), total_steps),
            data=report.as_dict(),
        )
        fingerprint = train.training_fingerprint(
            hp,
            source.id,
            tokenized,
            parent=bm.adapter_digest(parent_dir) if parent_dir else None,
            validation=validation,
        )
        spec_file = package.find_spec_file(paths.channel("spec"))

        def save(folder: Path, metrics: dict[str, Any]) -> None:
            package.save_artifact(
                peft_model,
                tokenizer,
                folder,
                base=source,
                hub_revision=source.revision if source.from_hub_cache else None,
                metrics=metrics,
                spec_file=spec_file,
            )

        def save_epoch(folder: Path, entry: dict[str, Any]) -> None:
            rank_alpha = train.adapter_shape(peft_model)
            save(folder, epoch_metrics(hp, report.kept, entry, adapter=rank_alpha))

        result = train.train(
            peft_model,
            tokenized,
            hp,
            precision=precision,
            pad_id=pad_id,
            reporter=reporter,
            checkpoint_dir=_writable(paths.checkpoint_dir, reporter),
            fingerprint=fingerprint,
            should_stop=stop,
            validation_rows=validation,
            package_epoch=save_epoch,
        )
        if train.distributed()[0] != 0:
            return  # the first process saves the model and answers the eval rows
        metrics = training_metrics(
            hp,
            report.kept,
            result,
            epochs=len(result.epochs)
            if result.stopped_early
            else train.epochs_run(hp, report.kept, result.steps),
            adapter=train.adapter_shape(peft_model),
        )
        metrics["data"] = report.as_dict()
        save(paths.model_dir, metrics)
        reporter.update(selected_epoch=result.selected_epoch, epochs=result.epochs)
        reporter.event(
            "saved",
            steps=result.steps,
            train_loss=result.train_loss,
            train_runtime_seconds=result.train_runtime_seconds,
            tokens_per_second=round(result.tokens_per_second, 1),
            peak_memory_bytes=result.peak_memory_bytes,
        )
        summary: dict[str, Any] = {}
        if eval_rows:
            summary = predict.generate_predictions(
                peft_model,
                encoder,
                eval_rows,
                out_path=paths.output_data_dir / predict.PREDICTIONS_FILE,
                max_seq_length=max_seq_length,
                max_output_tokens=hp.max_output_tokens,
                eval_reserved_output_tokens=hp.eval_reserved_output_tokens,
                stop_ids=stop_ids,
                pad_id=pad_id,
                reporter=reporter,
                should_stop=stop,
            )
        reporter.update(status="completed", eval=summary)
        reporter.event("completed", steps=result.steps, train_loss=result.train_loss, **summary)


def _check_parent_base(parent_base: str | None, base_id: str) -> None:
    from tt_trainer.errors import ParentModelError

    if parent_base is not None and parent_base.strip().lower() != base_id.lower():
        raise ParentModelError(
            f"The parent model was trained on {parent_base}, but this run's base model is {base_id}; "
            "an adapter can only be continued on its own base model."
        )


def _writable(directory: Path, reporter: ProgressReporter) -> Path | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError:
        reporter.event(
            "warning", message="the checkpoint directory is not writable: training runs without checkpoints"
        )
        return None
    return directory


def training_metrics(
    hp: Hyperparameters,
    training_rows: int,
    result: Any,
    *,
    epochs: int | float,
    adapter: tuple[int, int],
) -> dict[str, Any]:
    """training-metrics.json of PRODUCT.md §11: the epochs actually run, the adapter's own rank and alpha."""
    rank, alpha = adapter
    return {
        "training_rows": training_rows,
        "n_epochs": epochs,
        "steps": result.steps,
        "train_runtime_seconds": result.train_runtime_seconds,
        "train_loss": result.train_loss,
        "loss_history": result.loss_history,
        "epochs": result.epochs,
        "selected_epoch": result.selected_epoch,
        "hyperparameters": {**hp.model_dump(), "lora_rank": rank, "lora_alpha": alpha},
    }


def epoch_metrics(
    hp: Hyperparameters, training_rows: int, entry: dict[str, Any], *, adapter: tuple[int, int]
) -> dict[str, Any]:
    """training-metrics.json of an epoch's checkpoint: that epoch's numbers."""
    rank, alpha = adapter
    return {
        "training_rows": training_rows,
        "n_epochs": entry["epoch"],
        "steps": entry["step"],
        **entry["metrics"],
        "hyperparameters": {**hp.model_dump(), "lora_rank": rank, "lora_alpha": alpha},
    }


def processes_wanted(environ: Mapping[str, str]) -> int:
    """Training processes: one per GPU the job has (TT_TRAINER_PROCESSES sets a count, e.g. 2 on CPU)."""
    from tt_trainer.device import expected_gpus

    forced = (environ.get("TT_TRAINER_PROCESSES") or "").strip()
    return max(1, int(forced) if forced.isdigit() else expected_gpus(environ))


def launch_processes(argv: Sequence[str], processes: int, environ: Mapping[str, str]) -> int:
    """Run this entry point in `processes` processes under torchrun (DDP); SIGTERM is passed on to them."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "tt_trainer",
        *argv,
    ]
    child = subprocess.Popen(command, env=dict(environ))
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    env = os.environ if environ is None else environ
    rank = int(env.get("RANK", "0"))
    # Never download: base weights come from the base_model channel, the local cache or the tiny builder.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    paths = resolve_paths(
        env,
        sm_root=args.sm_root,
        overrides={
            "hyperparameters_file": args.hyperparameters_file,
            "model_dir": args.model_dir,
            "output_data_dir": args.output_data_dir,
            "checkpoint_dir": args.checkpoint_dir,
            "failure_file": args.failure_file,
        },
        channel_overrides=_channel_overrides(args.channel),
    )
    if "LOCAL_RANK" not in env and (processes := processes_wanted(env)) > 1:
        code = launch_processes(sys.argv[1:] if argv is None else argv, processes, env)
        if code != 0 and not paths.failure_file.exists():
            write_failure(
                paths.failure_file, f"A training process failed (exit code {code}); see the job's log."
            )
        return code
    # The mirror in the checkpoint dir is what SageMaker syncs to S3 during the job: live progress on AWS.
    # Only the first process reports and writes; the others train beside it.
    reporter = (
        ProgressReporter(paths.output_data_dir, mirror_dir=paths.checkpoint_dir / PROGRESS_MIRROR_DIR)
        if rank == 0
        else ProgressReporter(None, io.StringIO())
    )
    try:
        with StopRequest() as stop:
            watch_parent(env, stop.request)  # the local stack died: stop as if SageMaker had stopped the job
            run_job(paths, env, reporter, stop)
        return 0
    except TrainerError as exc:
        reason, code, status = str(exc), exc.exit_code, "stopped" if exc.exit_code == 143 else "failed"
    except MemoryError:
        reason, code, status = (
            f"The training machine ran out of memory. {MEMORY_REMEDY}",
            1,
            "failed",
        )
    except Exception as exc:  # the last line of defence: every failure gets its reason
        traceback.print_exc(file=sys.stderr)
        if type(exc).__name__ == "OutOfMemoryError":
            reason = f"The GPU ran out of memory. {MEMORY_REMEDY}"
        else:
            reason = f"The training job failed unexpectedly: {type(exc).__name__}: {exc}"
        code, status = 1, "failed"
    if rank != 0:
        print(reason, file=sys.stderr)
        return code
    write_failure(paths.failure_file, reason)
    reporter.event(status, reason=reason)
    with contextlib.suppress(OSError):
        reporter.update(status=status, reason=reason)
    return code


if __name__ == "__main__":
    sys.exit(main())
