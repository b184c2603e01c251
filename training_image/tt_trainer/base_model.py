"""Base model resolution (tiny-chat, local directory, pre-staged channel, Hugging Face cache) and loading."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tt_trainer.errors import BaseModelError, ParentModelError
from tt_trainer.tiny import MARKER_FILE, TINY_MODEL_ID, TINY_REVISION, ensure_tiny_model

BASE_MODEL_FILE = "base_model.json"
_TINY_ALIASES = {TINY_MODEL_ID, "tiny-chat"}


@dataclass(frozen=True)
class BaseModelSource:
    """Where the weights come from and the identity recorded in the artifact (never a local path)."""

    id: str
    revision: str | None
    path: Path
    from_hub_cache: bool = False


def _is_tiny(name: str) -> bool:
    return name.strip().lower() in _TINY_ALIASES


def _find_weights_dir(root: Path, scratch: Path, missing: str) -> Path:
    """A directory with config.json at root or below it; a tarball in root is extracted into scratch first.

    missing: the failure's sentence when there is neither."""
    for candidate in [root, *sorted(p.parent for p in root.glob("*/config.json"))]:
        if (candidate / "config.json").is_file():
            return candidate
    tarballs = sorted([*root.glob("*.tar.gz"), *root.glob("*.tgz")])
    if tarballs:
        target = scratch / "base_model"
        _extract(tarballs[0], target)
        return _find_weights_dir(target, scratch, missing)
    raise BaseModelError(missing)


