"""The diagnostics object of a run (PRODUCT.md §9.9) and the training view the poll loop keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tt_core.models.common import format_timestamp, parse_timestamp
from tt_core.models.runs import RunRecord
from tt_core.ports import TrainingJobStatus

MAX_SAMPLES = 200
STALE_LOG_MINUTES = 10
_PHASES = {
    "pending": "Waiting to start",
    "running": "Training",
    "completed": "Training finished",
    "failed": "Training failed",
    "stopped": "Training stopped",
}


def _thin(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_SAMPLES, evenly spread, always keeping the first, the latest and every epoch's end with
    its validation loss (at most 20: n_epochs ≤ 20)."""
    if len(samples) <= MAX_SAMPLES:
        return samples
    kept = {0, len(samples) - 1} | {i for i, s in enumerate(samples) if s.get("valid_loss") is not None}
    others = [i for i in range(len(samples)) if i not in kept]
    room = MAX_SAMPLES - len(kept)
    step = (len(others) - 1) / max(room - 1, 1)
    kept |= {others[round(i * step)] for i in range(room)}
    return [samples[i] for i in sorted(kept)]


def empty_curve(target_epochs: int | None) -> dict[str, Any]:
    return {
        "target_epochs": target_epochs,
        "latest_epoch": None,
        "latest_loss": None,
        "previous_loss": None,
        "latest_token_accuracy": None,
        "latest_valid_loss": None,
        "latest_valid_token_accuracy": None,
        "epoch_rate_per_minute": None,
        "estimated_minutes_remaining": None,
        "latest_log_at": None,
        "samples": [],
    }


def pending_training(target_epochs: int | None) -> dict[str, Any]:
    return {
        "state": "pending",
        "phase": _PHASES["pending"],
        "started_at": None,
        "completed_at": None,
        "last_updated_at": None,
        "curve": empty_curve(target_epochs),
    }


