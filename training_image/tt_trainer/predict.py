"""Eval generations in the training job: greedy outputs of the base model (adapter off) and tuned model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from tt_trainer.data import ChatEncoder, EvalRow, eval_prompt
from tt_trainer.errors import TrainingStoppedError
from tt_trainer.progress import ProgressReporter
from tt_trainer.train import accepts_argument

PREDICTIONS_FILE = "eval_predictions.jsonl"


def greedy_decode(model: Any, prompt_ids: list[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
    """The argmax token at every step (with a KV cache) until a stop token or max_new_tokens.

    Not model.generate(): it completes any config with the model's own generation_config, whose
    repetition_penalty, top_k, no_repeat_ngram_size, min_new_tokens, bad words, ... would change base and
    tuned outputs alike. This loop applies none of them, whatever the base model ships (PRODUCT.md §9.5)."""
    device = next(model.parameters()).device
    keep_last = {"logits_to_keep": 1} if accepts_argument(model, "logits_to_keep") else {}
    input_ids = torch.tensor([prompt_ids], device=device)
    past: Any = None
    new: list[int] = []
    with torch.inference_mode():
        while len(new) < max_new_tokens:
            out = model(input_ids=input_ids, past_key_values=past, use_cache=True, **keep_last)
            past = out.past_key_values
            token = int(out.logits[0, -1].argmax())
            new.append(token)
            if token in stop_ids:
                break
            input_ids = torch.tensor([[token]], device=device)
    return new


class Generator:
    """Greedy decoding that stops at an end-of-turn token or after max_new_tokens."""

    def __init__(self, model: Any, encoder: ChatEncoder, *, stop_ids: Sequence[int], pad_id: int) -> None:
        self.model = model
        self.encoder = encoder
        self.stop_ids = set(stop_ids)
        self.pad_id = pad_id

    def __call__(self, prompt_ids: list[int], max_new_tokens: int) -> dict[str, Any]:
        if max_new_tokens < 1:
            return {"output": "", "latency_ms": 0.0, "output_tokens": 0, "finished": False}
        started = time.perf_counter()
        new = greedy_decode(self.model, prompt_ids, max_new_tokens, self.stop_ids)  # ints: the device is done
        latency_ms = (time.perf_counter() - started) * 1000
        finished = bool(new) and new[-1] in self.stop_ids
        text_ids = new[:-1] if finished else new
        return {
            "output": self.encoder.decode(text_ids),
            "latency_ms": round(latency_ms, 2),
            "output_tokens": len(new),
            "finished": finished,
        }


def generate_predictions(
    model: Any,
    encoder: ChatEncoder,
    rows: Sequence[EvalRow],
    *,
    out_path: Path,
    max_seq_length: int,
    max_output_tokens: int,
    eval_reserved_output_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    reporter: ProgressReporter,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Write one JSON line per eval row (PRODUCT.md §9.5 budget) and return a summary."""
    generate = Generator(model, encoder, stop_ids=stop_ids, pad_id=pad_id)
    model.eval()
    # One untimed generation first: the first call pays for kernel selection and caches, not a row.
    generate(encoder.prompt_ids(rows[0].messages)[:max_seq_length], 1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    finished = {"base": 0, "tuned": 0}
    reporter.update(status="generating_predictions", eval_rows_total=len(rows), eval_rows_done=0)
    with out_path.open("w", encoding="utf-8") as out:
        for done, row in enumerate(rows, start=1):
            if should_stop():
                raise TrainingStoppedError(
                    "The job was stopped (SIGTERM) while generating eval predictions "
                    f"({done - 1} of {len(rows)} rows done); the adapter had already been saved."
                )
            prompt_ids, truncated = eval_prompt(
                encoder, row, max(1, max_seq_length - eval_reserved_output_tokens)
            )
            budget = min(max_output_tokens, max_seq_length - len(prompt_ids))
            with model.disable_adapter():
                base = generate(prompt_ids, budget)
            tuned = generate(prompt_ids, budget)
            finished["base"] += base["finished"]
            finished["tuned"] += tuned["finished"]
            record = {
                "id": row.id,
                "split": row.split,
                "input": row.input,
                "expected": row.expected,
                "prompt_tokens": len(prompt_ids),
                "prompt_truncated": truncated,
                "max_new_tokens": max(budget, 0),
                "base": base,
                "tuned": tuned,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            reporter.update(eval_rows_done=done)
            reporter.event("eval_row", done=done, total=len(rows), id=row.id)
    return {"rows": len(rows), "base_finished": finished["base"], "tuned_finished": finished["tuned"]}
