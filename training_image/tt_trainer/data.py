"""Training and eval rows: reading chat JSONL, assistant-only labels, long rows, packing and padding."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch

from tt_trainer.errors import DataError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
_GENERATION_MARKER = re.compile(r"{%-?\s*generation\s*-?%}")
# The chat-template variable of templates with a thinking switch (Qwen3's and Qwen3.5's).
_THINKING_SWITCH = "enable_thinking"

Message = dict[str, str]
T = TypeVar("T")
# What each channel holds and what one of its rows is, in the words of the product (PRODUCT.md §9): the run's
# error shows these messages, and the user never sees the training machine's files.
_KINDS = {"train": ("training data", "training example"), "eval": ("evaluation data", "evaluation row")}
_SNIPPET_CHARS = 40


@dataclass(frozen=True)
class ChatRow:
    """One training conversation; where names it for error messages ("training example 3")."""

    messages: list[Message]
    where: str


@dataclass(frozen=True)
class EvalRow:
    """One eval row: the prompt messages (ending with the user input) and the reference answer."""

    id: str
    messages: list[Message]
    expected: str
    split: str | None
    where: str

    @property
    def input(self) -> str:
        return self.messages[-1]["content"]


@dataclass(frozen=True)
class TokenizedRow:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class DataReport:
    """What happened to the training rows; reported on stdout, in progress.json and training-metrics.json."""

    rows: int = 0
    kept: int = 0
    truncated: int = 0
    skipped: int = 0
    tokens: int = 0
    label_tokens: int = 0
    longest: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


# ------------------------------------------------------------------------------------------- reading


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _jsonl_files(channel: Path, name: str) -> list[Path]:
    if channel.is_file():
        return [channel]
    files = sorted(p for p in channel.rglob("*.jsonl") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise no_rows_received(name)
    return files


def no_rows_received(name: str) -> DataError:
    """The job was given no file of the channel's rows (its channel is absent or empty)."""
    return DataError(f"The training job received no {_KINDS[name][1]}s.")


def _read_jsonl(channel: Path, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The channel's rows, each with its name: numbered over all its files, blank lines not counted."""
    data, noun = _KINDS[name]
    number = 0
    for path in _jsonl_files(channel, name):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"The {data} is not UTF-8 text.") from None
        for line in lines:
            if not line.strip():
                continue
            number += 1
            where = f"{noun} {number}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DataError(f"The {data} is malformed: {where} is not JSON ({exc}).") from None
            if not isinstance(obj, dict):
                raise DataError(f"The {data} is malformed: {where} is not a JSON object.")
            yield where, obj


def _messages(obj: dict[str, Any], where: str) -> list[Message]:
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError(f'{_capitalized(where)} has no "messages" list.')
    clean: list[Message] = []
    for i, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise DataError(f"{_capitalized(where)}: message {i} is not an object.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise DataError(
                f"{_capitalized(where)}: message {i} has role {role!r}; expected system, user or assistant."
            )
        if not isinstance(content, str):
            raise DataError(f"{_capitalized(where)}: message {i} has no text content.")
        clean.append({"role": role, "content": content})
    return clean


def load_train_rows(channel: Path) -> list[ChatRow]:
    """Read chat JSONL: one {"messages": [...]} per line, each with at least one assistant turn."""
    rows = []
    for where, obj in _read_jsonl(channel, "train"):
        messages = _messages(obj, where)
        if not any(m["role"] == "assistant" for m in messages):
            raise DataError(
                f"{_capitalized(where)} has no assistant message, so there is nothing to learn from it. "
                "Every training example needs an output."
            )
        rows.append(ChatRow(messages=messages, where=where))
    if not rows:
        raise DataError("The training data holds no training examples.")
    return rows


