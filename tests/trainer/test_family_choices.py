"""Per-family choices: LoRA on the language model only, the attention kernel, Qwen3.5's kernel warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer import families
from tt_trainer import architecture
from tt_trainer.architecture import (
    FLASH_ATTENTION,
    attn_implementation,
    attn_implementation_argument,
    language_model,
    linear_attention_warning,
    lora_target_modules,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
# Module-name parts that belong to no language model: towers, their projections into the text space, the head.
NOT_LANGUAGE = ("vision", "visual", "audio", "embed_vision", "embed_audio", "lm_head")


def _gemma_4_multimodal() -> Any:
    """The tiny Gemma 4 with small vision and audio towers, as the real E2B/E4B checkpoints have them."""
    from transformers import AutoModelForCausalLM, Gemma4Config

    text = families.CONFIGS["gemma-4"]().text_config.to_dict()
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 16,
    }
    audio = {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "subsampling_conv_channels": [8, 4],
        "output_proj_dims": 32,
    }
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(
        Gemma4Config(text_config=text, vision_config=vision, audio_config=audio)
    ).eval()


def _qwen3_5_multimodal() -> Any:
    """Qwen3.5 as its hub checkpoints are published: the vision tower beside the hybrid language model."""
    from transformers import Qwen3_5ForConditionalGeneration

    torch.manual_seed(0)
    return Qwen3_5ForConditionalGeneration(families.CONFIGS["qwen3.5"]()).eval()


BUILDERS = {
    **{family: (lambda family=family: families.build(family)) for family in families.CONFIGS},
    "gemma-4 with vision and audio": _gemma_4_multimodal,
    "qwen3.5 with vision": _qwen3_5_multimodal,
}


def _adapted(model: Any, target_modules: Any) -> set[str]:
    """The modules peft puts a LoRA adapter on (names as in the base model)."""
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=target_modules))
    return {
        name.removeprefix("base_model.model.")
        for name, module in peft_model.named_modules()
        if isinstance(module, LoraLayer)
    }


def _language_prefix(model: Any) -> str:
    decoder = language_model(model)
    return next(name for name, module in model.named_modules() if module is decoder)


@pytest.mark.parametrize("variant", list(BUILDERS))
def test_lora_adapts_the_language_model_only(variant: str) -> None:
    model = BUILDERS[variant]()
    prefix = _language_prefix(model)
    targets = lora_target_modules(model)
    ours = _adapted(model, targets)
    every_linear = _adapted(BUILDERS[variant](), "all-linear")
    # Exactly peft's all-linear restricted to the language model: nothing of it lost, nothing else taken.
    assert ours == {name for name in every_linear if name.startswith(prefix + ".")}
    assert not [name for name in ours if any(part in name for part in NOT_LANGUAGE)]
    # Attention (or its fused qkv / linear-attention projections) and the MLP are still adapted.
    leaves = {name.rsplit(".", 1)[-1] for name in ours}
    assert leaves & {"q_proj", "qkv_proj", "in_proj_qkv"} and "o_proj" in leaves
    assert leaves & {"down_proj", "c_proj"}


@pytest.mark.parametrize("variant", ["gemma-4 with vision and audio", "qwen3.5 with vision"])
def test_all_linear_would_also_adapt_the_towers(variant: str) -> None:
    every_linear = _adapted(BUILDERS[variant](), "all-linear")
    towers = {name for name in every_linear if any(part in name for part in NOT_LANGUAGE)}
    assert towers  # what the targets leave out is really there to leave out
    if variant.startswith("gemma-4"):
        assert any("audio_tower" in n for n in towers) and any("vision_tower" in n for n in towers)
        assert any("embed_vision" in n for n in towers) and any("embed_audio" in n for n in towers)


def test_an_adapter_saved_with_the_targets_loads_onto_a_fresh_base(tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    model = _gemma_4_multimodal()
    config = LoraConfig(r=4, lora_alpha=8, target_modules=lora_target_modules(model), init_lora_weights=False)
    trained = get_peft_model(model, config)
    trained.save_pretrained(str(tmp_path))
    loaded = PeftModel.from_pretrained(_gemma_4_multimodal(), str(tmp_path))
    ids = torch.tensor([[5, 9, 17, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, trained(input_ids=ids).logits)


# --------------------------------------------------------------------------------------- attention


@pytest.fixture
def flash_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(architecture, "flash_attn_installed", lambda: True)


@pytest.mark.parametrize("family", list(families.CONFIGS))
def test_sdpa_on_the_cpu_and_wherever_flash_attn_is_missing(family: str) -> None:
    config = families.CONFIGS[family]()
    assert attn_implementation(config, device=CPU, dtype=torch.float32) == "sdpa"
    assert attn_implementation(config, device=CPU, dtype=torch.bfloat16) == "sdpa"
    if not torch.cuda.is_available():  # flash_attn cannot be importable on a machine without CUDA
        assert attn_implementation(config, device=CUDA, dtype=torch.bfloat16) == "sdpa"


@pytest.mark.parametrize("family", ["llama-3.2", "phi-4-mini", "granite-3.3", "starcoder2", "qwen3.5"])
def test_flash_attention_on_cuda_when_installed(family: str, flash_installed: None) -> None:
    config = families.CONFIGS[family]()
    assert attn_implementation(config, device=CUDA, dtype=torch.bfloat16) == FLASH_ATTENTION
    assert attn_implementation(config, device=CUDA, dtype=torch.float16) == FLASH_ATTENTION
    # flash-attn has no fp32 kernels: fp32 (precision forced, or a GPU without bf16/fp16 support) keeps sdpa.
    assert attn_implementation(config, device=CUDA, dtype=torch.float32) == "sdpa"
    assert attn_implementation(config, device=CPU, dtype=torch.bfloat16) == "sdpa"


def test_gemma_4s_global_head_dim_is_beyond_flash_attention(flash_installed: None) -> None:
    from transformers import Gemma4Config

    # The real E2B/E4B head dims: 256 in sliding layers, 512 in global ones; flash-attn 2 stops at 256.
    real = families.CONFIGS["gemma-4"]().text_config.to_dict()
    real.pop("per_layer_config", None)
    real.update(head_dim=256, global_head_dim=512)
    config = Gemma4Config(text_config=real)
    assert architecture.head_dims(config.get_text_config()) == [256, 512]
    assert attn_implementation(config, device=CUDA, dtype=torch.bfloat16) == "sdpa"


def test_soft_capped_attention_needs_eager_or_flash(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import Gemma2Config

    # Gemma 2 caps its attention logits, which sdpa cannot; Gemma 4 caps only its final logits.
    config = Gemma2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=16, attn_logit_softcapping=50.0)  # fmt: skip
    assert attn_implementation(config, device=CPU, dtype=torch.float32) == "eager"
    assert attn_implementation(config, device=CUDA, dtype=torch.bfloat16) == "eager"
    monkeypatch.setattr(architecture, "flash_attn_installed", lambda: True)
    assert attn_implementation(config, device=CUDA, dtype=torch.bfloat16) == FLASH_ATTENTION
    assert not getattr(families.CONFIGS["gemma-4"]().get_text_config(), "attn_logit_softcapping", None)


def test_a_class_without_sdpa_gets_eager_and_an_unknown_class_transformers_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = families.CONFIGS["llama-3.2"]()

    class NoSdpa:
        _supports_sdpa = False

    monkeypatch.setattr(architecture, "causal_lm_class", lambda c: NoSdpa)
    assert attn_implementation(config, device=CPU, dtype=torch.float32) == "eager"
    monkeypatch.setattr(architecture, "causal_lm_class", lambda c: None)
    assert attn_implementation(config, device=CPU, dtype=torch.float32) is None


def test_a_multimodal_config_sets_the_text_models_attention_only() -> None:
    config = _gemma_4_multimodal().config
    assert attn_implementation_argument(config, "sdpa") == {"": "sdpa", "text_config": "sdpa"}
    assert attn_implementation_argument(families.CONFIGS["llama-3.2"](), "sdpa") == "sdpa"


def test_load_model_sets_the_choice_and_keeps_the_audio_towers_own(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from tt_trainer.base_model import BaseModelSource, load_model

    _gemma_4_multimodal().save_pretrained(tmp_path)
    # A plain "sdpa" would be forced on the audio tower, which has eager only: loading would fail.
    with pytest.raises(ValueError, match="Gemma4AudioModel does not support"):
        AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="sdpa")
    source = BaseModelSource(id="acme/gemma-4-tiny", revision=None, path=tmp_path)
    model = load_model(source, dtype=torch.float32, device=CPU, trust_remote_code=False)
    assert architecture.attention_of(model) == "sdpa"
    assert model.config.audio_config._attn_implementation == "eager"


# --------------------------------------------------------------------------------------- Qwen3.5's kernels


@pytest.mark.parametrize("missing", [{"fla", "causal_conv1d"}, {"causal_conv1d"}, set()])
def test_linear_attention_on_a_gpu_without_its_kernels_warns(
    missing: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(architecture, "kernel_importable", lambda module: module not in missing)
    qwen = families.CONFIGS["qwen3.5"]()  # the hub's multimodal config: its layer types are the text part's
    message = linear_attention_warning(qwen, CUDA)
    if not missing:
        assert message is None
        return
    assert message is not None and "slower PyTorch fallback" in message
    assert ("flash-linear-attention" in message) == ("fla" in missing)
    assert "causal-conv1d" in message
    # The kernels are CUDA-only, and models without linear attention do not need them.
    assert linear_attention_warning(qwen, CPU) is None
    assert linear_attention_warning(families.CONFIGS["llama-3.2"](), CUDA) is None


def test_the_job_warns_once_when_cuda_would_run_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's check, with CUDA faked at the one place it is asked (the job itself trains on the CPU): a
    Qwen3.5-shaped base on a 'GPU' without the kernels gives exactly one warning event."""
    from tests.trainer.jobs import Job, item_rows, run_in_process
    from tt_trainer.tiny import ensure_tiny_model

    families.build("qwen3.5", vocab=1024).save_pretrained(tmp_path / "qwen")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (tmp_path / "qwen" / name).write_bytes((ensure_tiny_model() / name).read_bytes())
    monkeypatch.setattr(architecture, "kernel_importable", lambda module: False)
    real_warning = architecture.linear_attention_warning
    monkeypatch.setattr(
        architecture, "linear_attention_warning", lambda config, device: real_warning(config, CUDA)
    )
    job = Job(tmp_path / "job", {"base_model": str(tmp_path / "qwen"), "batch_size": 4, "max_steps": 1})
    result = run_in_process(job.write(item_rows(8)))
    assert result.code == 0, result.stderr
    kernels = [e for e in result.of("warning") if "linear-attention" in e["message"]]
    assert len(kernels) == 1
    assert result.of("model")[0]["attn_implementation"] == "sdpa"
