"""The trainer's errors: each carries a one-paragraph reason for the failure file."""

from __future__ import annotations

# What a run can change when training runs out of memory (the trainer's own micro-batch size is not one).
MEMORY_REMEDY = "Lower max_seq_length, or batch_size below 4, and start a new run."


class TrainerError(Exception):
    """A failure with a reason fit for people: no stack trace, no paths of the training machine."""

    exit_code = 1


class ConfigError(TrainerError):
    """Hyperparameters or paths are invalid."""


class DataError(TrainerError):
    """A channel is empty, malformed, or its rows cannot be trained on."""


class BaseModelError(TrainerError):
    """The base model cannot be found or loaded."""


class DeviceError(TrainerError):
    """The job has GPUs that torch cannot use."""


class ParentModelError(TrainerError):
    """The parent adapter cannot be found, loaded or continued."""


class TrainingDivergedError(TrainerError):
    """The loss stopped being a finite number: the weights are broken and no model is saved."""


class TrainingStoppedError(TrainerError):
    """SIGTERM arrived: a checkpoint was written and the job stops so that it can be resumed."""

    # 128 + SIGTERM, what a shell reports for a process ended by the signal.
    exit_code = 143
