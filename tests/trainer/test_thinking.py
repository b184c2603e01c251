"""Thinking templates (Qwen3.5's): thinking off in training rows and eval prompts alike (PRODUCT.md §9.4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.trainer import families
from tests.trainer.jobs import Job, eval_rows_from, item_rows, run_in_process
from tt_trainer.data import IGNORE_INDEX, ChatEncoder, ChatRow, EvalRow, eval_prompt, tokenize_rows

THINKING_OFF = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
REASONED = "<think>\nThe list says item 0 is red.\n</think>\n\nItem 0 is red."


@pytest.fixture(scope="module")
def qwen_tokenizer(tiny_model_dir: Path) -> Any:
    return families.qwen3_5_tokenizer(tiny_model_dir)


def _learnt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    rows, _ = tokenize_rows(
        [ChatRow(messages, "t")], ChatEncoder(tokenizer), max_seq_length=512, long_examples="error"
    )
    return str(tokenizer.decode([t for t in rows[0].labels if t != IGNORE_INDEX]))


def test_training_labels_hold_the_answer_and_start_where_the_eval_prompt_ends(qwen_tokenizer: Any) -> None:
    messages = item_rows(1)[0]["messages"]
    # Thinking on, the prompt would end with "<think>\n" and the label begin "\n</think>\n\n": the tuned
    # model would learn to write that before every answer.
    assert _learnt(qwen_tokenizer, messages) == messages[-1]["content"] + "<|im_end|>"
    encoder = ChatEncoder(qwen_tokenizer)
    text = encoder.render(messages)
    prompt = qwen_tokenizer.decode(encoder.prompt_ids(messages[:-1]))
    assert prompt.endswith(THINKING_OFF) and text.startswith(prompt)


def test_eval_prompts_have_thinking_off_even_when_cut(qwen_tokenizer: Any) -> None:
    encoder = ChatEncoder(qwen_tokenizer)
    row = EvalRow(id="1", messages=[{"role": "user", "content": "Describe item 3. " * 40}], expected="x",
                  split=None, where="evaluation row 1")  # fmt: skip
    for limit, cut in ((512, False), (60, True)):
        ids, truncated = eval_prompt(encoder, row, limit)
        assert truncated is cut and qwen_tokenizer.decode(ids).endswith(THINKING_OFF)


def test_an_output_that_holds_its_reasoning_is_learnt_with_it(qwen_tokenizer: Any) -> None:
    messages = [{"role": "user", "content": "Describe item 0."}, {"role": "assistant", "content": REASONED}]
    # Thinking off, the empty block of the prompt would not prefix the rendered answer: the row renders with
    # thinking on, and the model learns the reasoning, its closing tag and the answer.
    assert _learnt(qwen_tokenizer, messages) == REASONED.removeprefix("<think>\n") + "<|im_end|>"


def test_a_job_on_a_thinking_template_trains_and_evaluates_with_thinking_off(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    tokenizer = families.qwen3_5_tokenizer(tiny_model_dir)
    base = tmp_path / "qwen3.5"
    families.build("qwen3.5", vocab=len(tokenizer)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    (base / "base_model.json").write_text(json.dumps({"id": "Qwen/Qwen3.5-4B", "revision": None}))
    rows = item_rows(4)
    hp = {"base_model": str(base), "batch_size": 4, "max_steps": 1, "max_output_tokens": 2,
          "eval_reserved_output_tokens": 2}  # fmt: skip
    job = Job(tmp_path / "job", hp).write(rows, eval_rows_from(rows[:1]))
    result = run_in_process(job)
    assert result.code == 0, result.stderr
    answers = [tokenizer.encode(r["messages"][-1]["content"] + "<|im_end|>") for r in rows]
    metrics = json.loads((job.model_dir / "training-metrics.json").read_text())
    assert metrics["data"]["label_tokens"] == sum(len(a) for a in answers)
    prediction = json.loads((job.output_dir / "eval_predictions.jsonl").read_text())
    prompt = tokenizer.apply_chat_template(rows[0]["messages"][:-1], add_generation_prompt=True,
                                           enable_thinking=False, return_dict=True)["input_ids"]  # fmt: skip
    assert prediction["prompt_tokens"] == len(prompt)
