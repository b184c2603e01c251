"""The built-in offline base model `tunedtensor/tiny-chat`: deterministic build, cached, no download."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

TINY_MODEL_ID = "tunedtensor/tiny-chat"
# Bump when anything below changes the built files: caches keyed on an older revision are rebuilt.
TINY_REVISION = "v1"
CONTEXT_LENGTH = 2048
CACHE_ENV = "TT_TINY_MODEL_CACHE"
# Written last, so a directory holding it is a complete build.
MARKER_FILE = "tiny_chat.json"

PAD, BOS, EOS, IM_START, IM_END = "<|pad|>", "<|bos|>", "<|eos|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, IM_START, IM_END]

# ChatML with {% generation %} markers so that transformers can return the assistant-token mask.
# The end-of-turn token sits inside the marked span: the model must learn to emit it.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORD_LINES = (
    "the a an and or but if then else when while of to in on at by for with from into over under",
    "about after before is are was were be been being has have had do does did can could will would",
    "should may might must not no yes i you he she it we they me him her us them my your his its our",
    "their this that these those here there what which who whom whose why how all any each every",
    "some many much more most few less least one two three four five six seven eight nine ten",
    "hundred thousand first second third last next new old good bad great small large big little",
    "long short high low right left true false null none item items name names value values key keys",
    "list lists number numbers text word words line lines file files data date time day days week",
    "month year user users assistant system message messages answer answers question questions input",
    "output result results example examples model models train training test eval score status error",
    "errors ok please thank thanks hello hi world describe explain summarize translate classify",
    "extract return give make take use find show red blue green yellow black white orange purple",
    "cube sphere cone cylinder pyramid ring square circle triangle customer order orders product",
    "products price total amount email phone address city country street code sentiment positive",
    "negative neutral category label summary title json field fields object array string because so",
    "than too very just only also even still already again always never often sometimes",
)
_WORDS = [word for line in _WORD_LINES for word in line.split()]
_PUNCTUATION_LINES = (
    "system\nuser\nassistant\nsystem\nuser\nassistant",
    '{"name": "value", "count": 3, "ok": true, "items": ["a", "b"], "score": 0.75, "note": null}',
    '[{"id": 1, "label": "positive"}, {"id": 2, "label": "negative"}]',
    "Hello! How are you? I'm fine: thanks. (Yes/no); 'quoted' \"double\" - dash -- em, comma.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 25 50 64 100 128 256 512 1000 2048.",
    "Prices: $1.99, $20, 15%, 3.5 kg, 12:30, 2026-01-31, #42, @user, a+b=c, x*y, 1/2, <tag> & more_",
    "Code: def f(x): return x + 1  # comment\n    if x > 0 and y < 1: print(x)\nfor i in range(10): pass",
)


def corpus() -> list[str]:
    """The fixed training corpus of the tokenizer: ordinary text, numbers, JSON and chat-like lines."""
    lines = list(_PUNCTUATION_LINES)
    words = _WORDS
    # A fixed arithmetic walk over the word list instead of a RNG: identical on every platform and version.
    for i in range(600):
        n = 6 + (i * 7) % 11
        sentence = " ".join(words[(i * 31 + j * 17) % len(words)] for j in range(n))
        lines.append(sentence.capitalize() + (".", "?", "!")[i % 3])
    for i in range(200):
        lines.append(f"Item {i} is a {words[(i * 13) % len(words)]} {words[(i * 29) % len(words)]}.")
        lines.append(
            f"Describe item {i}. Answer with {i % 10} words: {json.dumps({'id': i, 'ok': i % 2 == 0})}"
        )
    return lines


def _build_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        # The end-of-turn token is the eos: generation stops on it. pad is a separate token, so padding
        # never masks the eos out of the labels.
        eos_token=IM_END,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=CONTEXT_LENGTH,
    )


def build(out_dir: Path) -> Path:
    """Write the tokenizer and the randomly initialised (fixed-seed) model to out_dir."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # 0.02 (the default) leaves the tied embeddings too small for LoRA to make confident logits:
        # training stalls near loss 4 (FEASIBILITY §4). 0.1 learns.
        initializer_range=0.1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(20261121)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    weights = hashlib.sha256((out_dir / "model.safetensors").read_bytes()).hexdigest()
    marker = {"id": TINY_MODEL_ID, "revision": TINY_REVISION, "weights_sha256": weights}
    (out_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
    return out_dir


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "tuned-tensor" / "tiny-chat"


def is_built(path: Path) -> bool:
    try:
        marker = json.loads((path / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("revision") == TINY_REVISION


def ensure_tiny_model(cache_dir: Path | None = None) -> Path:
    """Return the cached tiny model directory, building it on first use."""
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if is_built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: a concurrent or interrupted build never leaves a half-written cache.
    staging = Path(tempfile.mkdtemp(prefix=".tiny-chat-build-", dir=target.parent))
    try:
        build(staging)
        if target.exists() and not is_built(target):
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:
            if not is_built(target):  # lost a race only if the winner left a complete build
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tt_trainer.tiny", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="build the tiny model into DIR (default: the cache)")
    build_cmd.add_argument("dir", nargs="?", type=Path, default=None)
    build_cmd.add_argument("--force", action="store_true", help="rebuild even when DIR holds a build")
    args = parser.parse_args(argv)
    target = args.dir if args.dir is not None else default_cache_dir()
    if args.force and target.exists():
        shutil.rmtree(target)
    path = ensure_tiny_model(target)
    print(json.dumps({"event": "tiny_model", "path": str(path), "revision": TINY_REVISION}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