def curve_samples(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One sample per train_step line; a validation line (logged after its epoch's last step) gives the
    sample of its step its valid_* values (a sample of its own when that step's line is missing)."""
    samples: list[dict[str, Any]] = []
    by_step: dict[Any, dict[str, Any]] = {}
    for line in log:
        if line.get("event") == "validation":
            sample = by_step.get(line.get("step"))
            if sample is None:
                sample = _sample(line)
                samples.append(sample)
            sample.update(
                valid_loss=line.get("valid_loss"), valid_token_accuracy=line.get("valid_token_accuracy")
            )
        else:
            by_step[line.get("step")] = sample = _sample(line)
            samples.append(sample)
    return samples


def _sample(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": line.get("timestamp"),
        "epoch": line.get("epoch"),
        "loss": line.get("loss"),
        "learning_rate": line.get("learning_rate"),
        "token_accuracy": line.get("token_accuracy"),
        "valid_loss": None,
        "valid_token_accuracy": None,
    }


def _latest(samples: list[dict[str, Any]], key: str) -> Any:
    return next((s[key] for s in reversed(samples) if s.get(key) is not None), None)


def overfitting_insight(samples: list[dict[str, Any]]) -> str | None:
    """The sentence of §9.10 when validation loss rose for 2 or more epochs in a row while the training loss
    fell: from the epoch with the lowest validation loss before the rise."""
    ends = [s for s in samples if s.get("valid_loss") is not None and s.get("loss") is not None]
    for i in range(len(ends) - 2):
        rising = ends[i]["valid_loss"] < ends[i + 1]["valid_loss"] < ends[i + 2]["valid_loss"]
        falling = ends[i]["loss"] > ends[i + 1]["loss"] > ends[i + 2]["loss"]
        if rising and falling:
            epoch = ends[i]["epoch"]
            best = f"{epoch:g}" if isinstance(epoch, (int, float)) else str(epoch)
            return (
                f"Validation loss rose after epoch {best}: later epochs may be over-fitting; consider "
                f"n_epochs={best} or early_stopping_patience."
            )
    return None


def training_view(
    status: TrainingJobStatus, *, n_epochs: int, previous: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The `training` object from a launcher's status: state, phase and the loss curve so far."""
    view = dict(previous or pending_training(n_epochs))
    state = {"queued": "pending"}.get(status.state, status.state)
    stamp = format_timestamp(now)
    samples = curve_samples(status.log)
    if samples and not view.get("started_at"):
        view["started_at"] = stamp
    if state == "running" and not view.get("started_at"):
        view["started_at"] = stamp
    if state in ("completed", "failed", "stopped") and not view.get("completed_at"):
        view["completed_at"] = stamp
    curve = dict(view["curve"])
    if samples:
        started = parse_timestamp(view["started_at"])
        minutes = max((now - started).total_seconds() / 60, 1e-6)
        latest = samples[-1]
        rate = (latest["epoch"] or 0) / minutes
        remaining = (n_epochs - (latest["epoch"] or 0)) / rate if rate > 0 else None
        # The trainer stamps each line; a line without a stamp counts from when it was first seen.
        if samples[-1]["timestamp"]:
            curve["latest_log_at"] = samples[-1]["timestamp"]
        elif len(samples) != len(curve["samples"]) or curve.get("latest_log_at") is None:
            curve["latest_log_at"] = stamp
        curve.update(
            latest_epoch=latest["epoch"],
            latest_loss=latest["loss"],
            previous_loss=samples[-2]["loss"] if len(samples) > 1 else None,
            latest_token_accuracy=latest["token_accuracy"],
            latest_valid_loss=_latest(samples, "valid_loss"),
            latest_valid_token_accuracy=_latest(samples, "valid_token_accuracy"),
            epoch_rate_per_minute=round(rate, 4),
            estimated_minutes_remaining=round(max(remaining, 0), 1) if remaining is not None else None,
            samples=_thin(samples),
        )
        for sample in curve["samples"]:
            sample["timestamp"] = sample["timestamp"] or curve["latest_log_at"]
    view.update(state=state, phase=_PHASES[state], last_updated_at=stamp, curve=curve)
    return view


def _insights(run: RunRecord, training: dict[str, Any], now: datetime) -> list[str]:
    insights = []
    curve = training["curve"]
    if curve["latest_epoch"] is not None and training["state"] == "running":
        insights.append(f"Training has reached epoch {curve['latest_epoch']:g} of {curve['target_epochs']}.")
    samples = [s for s in curve["samples"] if s.get("loss") is not None]
    if len(samples) > 1:
        first, last = samples[0]["loss"], samples[-1]["loss"]
        verb = "fell" if last < first else "rose"
        insights.append(f"Loss {verb} from {first:.2f} to {last:.2f}.")
    overfitting = overfitting_insight(curve["samples"])
    if overfitting is not None:
        insights.append(overfitting)
    if training["state"] == "running" and curve.get("latest_log_at"):
        idle = (now - parse_timestamp(curve["latest_log_at"])).total_seconds() / 60
        if idle >= STALE_LOG_MINUTES:
            insights.append(f"No training log for {int(idle)} minutes.")
    if run.eval_summary:
        summary = run.eval_summary
        tuned, base = summary.get("avg_score"), summary.get("baseline_avg_score")
        if tuned is not None and base is not None:
            insights.append(f"The tuned model scored {tuned:.2f} against the base model's {base:.2f}.")
        insights.extend(summary.get("output_diagnostics", {}).get("insights", []))
    return insights


def _summary(run: RunRecord) -> str:
    if run.status == "completed":
        return f"Run #{run.run_number} completed." + (
            f" Model {run.model_id} is registered." if run.model_id else ""
        )
    if run.status == "failed":
        return f"Run #{run.run_number} failed: {run.error}"
    if run.status == "cancelled":
        return f"Run #{run.run_number} was cancelled."
    return f"Run #{run.run_number} is {run.stage_label.lower()} ({run.progress_pct}%)."


def diagnostics(run: RunRecord, now: datetime) -> dict[str, Any]:
    from tt_core.models.evaluation import OutputDiagnostics

    training = run.training or pending_training(run.hyperparameters.n_epochs)
    output = (run.eval_summary or {}).get("output_diagnostics") or OutputDiagnostics.empty().model_dump(
        mode="json"
    )
    return {
        "run_id": run.id,
        "status": run.status,
        "stage": run.current_stage,
        "stage_label": run.stage_label,
        "progress_pct": run.progress_pct,
        "status_message": run.status_message,
        "summary": _summary(run),
        "insights": _insights(run, training, now),
        "output_diagnostics": output,
        "training": training,
        "generated_at": format_timestamp(now),
    }
