"""Tiny random-weight models of every architecture family of the base model catalogue (PRODUCT.md §5).

Each keeps what sets its family apart (rope variants, multipliers, sliding windows shorter than a row,
per-layer embeddings, linear-attention layers) at hidden size 64 and 2 layers: a forward pass takes ms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VOCAB = 128
SLIDING_WINDOW = 8  # shorter than the test rows: the window itself must respect row boundaries
_COMMON: dict[str, Any] = {
    "vocab_size": VOCAB,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}


def _llama_3_2() -> Any:  # meta-llama/Llama-3.2-3B-Instruct
    from transformers import LlamaConfig

    rope = {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    return LlamaConfig(**_COMMON, rope_parameters=rope, tie_word_embeddings=True)


def _qwen3_5() -> Any:  # Qwen/Qwen3.5-2B, -4B: the hub config is the multimodal qwen3_5 one
    from transformers import Qwen3_5Config

    text = {
        **_COMMON,
        "head_dim": 16,
        "linear_key_head_dim": 16,
        "linear_value_head_dim": 16,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "layer_types": ["linear_attention", "full_attention"],
    }
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 64}
    return Qwen3_5Config(text_config=text, vision_config=vision)


def _gemma_4() -> Any:  # google/gemma-4-E2B-it, -E4B-it: per-layer embeddings, sliding + global layers
    from transformers import Gemma4Config

    text = {
        **_COMMON,
        "head_dim": 16,
        "global_head_dim": 32,
        "sliding_window": SLIDING_WINDOW,
        "layer_types": ["sliding_attention", "full_attention"],
        "vocab_size_per_layer_input": VOCAB,
        "hidden_size_per_layer_input": 8,
    }
    return Gemma4Config(text_config=text, vision_config=None, audio_config=None)


def _phi_4_mini() -> Any:  # microsoft/Phi-4-mini-instruct: phi3 with partial rotary embeddings
    from transformers import Phi3Config

    return Phi3Config(**_COMMON, partial_rotary_factor=0.75, tie_word_embeddings=True)


def _granite_3_3() -> Any:  # ibm-granite/granite-3.3-2b-instruct
    from transformers import GraniteConfig

    return GraniteConfig(
        **_COMMON,
        embedding_multiplier=12.0,
        logits_scaling=8.0,
        residual_multiplier=0.22,
        attention_multiplier=0.015625,
        tie_word_embeddings=True,
    )


def _starcoder2() -> Any:  # bigcode/starcoder2-3b: sliding-window attention, biases, layer norm
    from transformers import Starcoder2Config

    return Starcoder2Config(**_COMMON, sliding_window=SLIDING_WINDOW)


CONFIGS: dict[str, Callable[[], Any]] = {
    "gemma-4": _gemma_4,
    "qwen3.5": _qwen3_5,
    "llama-3.2": _llama_3_2,
    "phi-4-mini": _phi_4_mini,
    "granite-3.3": _granite_3_3,
    "starcoder2": _starcoder2,
}


# Qwen3.5's chat template, tools and images left out: the parts that place the think block. The last answer
# after the last user turn is rendered "<think>\n{reasoning}\n</think>\n\n{answer}" (an empty block when the
# answer holds none); the generation prompt opens a think block, or with enable_thinking=False writes an empty
# one.
QWEN3_5_CHAT_TEMPLATE = r"""{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content|trim + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content|trim %}
    {%- if message.role == "system" %}
        {%- if not loop.first %}
            {{- raise_exception('System message must be at the beginning.') }}
        {%- endif %}
    {%- elif message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if '</think>' in content %}
            {%- set reasoning_content = content.split('</think>')[0].rstrip('\n')
                .split('<think>')[-1].lstrip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- set reasoning_content = reasoning_content|trim %}
        {%- if loop.index0 > ns.last_query_index %}
            {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content + '\n</think>\n\n'
                + content }}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- else %}
        {{- '<think>\n' }}
    {%- endif %}
{%- endif %}"""


def qwen3_5_tokenizer(tiny_chat_dir: Any) -> Any:
    """tiny-chat's tokenizer made Qwen3.5-shaped: its chat template, and <think> and </think> as added
    tokens that decoding keeps (they are not special tokens in Qwen's tokenizer either)."""
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_dir)
    tokenizer.add_tokens([AddedToken("<think>", special=False), AddedToken("</think>", special=False)])
    tokenizer.chat_template = QWEN3_5_CHAT_TEMPLATE
    return tokenizer


def build(family: str, seed: int = 0, vocab: int = VOCAB) -> Any:
    """The family's tiny model as the trainer loads it (AutoModelForCausalLM), in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()  # "falling back to the PyTorch implementation" notes of hybrid models
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = CONFIGS[family]()
        text = config.get_text_config()
        for part in [config] if text is config else [config, text]:
            part.vocab_size = vocab
            if hasattr(part, "vocab_size_per_layer_input"):
                part.vocab_size_per_layer_input = vocab
        model = AutoModelForCausalLM.from_config(config)
    return model.eval()
