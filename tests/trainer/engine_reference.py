"""The first 20 step losses of every catalogue family and tiny-chat, as the hand-written loop trained them.

The training engine moved onto transformers' Trainer (issue 19); these numbers, recorded with the loop it
replaced (at 3672c64: `PYTHONPATH=<checkout>/training_image:. python -m tests.trainer.engine_reference`),
hold it to the same maths: data order, packing, accumulation-exact loss, decay, clipping, the chunked loss.
tests/trainer/test_engine.py compares.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from tests.trainer import families
from tt_trainer.config import Hyperparameters
from tt_trainer.data import IGNORE_INDEX, TokenizedRow

FAMILIES = [*families.CONFIGS, "tiny-chat"]
RECORDED = Path(__file__).with_name("engine_reference.json")
STEPS = 20
# 10 rows, 4 per step in micro-batches of 2: accumulation, a short last step per epoch, packing across
# rows of uneven length, linear decay over 20 steps (6 epochs). No warmup: the loop warmed up from
# 1/(warmup+1) of the peak, transformers' schedules from 0 (its first step does not move the weights).
HP = Hyperparameters(
    batch_size=4,
    micro_batch_size=2,
    learning_rate=5e-3,
    lora_rank=4,  # at rank 8 the Gemma 4 model turns float-order noise (1e-7) into 2e-3 within 17 steps
    lora_alpha=8,
    lora_dropout=0.0,
    max_steps=STEPS,
    warmup_ratio=0.0,
    seed=3,
)


def rows(vocab: int) -> list[TokenizedRow]:
    """Ten rows of 6–29 tokens whose first third is a prompt (no labels), as the chat encoder labels them."""
    generator = torch.Generator().manual_seed(11)
    made = []
    for length in (9, 17, 6, 29, 12, 21, 8, 14, 25, 11):
        ids = torch.randint(3, vocab, (length,), generator=generator).tolist()
        prompt = length // 3
        made.append(TokenizedRow(input_ids=ids, labels=[IGNORE_INDEX] * prompt + ids[prompt:]))
    return made


def model_and_rows(family: str, tiny_model_dir: Path) -> tuple[Any, list[TokenizedRow]]:
    if family == "tiny-chat":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    else:
        model = families.build(family)
    vocab = min(int(model.config.get_text_config().vocab_size), families.VOCAB)
    return model.train(), rows(vocab)


def step_losses(family: str, tiny_model_dir: Path) -> list[float]:
    """Train the family's model for 20 steps with the current engine; its per-step losses."""
    from tt_trainer.progress import ProgressReporter
    from tt_trainer.train import attach_lora, pick_precision, seed_everything, train

    model, data = model_and_rows(family, tiny_model_dir)
    seed_everything(HP.seed)
    model = attach_lora(model, HP, parent_dir=None, gradient_checkpointing=False)
    result = train(
        model,
        data,
        HP,
        precision=pick_precision("fp32"),
        pad_id=0,
        reporter=ProgressReporter(None, io.StringIO()),
    )
    return list(result.step_losses)


def main() -> None:
    from tt_trainer.tiny import ensure_tiny_model

    tiny = ensure_tiny_model()
    recorded = {family: step_losses(family, tiny) for family in FAMILIES}
    RECORDED.write_text(json.dumps(recorded, indent=1) + "\n")
    for family, losses in recorded.items():
        print(f"{family:12} {losses[0]:.5f} … {losses[-1]:.5f}")


if __name__ == "__main__":
    main()
