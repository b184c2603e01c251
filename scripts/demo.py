"""The main job: the local stack turns the example spec into a fine-tuned, evaluated, registered model.

`make run` calls this. It drives the real product: the stack in this process (moto, the API and
authorizer handlers behind the HTTP gateway, the synthesized state machine, the trainer as a
subprocess) and the CLI over real HTTP, with its own config so the user's `tt` configuration is left
alone. The stack's own log lines go to <data dir>/stack.log. After the run it prints a short, honest
summary read from the API: how long each part took, what the tiny model learnt (its training
answers, asked again through the playground) and what it did not (the held-out questions), and what the
LLM judge would add where no Claude provider is configured.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "customer-support" / "tunedtensor.json"
DATASET = ROOT / "examples" / "customer-support" / "training.jsonl"
# Training questions asked again after the run: enough to show what was learnt, few enough to stay quick.
TRAINING_CHECKS = 5
CHECK_TOKENS = 64


def main() -> int:
    from tt_cli.client import ApiClient
    from tt_cli.main import main as tt
    from tt_local.stack import LocalStack

    data_dir = ROOT / ".tt-local" / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)  # every demo starts from an empty stack
    work = Path(tempfile.mkdtemp(prefix="tt-demo-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    spec_file = work / "tunedtensor.json"
    shutil.copy(EXAMPLE, spec_file)

    stack = LocalStack(data_dir, port=0)
    info = stack.start()
    print(f"▶ local stack ready at {info.base_url} (data and logs in {data_dir})", flush=True)
    cli = ["-u", info.base_url, "-k", info.api_key]
    try:
        steps = [
            ("lint the example spec", ["eval", "-f", str(spec_file)]),
            ("push it", [*cli, "push", "-f", str(spec_file)]),
            (
                "train, evaluate and register a model",
                [*cli, "runs", "start", "{spec}", "--watch", "--interval", "1000"],
            ),
            ("list the models", [*cli, "models", "list"]),
            ("upload a dataset", [*cli, "datasets", "upload", str(DATASET), "-n", "support-faq"]),
        ]
        for title, args in steps:
            args = [a.replace("{spec}", _spec_id(spec_file)) for a in args]
            print(f"\n▶ {title}: tt {' '.join(a for a in args if a not in cli)}", flush=True)
            if tt(args) != 0:
                return 1
            if "runs" in args:
                _summary(ApiClient(info.base_url, info.api_key), _spec_id(spec_file))
        print(f"\n▶ pushed spec file (with its id): {spec_file}")
    finally:
        stack.stop()
    return 0


def _spec_id(spec_file: Path) -> str:
    return str(json.loads(spec_file.read_text()).get("id", ""))


def _summary(api: Any, spec_id: str) -> None:
    """What the CLI's run view leaves out: how long each part took, what the tiny model learnt (training
    questions asked again) and what it did not (the held-out questions)."""
    run_id = api.request("GET", f"/behavior-specs/{spec_id}/runs", params={"per_page": 1}).data[0]["id"]
    run = api.request("GET", f"/runs/{run_id}").data
    summary = run.get("eval_summary")
    print("\n▶ what this run shows", flush=True)
    for line in _timing_lines(run):
        print(f"  {line}")
    curve = api.request("GET", f"/runs/{run_id}/diagnostics").data["training"]["curve"]
    print(f"  {_loss_line(curve)}")
    if not summary:
        return
    print(f"  {_training_check(api, run)}")
    print(f"  {_generalisation_line(summary, run)}")
    if summary["scoring_method"] == "similarity":
        print(
            "  Scored by similarity (word overlap with the reference answer); with a Claude key the LLM "
            "judge would grade meaning, not wording: set ANTHROPIC_API_KEY."
        )


def _timing_lines(run: Mapping[str, Any]) -> list[str]:
    from tt_core.models.common import parse_timestamp

    if not run.get("completed_at"):
        return []
    started = {
        e["stage"]: parse_timestamp(e["occurred_at"]) for e in run["_events"] if e["status"] == "started"
    }
    total = parse_timestamp(run["completed_at"]) - parse_timestamp(run["created_at"])
    training = started["generating_predictions"] - started["training_running"]
    answering = started["scoring"] - started["generating_predictions"]
    hp = run["hyperparameters"]
    return [
        f"Run time {total.total_seconds():.0f} s (training {training.total_seconds():.0f} s, base and tuned "
        f"answers {answering.total_seconds():.0f} s) on {run['row_counts']['training']} training rows; "
        f"n_epochs {hp['n_epochs']}, learning_rate {hp['learning_rate']}, batch_size {hp['batch_size']}."
    ]


def _loss_line(curve: Mapping[str, Any]) -> str:
    """The last epoch's training loss beside its validation loss (the held-out answers, teacher-forced)."""
    train, valid = curve.get("latest_loss"), curve.get("latest_valid_loss")
    if train is None:
        return "No training loss was logged."
    line = f"Final training loss {train:.3f}"
    if valid is None:
        return f"{line}; no validation loss (the run has no held-out rows)."
    return (
        f"{line}, validation loss {valid:.3f}: the held-out answers stay unlikely to a model that learnt its "
        "training rows by heart."
        if valid > 2 * train
        else f"{line}, validation loss {valid:.3f}."
    )


def _training_check(api: Any, run: Mapping[str, Any]) -> str:
    """A few training questions asked again through the playground (temperature 0, the spec prompt applied
    as in training): whether the tuned model learnt its examples word for word."""
    held_out = {row["prompt"] for row in run["_evals"]}
    trained = [e for e in run["spec_snapshot"]["examples"] if e["input"] not in held_out][:TRAINING_CHECKS]
    model = api.request("GET", f"/models/{run['model_id']}").data["provider_model_id"]
    exact = 0
    for example in trained:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": example["input"]}],
            "temperature": 0,
            "max_tokens": CHECK_TOKENS,
        }
        exact += (
            api.request("POST", "/playground/completions", body=body).data["content"] == example["output"]
        )
    return (
        f"Training questions asked again (playground, temperature 0): {exact} of {len(trained)} answered "
        "word for word."
    )


def _generalisation_line(summary: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    """What the held-out questions say; on tiny-chat with few passes, plainly that it does not generalise."""
    evals = run["_evals"]
    exact = sum(row["actual"] == row["expected"] for row in evals)
    passed = sum(bool(row["passed"]) for row in evals)
    line = f"Held-out questions: {passed} of {len(evals)} passed, {exact} answered word for word."
    if run["spec_snapshot"]["base_model"] != "tunedtensor/tiny-chat" or passed * 2 >= len(evals):
        return line
    return (
        f"{line} tiny-chat is a 0.4M-parameter model built offline from random weights for this demo and "
        "the tests: it learns the wording of its training answers but does not generalise to new "
        "questions. For a useful assistant, train a catalogue model (e.g. meta-llama/Llama-3.2-3B-Instruct)."
    )


if __name__ == "__main__":
    sys.exit(main())
