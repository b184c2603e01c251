"""The job's configuration: hyperparameters (SageMaker string values, coerced) and the container paths."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tt_trainer.errors import ConfigError
from tt_trainer.tiny import TINY_MODEL_ID

SM_ROOT = Path("/opt/ml")
CHANNELS = ("train", "eval", "base_model", "parent_model", "spec")
# Run options the workflow applies before the job starts; they may be passed through and are ignored here.
WORKFLOW_ONLY_HYPERPARAMETERS = frozenset(
    {"max_eval_examples", "max_test_eval_examples", "augment", "use_llm_judge", "split_ratios"}
)
_NONE_STRINGS = {"", "none", "null"}


class Hyperparameters(BaseModel):
    """The trainer's hyperparameters; names and limits of PRODUCT.md §9.1 plus trainer-only knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_model: str = Field(TINY_MODEL_ID, min_length=1)
    base_model_revision: str | None = None
    # A directory holding the base weights for base_model (the base_model channel takes precedence).
    base_model_dir: str | None = None
    n_epochs: int = Field(3, ge=1, le=20)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1, le=4096)
    lora_rank: int = Field(16, ge=1, le=1024)
    lora_alpha: int = Field(32, ge=1, le=8192)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    max_seq_length: int = Field(2048, ge=1, le=1_000_000)
    long_examples: Literal["error", "truncate", "skip"] = "truncate"
    max_output_tokens: int = Field(256, ge=1, le=1_000_000)
    eval_reserved_output_tokens: int = Field(64, ge=0, le=1_000_000)
    # Stop when the validation loss has not improved for this many epochs; the best epoch is the model.
    early_stopping_patience: int | None = Field(None, ge=1, le=20)
    # Trainer-only knobs.
    seed: int = 42
    packing: bool = True
    micro_batch_size: int | None = Field(None, ge=1, le=4096)
    # At most this many positions per forward pass (data.micro_batches' max_tokens): the memory plan's cap,
    # which the workflow passes with the plan's gradient_checkpointing (tt_core.runs.memory_plan).
    micro_batch_tokens: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    logging_steps: int = Field(1, ge=1)
    checkpoint_steps: int | None = Field(None, ge=1)
    gradient_checkpointing: bool | None = None
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    trust_remote_code: bool = False

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, data: Any) -> Any:
        # SageMaker can only send strings: "" / "none" / "null" stand for "not set".
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not (isinstance(v, str) and v.strip().lower() in _NONE_STRINGS and k in cls.model_fields)
            }
        return data

    @field_validator("long_examples", "lr_scheduler", "precision", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _reserved_within_budget(self) -> Hyperparameters:
        if self.eval_reserved_output_tokens > self.max_output_tokens:
            raise ValueError(
                f"eval_reserved_output_tokens ({self.eval_reserved_output_tokens}) must not exceed "
                f"max_output_tokens ({self.max_output_tokens})"
            )
        return self

    @property
    def effective_micro_batch_size(self) -> int:
        return min(self.batch_size, self.micro_batch_size or 4)


def _unquote(value: Any) -> Any:
    # The SageMaker Python SDK JSON-encodes every value, so a string arrives as '"abc"'.
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def _describe_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = ".".join(str(p) for p in item["loc"]) or "hyperparameters"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            parts.append(f"{name} is not a hyperparameter")
        elif item["loc"]:
            parts.append(f"{name} = {item['input']!r}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


def parse_hyperparameters(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[Hyperparameters, list[str]]:
    """Coerce raw values (and SM_HP_* overrides) into Hyperparameters; also return the ignored names."""
    values = {str(k): _unquote(v) for k, v in raw.items()}
    known = Hyperparameters.model_fields
    for key, value in (environ or {}).items():
        if key.startswith("SM_HP_") and key[6:].lower() in known:
            values[key[6:].lower()] = value
    ignored = sorted(k for k in values if k not in known and not k.startswith("sagemaker_"))
    unknown = [k for k in ignored if k not in WORKFLOW_ONLY_HYPERPARAMETERS]
    clean = {k: v for k, v in values.items() if k in known}
    try:
        return Hyperparameters.model_validate(clean), unknown
    except ValidationError as exc:
        raise ConfigError(f"Invalid hyperparameters: {_describe_errors(exc)}.") from None


def load_hyperparameters(
    path: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[Hyperparameters, list[str]]:
    """Read hyperparameters.json (absent = all defaults) and apply SM_HP_* overrides."""
    raw: Any = {}
    if path is not None and path.exists():
        try:
            raw = json.loads(path.read_text() or "{}")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"The hyperparameters file {path.name} is not valid JSON ({exc}).") from None
        if not isinstance(raw, dict):
            raise ConfigError(
                f"The hyperparameters file {path.name} must hold a JSON object of name/value pairs."
            )
    return parse_hyperparameters(raw, environ)


class JobPaths(BaseModel):
    """Where the job reads and writes; SageMaker's layout under /opt/ml unless overridden."""

    model_config = ConfigDict(frozen=True)

    hyperparameters_file: Path
    model_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    failure_file: Path
    channels: dict[str, Path]

    def channel(self, name: str) -> Path | None:
        """The channel's directory (or file), or None when the job was given no such channel."""
        path = self.channels.get(name)
        return path if path is not None and path.exists() else None


def resolve_paths(
    environ: Mapping[str, str],
    *,
    sm_root: Path | None = None,
    overrides: Mapping[str, Path | None] | None = None,
    channel_overrides: Mapping[str, Path] | None = None,
) -> JobPaths:
    """Paths from CLI overrides, then SageMaker/TT env vars, then the /opt/ml layout (or sm_root)."""
    root = sm_root or Path(environ.get("TT_SM_ROOT") or SM_ROOT)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}

    def pick(key: str, env: str, default: Path) -> Path:
        if key in given:
            return Path(given[key])
        return Path(environ[env]) if environ.get(env) else default

    config_dir = Path(environ.get("SM_INPUT_CONFIG_DIR") or root / "input" / "config")
    channels = {}
    for name in CHANNELS:
        env_value = environ.get(f"SM_CHANNEL_{name.upper()}")
        channels[name] = Path(env_value) if env_value else root / "input" / "data" / name
    channels.update({k: Path(v) for k, v in (channel_overrides or {}).items()})
    return JobPaths(
        hyperparameters_file=pick(
            "hyperparameters_file", "TT_HYPERPARAMETERS_FILE", config_dir / "hyperparameters.json"
        ),
        model_dir=pick("model_dir", "SM_MODEL_DIR", root / "model"),
        output_data_dir=pick("output_data_dir", "SM_OUTPUT_DATA_DIR", root / "output" / "data"),
        checkpoint_dir=pick("checkpoint_dir", "TT_CHECKPOINT_DIR", root / "checkpoints"),
        failure_file=pick("failure_file", "TT_FAILURE_FILE", root / "output" / "failure"),
        channels=channels,
    )
