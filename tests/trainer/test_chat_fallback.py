"""A base model whose tokenizer has no chat template (StarCoder2-3B): ChatML with the eos ending each turn, a
warning, the same template in the artifact and in serving."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.jobs import Job, item_rows, run_in_process
from tt_trainer.base_model import CHATML_FALLBACK_TEMPLATE, ensure_chat_template
from tt_trainer.data import IGNORE_INDEX, ChatEncoder

EOS = "<|endoftext|>"  # StarCoder2's only special token: bos, eos and unk at once
MESSAGES = [
    {"role": "system", "content": "You describe items."},
    {"role": "user", "content": "Describe item 3."},
    {"role": "assistant", "content": "Item 3 is a red cube."},
]


def _base_tokenizer() -> Any:
    """A byte-level BPE tokenizer shaped like a base model's: no chat template, no ChatML tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tt_trainer.tiny import corpus

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,  # tiny-chat's embedding size: the tiny model's weights fit this tokenizer
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-chat's weights under a template-less base tokenizer, as a local base model directory."""
    from tt_trainer.tiny import MARKER_FILE, ensure_tiny_model

    base = shutil.copytree(ensure_tiny_model(), tmp_path_factory.mktemp("base") / "tiny-base")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", MARKER_FILE):
        (base / name).unlink()
    _base_tokenizer().save_pretrained(base)
    return base


def _tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_the_base_tokenizer_really_has_neither_template_nor_chatml_tokens(base_dir: Path) -> None:
    tokenizer = _tokenizer(base_dir)
    assert not tokenizer.chat_template
    assert len(tokenizer.tokenize("<|im_start|>")) > 1 and len(tokenizer.tokenize("<|im_end|>")) > 1


def test_chatml_with_the_eos_ending_each_turn(base_dir: Path) -> None:
    tokenizer = _tokenizer(base_dir)
    assert ensure_chat_template(tokenizer) is True
    assert tokenizer.chat_template == CHATML_FALLBACK_TEMPLATE
    assert ensure_chat_template(tokenizer) is False  # a template already there is kept
    encoder = ChatEncoder(tokenizer)
    assert encoder.render(MESSAGES) == (
        f"<|im_start|>system\nYou describe items.{EOS}\n<|im_start|>user\nDescribe item 3.{EOS}\n"
        f"<|im_start|>assistant\nItem 3 is a red cube.{EOS}\n"
    )
    ids, mask = encoder.encode(MESSAGES)
    labelled = [token for token, keep in zip(ids, mask, strict=True) if keep]
    # The label is the answer and its end of turn: the eos, one token the model stops on.
    assert tokenizer.decode(labelled) == f"Item 3 is a red cube.{EOS}"
    assert labelled[-1] == tokenizer.eos_token_id and labelled.count(tokenizer.eos_token_id) == 1
    prompt = encoder.prompt_ids(MESSAGES[:2])
    assert tokenizer.decode(prompt).endswith(f"Describe item 3.{EOS}\n<|im_start|>assistant\n")


def test_a_tokenizer_without_an_eos_gets_no_template(base_dir: Path) -> None:
    tokenizer = _tokenizer(base_dir)
    tokenizer.eos_token = None
    assert ensure_chat_template(tokenizer) is False and not tokenizer.chat_template


def test_training_warns_and_serving_renders_the_same_template(base_dir: Path, tmp_path: Path) -> None:
    from tt_serve.runtime import ModelRuntime

    job = Job(tmp_path / "job", {"base_model": str(base_dir), "batch_size": 4, "max_steps": 2})
    result = run_in_process(job.write(item_rows(8)))
    assert result.code == 0, result.stderr
    warnings = [e["message"] for e in result.of("warning") if "no chat template" in e["message"]]
    assert len(warnings) == 1 and EOS in warnings[0]
    assert result.of("model")[0]["attn_implementation"] == "sdpa"
    artifact_tokenizer = _tokenizer(job.model_dir)
    assert artifact_tokenizer.chat_template == CHATML_FALLBACK_TEMPLATE

    trained = ChatEncoder(artifact_tokenizer).prompt_ids(MESSAGES[:2])
    served = ModelRuntime.load(job.model_dir, device="cpu", base_model_dir=base_dir)
    assert served.tokenizer.chat_template == CHATML_FALLBACK_TEMPLATE
    assert served.prompt_ids(MESSAGES[:2]) == trained
    assert served.tokenizer.eos_token_id in served.stop_ids
    # The base model served alone (its own tokenizer, no artifact) renders the same prompt too.
    base_alone = ModelRuntime.load(None, base_model=str(base_dir), device="cpu")
    assert base_alone.prompt_ids(MESSAGES[:2]) == trained


def test_labels_of_a_training_row_end_on_the_eos(base_dir: Path) -> None:
    from tt_trainer.data import ChatRow, tokenize_rows

    tokenizer = _tokenizer(base_dir)
    ensure_chat_template(tokenizer)
    rows, _ = tokenize_rows(
        [ChatRow(messages=MESSAGES, where="row 1")], ChatEncoder(tokenizer), max_seq_length=512,
        long_examples="error",
    )  # fmt: skip
    labels = [label for label in rows[0].labels if label != IGNORE_INDEX]
    assert labels[-1] == tokenizer.eos_token_id