def load_eval_rows(channel: Path) -> list[EvalRow]:
    """Read eval JSONL: messages ending with the user input, plus "expected" (or a final assistant turn)."""
    rows = []
    seen: set[str] = set()
    for index, (where, obj) in enumerate(_read_jsonl(channel, "eval"), start=1):
        messages = _messages(obj, where)
        expected = obj.get("expected")
        if expected is None and messages[-1]["role"] == "assistant":
            expected, messages = messages[-1]["content"], messages[:-1]
        if not isinstance(expected, str):
            raise DataError(
                f"{_capitalized(where)} has no expected answer: "
                'give "expected" or end with an assistant turn.'
            )
        if not messages or messages[-1]["role"] != "user":
            raise DataError(f"{_capitalized(where)}: the prompt must end with a user message.")
        row_id = str(obj.get("id", index))
        if row_id in seen:
            raise DataError(f"{_capitalized(where)} repeats the id {row_id!r}.")
        seen.add(row_id)
        split = obj.get("split")
        rows.append(
            EvalRow(
                id=row_id,
                messages=messages,
                expected=expected,
                split=str(split) if split else None,
                where=where,
            )
        )
    if not rows:
        raise DataError("The evaluation data holds no evaluation rows.")
    return rows


# ------------------------------------------------------------------------------------------- tokenizing


