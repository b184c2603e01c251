"""Chat rows: reading, assistant-only labels, long-row policies, packing without cross-row attention."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.jobs import item_rows, write_jsonl
from tt_trainer.data import (
    IGNORE_INDEX,
    ChatEncoder,
    ChatRow,
    EvalRow,
    TokenizedRow,
    eval_prompt,
    kept_input_tokens,
    load_eval_rows,
    load_train_rows,
    micro_batches,
    pack_bins,
    packed_batch,
    padded_batch,
    tokenize_rows,
)
from tt_trainer.errors import DataError
from tt_trainer.train import loss_sum

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "First question?"},
    {"role": "assistant", "content": "First answer."},
    {"role": "user", "content": "Second question?"},
    {"role": "assistant", "content": "Second answer, longer than the first."},
]


def _spans(mask: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    return spans


def _without_markers(tokenizer: Any) -> Any:
    import copy

    plain = copy.deepcopy(tokenizer)
    plain.chat_template = tokenizer.chat_template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    return plain


@pytest.mark.parametrize("markers", [True, False], ids=["generation-markers", "rendered-prefixes"])
def test_assistant_mask_covers_exactly_the_assistant_turns(tokenizer: Any, markers: bool) -> None:
    encoder = ChatEncoder(tokenizer if markers else _without_markers(tokenizer))
    assert encoder.uses_generation_markers is markers
    ids, mask = encoder.encode(CONVERSATION)
    spans = _spans(mask)
    assert [tokenizer.decode(ids[a:b]) for a, b in spans] == [
        "First answer.<|im_end|>",
        "Second answer, longer than the first.<|im_end|>",
    ]
    # Every other token (system, user turns, role headers, the newline after end-of-turn) is unmasked.
    rendered = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    assert "First answer" not in rendered and "Second answer" not in rendered
    assert rendered.count("<|im_start|>assistant\n") == 2


def test_both_mask_methods_agree(tokenizer: Any) -> None:
    for row in [CONVERSATION, *[r["messages"] for r in item_rows(5)]]:
        assert ChatEncoder(tokenizer).encode(row) == ChatEncoder(_without_markers(tokenizer)).encode(row)


def test_labels_keep_the_end_of_turn_token(encoder: ChatEncoder, tokenizer: Any) -> None:
    rows, report = tokenize_rows(
        [ChatRow(CONVERSATION, "t")], encoder, max_seq_length=512, long_examples="error"
    )
    row = rows[0]
    assert row.labels[0] == IGNORE_INDEX
    learnt = [t for t in row.labels if t != IGNORE_INDEX]
    assert learnt.count(tokenizer.eos_token_id) == 2
    assert tokenizer.pad_token_id not in learnt
    assert report.label_tokens == len(learnt) and report.kept == 1 and report.tokens == len(row)


# ------------------------------------------------------------------------------------------- reading


def test_reads_every_jsonl_file_of_a_channel_and_skips_blank_lines(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", item_rows(2))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_text("\n" + json.dumps(item_rows(1)[0]) + "\n\n")
    rows = load_train_rows(tmp_path)
    assert len(rows) == 3
    assert rows[2].where == "training example 3"  # counted over the files, as the user knows the rows


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "The training data holds no training examples."),
        ('{"messages": [}\n', "The training data is malformed: training example 1 is not JSON"),
        ("[1]\n", "training example 1 is not a JSON object"),
        ('{"text": "hi"}\n', 'has no "messages" list'),
        ('{"messages": [{"role": "bot", "content": "x"}]}\n', "message 1 has role 'bot'"),
        ('{"messages": [{"role": "user", "content": 3}]}\n', "message 1 has no text content"),
        (
            '{"messages": [{"role": "user", "content": "hi"}]}\n',
            "Training example 1 has no assistant message",
        ),
    ],
)
def test_bad_training_rows_fail_clearly(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "train.jsonl").write_text(content)
    with pytest.raises(DataError) as info:
        load_train_rows(tmp_path)
    assert message in str(info.value)
    assert "channel" not in str(info.value) and "train.jsonl" not in str(info.value)


def test_a_channel_without_jsonl_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"The training job received no training examples\."):
        load_train_rows(tmp_path)


def test_eval_rows_take_expected_or_the_final_assistant_turn(tmp_path: Path) -> None:
    rows = item_rows(2)
    write_jsonl(
        tmp_path / "eval.jsonl",
        [
            {"id": "a", "messages": rows[0]["messages"][:2], "expected": "X", "split": "test"},
            {"messages": rows[1]["messages"]},
        ],
    )
    first, second = load_eval_rows(tmp_path)
    assert (first.id, first.expected, first.split, first.input) == ("a", "X", "test", "Describe item 0.")
    assert second.id == "2" and second.expected == rows[1]["messages"][2]["content"]
    assert [m["role"] for m in second.messages] == ["system", "user"] and second.split is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"messages": [{"role": "user", "content": "q"}]}, "has no expected answer"),
        ({"messages": [{"role": "system", "content": "s"}], "expected": "a"}, "must end with a user message"),
    ],
)
def test_bad_eval_rows_fail_clearly(tmp_path: Path, row: dict[str, Any], message: str) -> None:
    write_jsonl(tmp_path / "eval.jsonl", [row])
    with pytest.raises(DataError, match=message):
        load_eval_rows(tmp_path)


def test_eval_ids_must_be_unique(tmp_path: Path) -> None:
    row = {"id": "x", "messages": [{"role": "user", "content": "q"}], "expected": "a"}
    write_jsonl(tmp_path / "eval.jsonl", [row, row])
    with pytest.raises(DataError, match="repeats the id 'x'"):
        load_eval_rows(tmp_path)


# ------------------------------------------------------------------------------------------- long rows


def _long_row(words: int, answer_words: int = 4, where: str = "t") -> ChatRow:
    return ChatRow(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": " ".join(f"word{i}" for i in range(words))},
            {"role": "assistant", "content": " ".join(["answer"] * answer_words)},
        ],
        where,
    )


def test_error_policy_names_the_first_five_rows(encoder: ChatEncoder) -> None:
    rows = [_long_row(60, where=f"training example {i}") for i in range(1, 8)]
    with pytest.raises(DataError) as info:
        tokenize_rows(rows, encoder, max_seq_length=64, long_examples="error")
    text = str(info.value)
    # Each row is named by its number and the start of its input, so the user can find it.
    assert text.startswith(
        '7 training examples are longer than max_seq_length (64 tokens): training example 1 ("word0 word1 '
    )
    assert "training example 5 (" in text and "example 6" not in text and "long_examples" in text
    assert re.search(r'training example 1 \("word0 word1 [^"]*…", \d+ tokens\)', text), text
    assert "train.jsonl" not in text


def test_skip_policy_counts(encoder: ChatEncoder) -> None:
    rows = [_long_row(3), _long_row(80), _long_row(5), _long_row(90)]
    kept, report = tokenize_rows(rows, encoder, max_seq_length=64, long_examples="skip")
    assert (report.rows, report.kept, report.skipped, report.truncated) == (4, 2, 2, 0)
    assert all(len(r) <= 64 for r in kept)


def test_truncate_cuts_the_input_before_the_answer(encoder: ChatEncoder, tokenizer: Any) -> None:
    kept, report = tokenize_rows([_long_row(80)], encoder, max_seq_length=128, long_examples="truncate")
    assert report.truncated == 1 and len(kept[0]) <= 128
    answer = tokenizer.decode([t for t in kept[0].labels if t != IGNORE_INDEX])
    assert answer == "answer answer answer answer<|im_end|>"  # the answer survived whole
    assert "word0" in tokenizer.decode(kept[0].input_ids)  # the input lost its end, not its start


def _kept_input(tokenizer: Any, row: Any) -> str:
    text = tokenizer.decode(row.input_ids)
    return text.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]


@pytest.mark.parametrize(("words", "max_len"), [(200, 240), (20, 80)], ids=["a-quarter", "32-tokens"])
def test_truncate_keeps_the_start_of_the_input_then_cuts_the_answer(
    encoder: ChatEncoder, tokenizer: Any, words: int, max_len: int
) -> None:
    """PRODUCT.md §9.5: at least the input's first quarter (and 32 tokens when it has them) stays; the answer
    is cut next, and a cut answer has no end-of-turn token: the model must not learn to stop mid-answer."""
    row = _long_row(words, answer_words=120)
    user_input = row.messages[1]["content"]
    n = len(encoder.content_ids(user_input))
    floor = kept_input_tokens(n)
    # 200 words: a quarter is more than 32 tokens; 20 words: 32 tokens are more than a quarter.
    assert floor == (math.ceil(n / 4) if words == 200 else 32) < n
    kept, report = tokenize_rows([row], encoder, max_seq_length=max_len, long_examples="truncate")
    assert report.truncated == 1 and len(kept[0]) == max_len
    kept_input = _kept_input(tokenizer, kept[0])
    assert user_input.startswith(kept_input)
    assert floor <= len(encoder.content_ids(kept_input)) <= floor + 2  # no more than needed
    learnt = [t for t in kept[0].labels if t != IGNORE_INDEX]
    assert len(learnt) > 5 and tokenizer.eos_token_id not in learnt
    assert " ".join(["answer"] * 120).startswith(tokenizer.decode(learnt).strip())
    assert tokenizer.decode(kept[0].input_ids).endswith(
        tokenizer.decode(learnt)
    )  # the row ends in the answer


def test_the_kept_share_of_a_cut_input() -> None:
    assert [kept_input_tokens(n) for n in (0, 10, 32, 100, 128, 400, 401)] == [0, 10, 32, 32, 32, 100, 101]


def test_an_answer_that_loses_only_its_end_of_turn_token_is_cut(encoder: ChatEncoder, tokenizer: Any) -> None:
    row = _long_row(2, answer_words=10)
    full, _ = encoder.encode(row.messages)
    end = max(i for i, t in enumerate(full) if t == tokenizer.eos_token_id)  # the answer's end of turn
    kept, report = tokenize_rows([row], encoder, max_seq_length=end, long_examples="truncate")
    assert report.truncated == 1 and kept[0].input_ids == full[:end]
    assert tokenizer.eos_token_id not in kept[0].labels


def test_truncate_skips_rows_that_cannot_fit(encoder: ChatEncoder) -> None:
    hopeless = ChatRow(
        [
            {"role": "system", "content": " ".join(["system"] * 200)},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
        ],
        "t",
    )
    _, report = tokenize_rows([hopeless, _long_row(2)], encoder, max_seq_length=48, long_examples="truncate")
    assert (report.kept, report.skipped, report.truncated) == (1, 1, 0)
    with pytest.raises(DataError) as info:
        tokenize_rows([hopeless, hopeless], encoder, max_seq_length=48, long_examples="truncate")
    # Truncation skips nothing by choice: the message says why not even a cut row fits.
    text = str(info.value)
    assert text.startswith("No training example fits max_seq_length (48 tokens), even truncated:")
    assert "skipped" not in text and "system prompt" in text


def test_skip_policy_says_every_row_was_skipped(encoder: ChatEncoder) -> None:
    with pytest.raises(DataError) as info:
        tokenize_rows([_long_row(80), _long_row(90)], encoder, max_seq_length=64, long_examples="skip")
    text = str(info.value)
    assert text.startswith("No training example fits max_seq_length (64 tokens):")
    assert "all 2 are longer and long_examples is skip" in text


def test_eval_prompt_leaves_room_for_the_answer(encoder: ChatEncoder) -> None:
    row = EvalRow(id="1", messages=_long_row(100).messages[:2], expected="x", split=None, where="e")
    ids, truncated = eval_prompt(encoder, row, 40)
    assert truncated and len(ids) <= 40
    assert encoder.decode(ids).endswith("assistant\n")
    short = EvalRow(id="2", messages=_long_row(2).messages[:2], expected="x", split=None, where="e")
    assert eval_prompt(encoder, short, 40)[1] is False


# ------------------------------------------------------------------------------------------- batching


def test_pack_bins_respects_capacity_and_uses_every_row() -> None:
    lengths = [30, 5, 17, 29, 3, 12, 30, 8]
    bins = pack_bins(lengths, 30)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 30 for b in bins)
    assert [sorted(lengths[i] for i in b) for b in bins] == [[30], [30], [29], [12, 17], [3, 5, 8]]


def _mixed_rows(encoder: ChatEncoder, n: int = 9) -> list[Any]:
    rows = [_long_row(3 + 7 * (i % 5), answer_words=1 + 3 * (i % 4)) for i in range(n)]
    kept, _ = tokenize_rows(rows, encoder, max_seq_length=512, long_examples="error")
    return kept


def test_packed_positions_restart_per_row(encoder: ChatEncoder) -> None:
    rows = _mixed_rows(encoder, 3)
    batch = packed_batch([rows], pad_id=0)
    assert batch.attention_mask is None
    starts = (batch.position_ids[0] == 0).nonzero().flatten().tolist()
    assert starts == [0, len(rows[0]), len(rows[0]) + len(rows[1])]
    assert batch.tokens == sum(len(r) for r in rows)


def test_packed_and_padded_batches_give_the_same_loss_and_gradients(
    encoder: ChatEncoder, tiny_model: Any
) -> None:
    rows = _mixed_rows(encoder)
    capacity = max(len(r) for r in rows)

    def loss_and_grad(batches: list[Any]) -> tuple[float, torch.Tensor]:
        tiny_model.zero_grad()
        labels = sum(b.label_tokens for b in batches)
        total = sum(loss_sum(tiny_model, b) for b in batches) / labels
        total.backward()
        return total.item(), tiny_model.model.layers[0].self_attn.q_proj.weight.grad.clone()

    padded = micro_batches(rows, packing=False, micro_batch_size=4, pack_capacity=capacity, pad_id=0)
    packed = micro_batches(rows, packing=True, micro_batch_size=4, pack_capacity=capacity, pad_id=0)
    assert sum(b.positions for b in packed) < sum(b.positions for b in padded)
    assert any(
        b.position_ids.eq(0).sum() > b.input_ids.shape[0] for b in packed
    )  # rows really share sequences
    loss_padded, grad_padded = loss_and_grad(padded)
    loss_packed, grad_packed = loss_and_grad(packed)
    assert loss_packed == pytest.approx(loss_padded, rel=1e-5)
    torch.testing.assert_close(grad_packed, grad_padded, rtol=1e-4, atol=1e-6)


def test_rows_in_a_pack_do_not_attend_to_each_other(encoder: ChatEncoder, tiny_model: Any) -> None:
    first, second = _mixed_rows(encoder, 2)
    changed = type(first)(input_ids=[first.input_ids[0], *[7] * (len(first) - 1)], labels=first.labels)
    with torch.no_grad():
        a = tiny_model(**_forward_args(packed_batch([[first, second]], pad_id=0))).logits[0, len(first) :]
        b = tiny_model(**_forward_args(packed_batch([[changed, second]], pad_id=0))).logits[0, len(first) :]
        alone = tiny_model(**_forward_args(padded_batch([second], pad_id=0))).logits[0]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, alone, rtol=1e-4, atol=1e-5)


def _forward_args(batch: Any) -> dict[str, Any]:
    # use_cache=False matters: with a cache, transformers does not look for packed sequences in position_ids.
    return {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
        "use_cache": False,
    }


def test_every_example_answer_fits_the_answer_budget_the_models_tests_use(tokenizer: Any) -> None:
    from tests.integration.test_models_api import ANSWER_TOKENS, EXAMPLE

    longest = max(len(tokenizer(e["output"])["input_ids"]) for e in EXAMPLE["examples"])
    assert longest + 1 <= ANSWER_TOKENS  # + the end-of-turn token


def _rows_of(lengths: list[int]) -> list[TokenizedRow]:
    return [TokenizedRow(input_ids=[5] * n, labels=[IGNORE_INDEX] + [5] * (n - 1)) for n in lengths]


@pytest.mark.parametrize("packing", [False, True])
@pytest.mark.parametrize("max_tokens", [None, 1, 7, 20, 31, 64, 1000])
def test_a_token_cap_bounds_every_micro_batch(packing: bool, max_tokens: int | None) -> None:
    lengths = [12, 3, 30, 7, 7, 19, 1, 25, 9, 16]
    rows = _rows_of(lengths)
    batches = micro_batches(
        rows, packing=packing, micro_batch_size=4, pack_capacity=32, pad_id=0, max_tokens=max_tokens
    )
    assert sum(b.tokens for b in batches) == sum(lengths)  # every row, once
    assert sum(b.label_tokens for b in batches) == sum(n - 1 for n in lengths)
    for batch in batches:
        assert batch.input_ids.shape[0] <= 4
        if max_tokens is not None and batch.positions > max_tokens:
            # Only a single row longer than the cap may exceed it, alone in its pass.
            assert batch.input_ids.shape[0] == 1 and batch.tokens > max_tokens
            assert batch.tokens == batch.positions


def test_without_a_cap_micro_batches_are_unchanged() -> None:
    rows = _rows_of([12, 3, 30, 7, 7, 19, 1, 25, 9, 16])
    for packing in (False, True):
        plain = micro_batches(rows, packing=packing, micro_batch_size=3, pack_capacity=32, pad_id=0)
        capped = micro_batches(
            rows, packing=packing, micro_batch_size=3, pack_capacity=32, pad_id=0, max_tokens=10**6
        )
        assert [b.input_ids.tolist() for b in plain] == [b.input_ids.tolist() for b in capped]
    padded = micro_batches(rows, packing=False, micro_batch_size=3, pack_capacity=32, pad_id=0)
    assert [b.input_ids.shape for b in padded] == [(3, 30), (3, 19), (3, 25), (1, 16)]


def test_padded_passes_count_their_padding_against_the_cap() -> None:
    rows = _rows_of([10, 30, 10, 10, 10])
    batches = micro_batches(
        rows, packing=False, micro_batch_size=4, pack_capacity=64, pad_id=0, max_tokens=60
    )
    # 10 then 30 pads to 2 × 30 = 60; a third row would make it 90; the rest are 3 × 10 wide.
    assert [tuple(b.input_ids.shape) for b in batches] == [(2, 30), (3, 10)]


def test_a_cap_below_the_pack_capacity_packs_smaller_sequences() -> None:
    rows = _rows_of([8] * 8 + [40])
    batches = micro_batches(rows, packing=True, micro_batch_size=8, pack_capacity=64, pad_id=0, max_tokens=16)
    shapes = sorted(tuple(b.input_ids.shape) for b in batches)
    assert shapes == [(1, 16)] * 4 + [(1, 40)]  # two rows per sequence; the long row alone


def test_the_token_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        micro_batches(
            _rows_of([3]), packing=True, micro_batch_size=1, pack_capacity=8, pad_id=0, max_tokens=0
        )