def _extract(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            # The "data" filter refuses absolute paths, links out of the target and device files.
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BaseModelError(
            f"The base model's archive {archive.name} cannot be extracted ({exc})."
        ) from None


def _recorded_identity(directory: Path) -> tuple[str | None, str | None]:
    for name in (BASE_MODEL_FILE, MARKER_FILE):
        try:
            data = json.loads((directory / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            revision = data.get("revision")
            return data["id"], revision if isinstance(revision, str) else None
    return None, None


def _canonical(name: str) -> str:
    return TINY_MODEL_ID if _is_tiny(name) else name.strip()


def _hub_cache_dir() -> str | None:
    # Read at call time: huggingface_hub reads its env vars once, at import.
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def resolve_base_model(
    base_model: str, revision: str | None, *, staged_dir: Path | None, scratch: Path
) -> BaseModelSource:
    """Find the base weights without any download.

    Order: pre-staged weights (the base_model channel or base_model_dir) for the id base_model; the built-in
    tiny-chat; a local directory; the local Hugging Face cache."""
    if staged_dir is not None:
        # The channel is the deployment's staged copy (PRODUCT.md §14.6): the user knows it by that name.
        missing = (
            f"The staged weights of base model {_canonical(base_model)} hold no model (no config.json and no "
            ".tar.gz archive). Stage the model's weights again, or choose another base model."
        )
        path = _find_weights_dir(staged_dir, scratch, missing)
        _, recorded_revision = _recorded_identity(path)
        return BaseModelSource(id=_canonical(base_model), revision=revision or recorded_revision, path=path)
    if _is_tiny(base_model):
        return BaseModelSource(id=TINY_MODEL_ID, revision=TINY_REVISION, path=ensure_tiny_model())
    local = Path(base_model).expanduser()
    if local.is_dir():
        missing = (
            f"The base model directory {local.name} holds no model (no config.json, no .tar.gz archive)."
        )
        path = _find_weights_dir(local, scratch, missing)
        recorded_id, recorded_revision = _recorded_identity(path)
        # A directory carries its identity in base_model.json (or the tiny-chat marker), else its name.
        return BaseModelSource(id=recorded_id or path.name, revision=revision or recorded_revision, path=path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot = snapshot_download(
            base_model, revision=revision, local_files_only=True, cache_dir=_hub_cache_dir()
        )
    except (LocalEntryNotFoundError, ValueError, OSError):
        raise BaseModelError(
            f"Unknown base model {base_model!r}: no weights for it were staged for training and it is not in "
            "the training machine's Hugging Face cache (the trainer never downloads weights). Choose another "
            f"base model ({TINY_MODEL_ID} is always available), or have its weights staged; on the local "
            "stack, download the model into this machine's Hugging Face cache."
        ) from None
    path = Path(str(snapshot))
    # Snapshot directories are named by commit hash: the exact revision trained on.
    return BaseModelSource(id=base_model.strip(), revision=path.name, path=path, from_hub_cache=True)


def load_tokenizer(source: BaseModelSource, *, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"The tokenizer of base model {source.id} cannot be loaded ({exc}).") from None
    return tokenizer


# ChatML for tokenizers that ship no chat template (base models such as StarCoder2-3B). Each turn ends with
# the tokenizer's own eos, not with <|im_end|>: a base tokenizer has no <|im_end|> token, and adding one would
# resize the embeddings, whose new rows would then have to be trained and shipped beside the adapter (the
# artifact holds LoRA weights only). The eos is one token the base model already emits and every stop list
# holds (stop_token_ids), so the tuned model learns to end its turn with it and generation stops there. The
# <|im_start|>role headers are plain text: a few ordinary tokens the model learns like any other. With a
# ChatML tokenizer (eos <|im_end|>) this is ChatML exactly.
CHATML_FALLBACK_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a tokenizer without a chat template the ChatML fallback; True when it was given (the trainer
    warns, and saves the template with the artifact's tokenizer, so serving renders the same one)."""
    if getattr(tokenizer, "chat_template", None) or not getattr(tokenizer, "eos_token", None):
        # Without an eos nothing could end a turn: ChatEncoder then says the template is missing.
        return False
    tokenizer.chat_template = CHATML_FALLBACK_TEMPLATE
    return True


def choose_pad_id(tokenizer: Any) -> int:
    """A pad id distinct from every stop token; padding positions never carry labels whatever the id."""
    eos = tokenizer.eos_token_id
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != eos:
        return int(tokenizer.pad_token_id)
    # Instruct models often ship an undeclared reserved pad token (Llama 3: <|finetune_right_pad_id|>).
    for token in tokenizer.all_special_tokens + sorted(tokenizer.get_added_vocab()):
        if "pad" in token.lower():
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is not None and token_id != eos:
                tokenizer.pad_token = token
                return int(token_id)
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id != eos:
        return int(tokenizer.unk_token_id)
    return int(eos)


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """End-of-turn ids: the tokenizer's eos and every eos of the model's generation config."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, list | tuple):
        ids.update(int(i) for i in configured)
    if not ids:
        raise BaseModelError(
            "The base model defines no end-of-turn (eos) token, so generations could never stop."
        )
    return sorted(ids)


def load_model(
    source: BaseModelSource, *, dtype: torch.dtype, device: torch.device, trust_remote_code: bool
) -> Any:
    """The base weights in `dtype` on `device`, with the attention kernel chosen for both and the family
    (architecture.attn_implementation; the loaded model's choice is architecture.attention_of(model))."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    from tt_trainer.architecture import attn_implementation, attn_implementation_argument

    # A progress bar per load is noise in the job's log.
    transformers_logging.disable_progress_bar()
    config = load_config(source, trust_remote_code=trust_remote_code)
    choice = attn_implementation(config, device=device, dtype=dtype)
    options: dict[str, Any] = {}
    if choice is not None:
        options["attn_implementation"] = attn_implementation_argument(config, choice)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(
            source.path, dtype=dtype, local_files_only=True, trust_remote_code=trust_remote_code, **options
        )
    except (OSError, ValueError, KeyError) as exc:
        raise BaseModelError(f"The weights of base model {source.id} cannot be loaded ({exc}).") from None
    return model.to(device)


def config_dtype(config: Any) -> torch.dtype | None:
    """The dtype the base weights are published in (config.json's dtype, or torch_dtype in older files)."""
    for part in (config, config.get_text_config() if hasattr(config, "get_text_config") else config):
        value = getattr(part, "dtype", None) or getattr(part, "torch_dtype", None)
        if isinstance(value, str):
            value = getattr(torch, value.removeprefix("torch."), None)
        if isinstance(value, torch.dtype) and value.is_floating_point:
            return value
    return None


def load_config(source: BaseModelSource, *, trust_remote_code: bool) -> Any:
    """The model config alone: enough to size the rows before the (slow) weights load."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            source.path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError) as exc:
        raise BaseModelError(
            f"The configuration of base model {source.id} cannot be loaded ({exc})."
        ) from None


def context_length(config: Any) -> int | None:
    """max_position_embeddings of the (text part of the) model config, if it declares one."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def find_adapter_dir(channel: Path, scratch: Path) -> Path:
    """The parent adapter inside the parent_model channel: a directory or a model.tar.gz artifact."""
    found = sorted(channel.rglob("adapter_config.json"), key=lambda p: len(p.parts))
    if found:
        return found[0].parent
    tarballs = sorted([*channel.rglob("*.tar.gz"), *channel.rglob("*.tgz")])
    if tarballs:
        target = scratch / "parent_model"
        target.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(tarballs[0]) as tar:
                tar.extractall(target, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ParentModelError(f"The parent model archive cannot be extracted ({exc}).") from None
        found = sorted(target.rglob("adapter_config.json"), key=lambda p: len(p.parts))
        if found:
            return found[0].parent
    raise ParentModelError(
        "The parent model's files hold no adapter (no adapter_config.json and no model.tar.gz). Start a new "
        "run without parent_model_id, or with another parent model."
    )


def adapter_digest(adapter_dir: Path) -> str:
    """A content hash of the adapter (its config and weights): which parent a checkpoint continued, whatever
    the directory it arrived in is called."""
    digest = hashlib.sha256()
    for path in sorted(adapter_dir.glob("adapter_*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def parent_base_model_id(adapter_dir: Path) -> str | None:
    recorded, _ = _recorded_identity(adapter_dir)
    if recorded:
        return recorded
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, ValueError):
        raise ParentModelError("The parent adapter's adapter_config.json is not valid JSON.") from None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return str(name) if name else None