class ChatEncoder:
    """Renders conversations with the model's chat template and finds the assistant tokens."""

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(
                "The base model's tokenizer has no chat template, so chat rows cannot be rendered."
            )
        self.tokenizer = tokenizer
        template = str(tokenizer.chat_template)
        self.uses_generation_markers = bool(_GENERATION_MARKER.search(template))
        self.has_thinking_switch = _THINKING_SWITCH in template

    def _switches(self, thinking: bool) -> dict[str, bool]:
        # PRODUCT.md §9.4: thinking off in training, evaluation and serving alike. Left on, Qwen3.5's
        # generation prompt opens a think block, so the label of a plain answer starts by closing it: the
        # tuned model writes "</think>" before every answer and the base model spends its budget thinking.
        return {_THINKING_SWITCH: thinking} if self.has_thinking_switch else {}

    def render(
        self, messages: Sequence[Message], *, add_generation_prompt: bool = False, thinking: bool = False
    ) -> str:
        if not messages:
            return ""
        text = self.tokenizer.apply_chat_template(
            list(messages),
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **self._switches(thinking),
        )
        return str(text)

    def encode(self, messages: Sequence[Message]) -> tuple[list[int], list[int]]:
        """Token ids of the conversation and a 0/1 mask of its assistant tokens (end-of-turn included)."""
        # A row whose answer holds its reasoning is rendered with thinking on: its think block then follows
        # the prompt's opening tag, and the model learns to write the reasoning, not an empty block.
        thinking = any(holds_reasoning(m["content"]) for m in messages if m["role"] == "assistant")
        if self.uses_generation_markers:
            out = self.tokenizer.apply_chat_template(
                list(messages),
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
                **self._switches(thinking),
            )
            return list(out["input_ids"]), list(out["assistant_masks"])
        return self._encode_by_spans(messages, thinking)

    def _encode_by_spans(self, messages: Sequence[Message], thinking: bool) -> tuple[list[int], list[int]]:
        # Templates without {% generation %} markers (most hub models): an assistant turn is what rendering it
        # adds after the generation prompt of the turns before it, located by character offsets.
        text = self.render(messages, thinking=thinking)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prefix = self.render(messages[:i], add_generation_prompt=True, thinking=thinking)
            upto = self.render(messages[: i + 1], thinking=thinking)
            if not (upto.startswith(prefix) and text.startswith(upto)):
                raise DataError(
                    "The base model's chat template renders a conversation differently from its prefixes, "
                    "so the assistant tokens cannot be located. Use a chat template with {% generation %} "
                    "markers."
                )
            # Whitespace after the end-of-turn token is formatting the model never has to produce.
            spans.append((len(prefix), len(upto.rstrip())))
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        mask = [int(any(lo <= start < hi for lo, hi in spans)) for start, _ in enc["offset_mapping"]]
        return list(enc["input_ids"]), mask

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The generation prompt of eval rows and served requests: thinking off."""
        out = self.tokenizer.apply_chat_template(
            list(messages),
            tokenize=True,
            return_dict=True,
            add_generation_prompt=True,
            **self._switches(False),
        )
        return list(out["input_ids"])

    def content_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))


def holds_reasoning(output: str) -> bool:
    """Whether an answer carries its own reasoning: a non-empty think block ahead of a closing tag."""
    reasoning, closed, _ = output.partition("</think>")
    return bool(closed and reasoning.rpartition("<think>")[2].strip())


def _to_row(ids: list[int], mask: list[int], where: str) -> TokenizedRow:
    labels = [tok if keep else IGNORE_INDEX for tok, keep in zip(ids, mask, strict=True)]
    # Nothing predicts the first token; in a packed sequence its label would be learnt from the previous row.
    if labels:
        labels[0] = IGNORE_INDEX
    if all(label == IGNORE_INDEX for label in labels):
        raise DataError(
            f"{_capitalized(where)} has no output tokens once rendered with the base model's chat template."
        )
    return TokenizedRow(input_ids=ids, labels=labels)


def _described(row: ChatRow, tokens: int) -> str:
    """The row as the user can find it: its number and the start of its input ('training example 3
    ("How do I cancel my…", 2,310 tokens)')."""
    user = _last_index(row.messages, "user")
    text = " ".join(row.messages[user if user is not None else 0]["content"].split())
    if len(text) > _SNIPPET_CHARS:
        text = text[:_SNIPPET_CHARS].rstrip() + "…"
    return f'{row.where} ("{text}", {tokens:,} tokens)'


def _last_index(messages: Sequence[Message], role: str, before: int | None = None) -> int | None:
    stop = len(messages) if before is None else before
    for i in range(stop - 1, -1, -1):
        if messages[i]["role"] == role:
            return i
    return None


# PRODUCT.md §9.5: truncation keeps at least the first quarter of the user input, and at least this many of
# its tokens when it has them: a row whose input is gone teaches an answer to a question nobody asked.
MIN_KEPT_INPUT_TOKENS = 32


def kept_input_tokens(n: int) -> int:
    """The fewest tokens of an n-token user input that truncation keeps."""
    return max(math.ceil(n / 4), min(n, MIN_KEPT_INPUT_TOKENS))


def _last_span_start(mask: Sequence[int]) -> int | None:
    """Where the last run of assistant tokens begins."""
    end = len(mask)
    while end > 0 and not mask[end - 1]:
        end -= 1
    if end == 0:
        return None
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return start


def _cut_to_fit(
    encoder: ChatEncoder, messages: list[Message], max_len: int
) -> tuple[list[int], list[int]] | None:
    """Cut the end of the last user input down to its protected start, then the end of the answer; None when
    not one answer token fits (the system prompt and the protected input alone are too long)."""
    answer = _last_index(messages, "assistant")
    assert answer is not None  # load_train_rows refuses rows without one
    msgs = [dict(m) for m in messages[: answer + 1]]  # turns after the last answer carry no labels
    ids, mask = encoder.encode(msgs)
    user = _last_index(msgs, "user", before=answer)
    if user is not None:
        content = encoder.content_ids(msgs[user]["content"])
        floor, keep = kept_input_tokens(len(content)), len(content)
        # Decoding a cut can re-tokenize slightly longer (byte-level merges), hence a few rounds.
        for _ in range(16):
            shorter = max(floor, keep - (len(ids) - max_len))
            if len(ids) <= max_len or shorter >= keep:
                break
            keep = shorter
            msgs[user]["content"] = encoder.decode(content[:keep])
            ids, mask = encoder.encode(msgs)
    if len(ids) <= max_len:
        return ids, mask
    # The row ends with the answer: its first max_len tokens cut the answer's end, end-of-turn token included,
    # so the model never learns to stop mid-answer.
    start = _last_span_start(mask)
    if start is None or start >= max_len:
        return None
    return ids[:max_len], mask[:max_len]


def tokenize_rows(
    rows: Sequence[ChatRow],
    encoder: ChatEncoder,
    *,
    max_seq_length: int,
    long_examples: Literal["error", "truncate", "skip"],
) -> tuple[list[TokenizedRow], DataReport]:
    """Tokenize with the chat template and apply the long-row policy (PRODUCT.md §9.5)."""
    report = DataReport(rows=len(rows))
    kept: list[TokenizedRow] = []
    too_long: list[str] = []
    for row in rows:
        ids, mask = encoder.encode(row.messages)
        if len(ids) > max_seq_length:
            if long_examples == "error":
                too_long.append(_described(row, len(ids)))
                continue
            if long_examples == "skip":
                report.skipped += 1
                continue
            cut = _cut_to_fit(encoder, row.messages, max_seq_length)
            if cut is None:  # no answer token fits after the system prompt and the protected input
                report.skipped += 1
                continue
            ids, mask = cut
            report.truncated += 1
        kept.append(_to_row(ids, mask, row.where))
    if too_long:
        count = "1 training example is" if len(too_long) == 1 else f"{len(too_long)} training examples are"
        raise DataError(
            f"{count} longer than max_seq_length ({max_seq_length} tokens): "
            f"{', '.join(too_long[:5])}{', …' if len(too_long) > 5 else ''}. "
            "Shorten them, raise max_seq_length, or set long_examples to truncate or skip."
        )
    if not kept:
        raise _nothing_fits(len(rows), max_seq_length, long_examples)
    report.kept = len(kept)
    report.tokens = sum(len(r) for r in kept)
    report.label_tokens = sum(sum(1 for x in r.labels if x != IGNORE_INDEX) for r in kept)
    report.longest = max(len(r) for r in kept)
    return kept, report


def validation_rows(
    rows: Sequence[EvalRow], encoder: ChatEncoder, *, max_seq_length: int
) -> list[TokenizedRow]:
    """The primary eval rows with their expected answers as assistant turns, tokenized like training rows
    (truncated to fit): their loss is the validation loss. The test block is never looked at."""
    conversations = [
        ChatRow(messages=[*row.messages, {"role": "assistant", "content": row.expected}], where=row.where)
        for row in rows
        if row.split != "test"
    ]
    if not conversations:
        return []
    try:
        tokenized, _ = tokenize_rows(
            conversations, encoder, max_seq_length=max_seq_length, long_examples="truncate"
        )
    except DataError:  # not one of them fits: the run has no validation loss
        return []
    return tokenized


def _nothing_fits(rows: int, max_seq_length: int, long_examples: str) -> DataError:
    """Every row was dropped: with skip as too long, with truncate because not even a cut of it fits."""
    if long_examples == "skip":
        return DataError(
            f"No training example fits max_seq_length ({max_seq_length} tokens): all {rows} are longer and "
            "long_examples is skip, so every one was skipped. Raise max_seq_length, shorten the examples, or "
            "set long_examples to truncate."
        )
    return DataError(
        f"No training example fits max_seq_length ({max_seq_length} tokens), even truncated: in each of the "
        f"{rows}, the system prompt and the start of the input that truncation keeps leave no room for the "
        "output. Raise max_seq_length, or shorten the system prompt or the inputs."
    )


def eval_prompt(encoder: ChatEncoder, row: EvalRow, max_prompt_tokens: int) -> tuple[list[int], bool]:
    """Prompt ids for generation; the user input is cut from its end to fit max_prompt_tokens."""
    ids = encoder.prompt_ids(row.messages)
    if len(ids) <= max_prompt_tokens:
        return ids, False
    msgs = [dict(m) for m in row.messages]
    for _ in range(16):
        content = encoder.content_ids(msgs[-1]["content"])
        over = len(ids) - max_prompt_tokens
        if over <= 0 or not content:
            break
        keep = max(0, min(len(content) - over, len(content) - 1))
        msgs[-1]["content"] = encoder.decode(content[:keep]) if keep else ""
        ids = encoder.prompt_ids(msgs)
    return ids, True


# ------------------------------------------------------------------------------------------- batching


@dataclass
class MicroBatch:
    """One forward pass. attention_mask is None for packed batches: position_ids that restart at 0 tell
    transformers where each row begins, and it builds a block-diagonal causal mask (rows never attend to
    each other)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    tokens: int  # real tokens (what tokens/s counts)
    label_tokens: int = field(default=0)

    @property
    def positions(self) -> int:
        return int(self.input_ids.numel())

    def sequence_boundaries(self) -> dict[str, Any]:
        """Where each packed row (and padding tail) starts in the flattened micro-batch, as flash-attention's
        varlen kernels take it. Flash attention finds rows in position_ids only at batch size 1: with several
        packed sequences per micro-batch it must be given these, or rows attend to each other."""
        flat = self.position_ids.reshape(-1)
        starts = (flat == 0).nonzero().flatten()
        cu = torch.cat([starts, torch.tensor([flat.numel()], device=flat.device)]).to(torch.int32)
        longest = int(cu.diff().max())
        return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}

    def to(self, device: torch.device) -> MicroBatch:
        return MicroBatch(
            input_ids=self.input_ids.to(device),
            labels=self.labels.to(device),
            position_ids=self.position_ids.to(device),
            attention_mask=None if self.attention_mask is None else self.attention_mask.to(device),
            tokens=self.tokens,
            label_tokens=self.label_tokens,
        )


def pack_bins(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: indices grouped into bins whose lengths sum to at most capacity."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: (-lengths[k], k)):
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    return bins


def _count_labels(labels: torch.Tensor) -> int:
    return int((labels != IGNORE_INDEX).sum())


def padded_batch(rows: Sequence[TokenizedRow], pad_id: int) -> MicroBatch:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row)
        ids[i, :n] = torch.tensor(row.input_ids)
        labels[i, :n] = torch.tensor(row.labels)
        attention[i, :n] = 1
    positions = torch.arange(width).expand(len(rows), -1).clone()
    return MicroBatch(
        input_ids=ids,
        labels=labels,
        position_ids=positions,
        attention_mask=attention,
        tokens=sum(len(r) for r in rows),
        label_tokens=_count_labels(labels),
    )


def packed_batch(bins: Sequence[Sequence[TokenizedRow]], pad_id: int) -> MicroBatch:
    width = max(sum(len(r) for r in b) for b in bins)
    ids = torch.full((len(bins), width), pad_id, dtype=torch.long)
    labels = torch.full((len(bins), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(bins), width), dtype=torch.long)
    for i, packed in enumerate(bins):
        at = 0
        for row in packed:
            n = len(row)
            ids[i, at : at + n] = torch.tensor(row.input_ids)
            labels[i, at : at + n] = torch.tensor(row.labels)
            positions[i, at : at + n] = torch.arange(n)
            at += n
        # The padding tail restarts at 0 too: it becomes a segment of its own that no row attends to.
        positions[i, at:] = torch.arange(width - at)
    return MicroBatch(
        input_ids=ids,
        labels=labels,
        position_ids=positions,
        attention_mask=None,
        tokens=sum(len(r) for b in bins for r in b),
        label_tokens=_count_labels(labels),
    )


def micro_batches(
    rows: Sequence[TokenizedRow],
    *,
    packing: bool,
    micro_batch_size: int,
    pack_capacity: int,
    pad_id: int,
    max_tokens: int | None = None,
) -> list[MicroBatch]:
    """Split one optimizer step's rows into forward passes of at most micro_batch_size sequences and, with
    max_tokens, at most that many positions (sequences × their padded width): the memory plan's cap.

    Padded: rows in order, each pass padded to its longest row. Packed: rows packed into sequences of at most
    pack_capacity tokens (and at most max_tokens), passes of those sequences in packing order. A single row
    longer than max_tokens gets a pass of its own."""
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if not packing:
        groups = _grouped(list(rows), [len(r) for r in rows], micro_batch_size, max_tokens)
        return [padded_batch(group, pad_id) for group in groups]
    capacity = pack_capacity if max_tokens is None else min(pack_capacity, max_tokens)
    bins = [[rows[i] for i in b] for b in pack_bins([len(r) for r in rows], capacity)]
    widths = [sum(len(r) for r in b) for b in bins]
    return [packed_batch(group, pad_id) for group in _grouped(bins, widths, micro_batch_size, max_tokens)]


def _grouped(items: list[T], widths: Sequence[int], size: int, max_tokens: int | None) -> list[list[T]]:
    """Consecutive items, at most `size` per group and, with max_tokens, at most that many positions: a group
    is as wide as its widest item times its length (what padding makes of it)."""
    groups: list[list[T]] = []
    group: list[T] = []
    widest = 0
    for item, width in zip(items, widths, strict=True):
        wider = max(widest, width)
        too_many = len(group) >= size
        too_wide = max_tokens is not None and (len(group) + 1) * wider > max_tokens
        if group and (too_many or too_wide):
            groups.append(group)
            group, wider = [], width
        group.append(item)
        widest = wider
    if group:
        groups.append(group)
    return groups


def epoch_order(n_rows: int, seed: int, epoch: int) -> list[int]:
    """The row order of an epoch: a seeded shuffle, identical on resume."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return [int(i) for i in torch.randperm(n_rows, generator=generator)]
