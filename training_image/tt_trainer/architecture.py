"""Per-family choices: the layers LoRA adapts, the attention kernel, Qwen3.5's linear-attention kernels."""

from __future__ import annotations

import importlib
from typing import Any

import torch

FLASH_ATTENTION = "flash_attention_2"
# flash-attn 2's kernels take head dims up to 256: Gemma 4's global layers (512) are out of its reach.
FLASH_ATTENTION_MAX_HEAD_DIM = 256
# The packages transformers imports for Gated DeltaNet layers (module name → pip distribution).
LINEAR_ATTENTION_KERNELS = {"fla": "flash-linear-attention", "causal_conv1d": "causal-conv1d"}


# ------------------------------------------------------------------------------------------- LoRA targets


def lora_target_modules(model: Any) -> list[str]:
    """peft `target_modules`: the full name of every linear layer of the language model, and nothing else.

    peft's "all-linear" takes every nn.Linear but the output layer: on Gemma 4 that is also the vision and
    audio towers and their embedders into the text space, on a multimodal Qwen3.5 its vision tower. The rows
    are text only, so those adapters would never receive a gradient, yet they cost memory and ship in every
    artifact. Full names match exactly (peft shortens a long list to the shortest suffixes that still match
    only these), and a serving runtime that loads the base with the same class finds the same modules."""
    decoder = language_model(model)
    prefix = next(name for name, module in model.named_modules() if module is decoder)
    names = [
        f"{prefix}.{name}" if prefix else name
        for name, module in decoder.named_modules()
        if name and _is_linear(module)
    ]
    if not names:
        raise ValueError(f"{type(model).__name__} has no linear layers in its language model to adapt")
    return names


def language_model(model: Any) -> torch.nn.Module:
    """The text decoder (embeddings and transformer layers, no lm_head) of a causal or multimodal model."""
    get_decoder = getattr(model, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    if not isinstance(decoder, torch.nn.Module):
        decoder = getattr(model, "model", None)
    if not isinstance(decoder, torch.nn.Module):
        raise ValueError(f"{type(model).__name__}: cannot find its language model")
    return decoder


def _is_linear(module: torch.nn.Module) -> bool:
    # transformers' Conv1D is GPT-2's linear layer with transposed weights; peft adapts it as one.
    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


# ------------------------------------------------------------------------------------------- attention


def text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def attn_implementation(config: Any, *, device: torch.device, dtype: torch.dtype) -> str | None:
    """The language model's attention kernel for this device and weight dtype.

    flash_attention_2 on CUDA when the flash_attn package is importable, the weights are half precision and
    the family's class and head dims allow it (its varlen kernels are what keeps packed rows apart at no
    cost); eager where attention logits are soft-capped (Gemma 2 style: sdpa cannot cap them; Gemma 4 caps
    only its final logits, so it needs no eager); eager for a class without sdpa; sdpa otherwise (CPU, MPS,
    fp32). None: a remote-code class transformers does not know, left to transformers' own default."""
    text = text_config(config)
    model_class = causal_lm_class(config)
    if model_class is None:
        return None
    flash = (
        device.type == "cuda"
        and dtype in (torch.float16, torch.bfloat16)
        and bool(getattr(model_class, "_supports_flash_attn", False))
        and max(head_dims(text), default=FLASH_ATTENTION_MAX_HEAD_DIM + 1) <= FLASH_ATTENTION_MAX_HEAD_DIM
        and flash_attn_installed()
    )
    if getattr(text, "attn_logit_softcapping", None):
        return FLASH_ATTENTION if flash else "eager"
    if flash:
        return FLASH_ATTENTION
    return "sdpa" if getattr(model_class, "_supports_sdpa", False) else "eager"


def attn_implementation_argument(config: Any, choice: str) -> str | dict[str, str]:
    """from_pretrained's attn_implementation: for a multimodal config, the choice for the model and its text
    part only. A plain string would be forced on every tower too, and Gemma 4's audio tower supports only
    eager: loading would fail."""
    for key in getattr(config, "sub_configs", None) or {}:
        if getattr(config, key, None) is text_config(config) and text_config(config) is not config:
            return {"": choice, key: choice}
    return choice


def causal_lm_class(config: Any) -> type | None:
    """The class AutoModelForCausalLM builds for this config, if transformers knows it."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        model_class: Any = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except KeyError:
        return None
    return model_class if isinstance(model_class, type) else None


def head_dims(text: Any) -> list[int]:
    """Every attention layer's head dim (Gemma 4's global layers have their own); [] when unknown."""
    try:
        per_layer = getattr(text, "per_layer_config", None)
        views = (
            [per_layer[i] for i in range(int(text.num_hidden_layers))] if per_layer is not None else [text]
        )
        return sorted({_head_dim(view) for view in views})
    except Exception:  # a config shaped unlike any transformers family: never pick flash for it
        return []


def _head_dim(config: Any) -> int:
    value = getattr(config, "head_dim", None)
    return int(value) if value else int(config.hidden_size // config.num_attention_heads)


def flash_attn_installed() -> bool:
    from transformers.utils import is_flash_attn_2_available

    return bool(is_flash_attn_2_available())


def attention_of(model: Any) -> str:
    """The attention kernel the loaded language model runs."""
    return str(getattr(text_config(model.config), "_attn_implementation", None) or "sdpa")


# ------------------------------------------------------------------------------------------- linear attention


def has_linear_attention(config: Any) -> bool:
    return "linear_attention" in (getattr(text_config(config), "layer_types", None) or [])


def kernel_importable(module: str) -> bool:
    # transformers binds these kernels when it imports the modeling module and falls back on any exception
    # (a CUDA extension built for another torch fails at import, not at install): import, don't just look.
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


def linear_attention_warning(config: Any, device: torch.device) -> str | None:
    """The warning for a model with linear-attention layers (Qwen3.5's Gated DeltaNet) trained on a GPU
    without the fused kernels: transformers then runs its PyTorch fallback, correct but several times
    slower. None on the CPU (the kernels are CUDA-only) and when they are there."""
    if device.type != "cuda" or not has_linear_attention(config):
        return None
    missing = [
        package for module, package in LINEAR_ATTENTION_KERNELS.items() if not kernel_importable(module)
    ]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{' and '.join(missing)} {verb} not installed in the training image: this base model's "
        "linear-attention layers train with transformers' slower PyTorch fallback"
    )
