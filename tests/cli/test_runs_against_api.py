"""`tt runs` and `tt models` against the real API (moto, the synthesized state machine, the tiny trainer)."""

from __future__ import annotations

import json
from typing import Any

from tests.cli.conftest import Api, write


def test_start_watch_completes_and_models_list_shows_the_model(
    run: Any, authed: Api, spec: dict[str, Any], monkeypatch: Any
) -> None:
    monkeypatch.setattr("tt_cli.commands.runs._sleep", lambda seconds: __import__("time").sleep(0.2))
    spec_file = write("tunedtensor.json", spec)
    assert run("push", "-f", str(spec_file)).code == 0
    spec_id = json.loads(spec_file.read_text())["id"]

    started = run("runs", "start", spec_id[:8], "--epochs", "2", "--max-output-tokens", "8",
                  "--eval-reserved-output-tokens", "4", "--watch", "--interval", "200")  # fmt: skip
    assert started.code == 0, started.out + started.err
    assert "Completed" in started.out and "Model" in started.out

    runs = run("--json", "runs", "list").json["data"]
    assert len(runs) == 1 and runs[0]["status"] == "completed" and runs[0]["hyperparameters"]["n_epochs"] == 2
    run_id, model_id = runs[0]["id"], runs[0]["model_id"]
    got = run("runs", "get", run_id[:8])
    assert got.code == 0 and run_id in got.out and "completed" in got.out
    diagnosed = run("runs", "diagnose", run_id)
    assert diagnosed.code == 0 and "Loss" in diagnosed.out
    models = run("--json", "models", "list").json["data"]
    assert [m["id"] for m in models] == [model_id]
    assert run("models", "get", model_id[:6]).code == 0
    refused = run("runs", "cancel", run_id)
    assert refused.code == 1 and "run_not_cancellable" in refused.err

    # A second run continues the first run's model and is compared with the first run.
    refused = run("runs", "start", spec_id, "--parent-model", model_id, "--lora-rank", "8")
    assert refused.code == 1 and "hyperparameters.lora_rank" in refused.err
    short = ("--max-output-tokens", "8", "--eval-reserved-output-tokens", "4", "--watch", "--interval", "200")
    continued = run("runs", "start", spec_id, "--parent-model", model_id[:8], "--epochs", "1", *short)
    assert continued.code == 0, continued.out + continued.err
    second = run("--json", "runs", "list").json["data"][0]
    assert second["parent_model_id"] == model_id and second["run_number"] == 2
    assert second["eval_summary"]["previous_run_id"] == run_id

    estimate = run("--json", "runs", "estimate", spec_id, "--no-augment")
    assert estimate.code == 0 and estimate.json["data"]["estimated_rows"] == 4  # 5 examples, 1 held out
