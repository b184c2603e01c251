"""`tt runs …` against a scripted fake API: requests sent, rendering, watching, errors and `--json`."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

KEY = "tt_" + "a" * 48
API = "/api/v1"
SPEC_ID = "5bec0000-0000-4000-8000-000000000001"
RUN_ID = "abcd1111-0000-4000-8000-000000000001"
RUN2_ID = "abcd2222-0000-4000-8000-000000000002"
RUN3_ID = "ef015555-0000-4000-8000-000000000003"
MODEL_ID = "0dd10000-0000-4000-8000-000000000009"
DATASET_ID = "da7a0000-0000-4000-8000-000000000007"
JOB_ID = "b3e2b918-0000-4000-8000-000000000005"
PREVIOUS_RUN_ID = "9e9e0000-0000-4000-8000-000000000002"
T0 = "2026-03-06T08:27:33.492Z"


# -- the fake API ----------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeApi:
    """Answers each (method, path) with its scripted replies in order, repeating the last one."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.requests: list[Seen] = []
        self.url = ""
        self._lock = threading.Lock()

    def on(self, method: str, path: str, *replies: Any) -> None:
        """A reply is an envelope (status 200) or a `(status, envelope)` pair."""
        self.routes[(method, API + path)] = [r if isinstance(r, tuple) else (200, r) for r in replies]

    def answer(self, seen: Seen) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(seen)
            queue = self.routes.get((seen.method, seen.path))
            if not queue:
                return 404, {"error": {"code": "not_found", "message": "Not found"}}
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def seen(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.requests if (s.method, s.path) == (method, API + path)]


@contextlib.contextmanager
def serve_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    """The fake API on a free port; the CLI's environment points at it with a well-formed key."""
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen = Seen(
                self.command,
                parts.path,
                dict(parse_qsl(parts.query)),
                dict(self.headers.items()),
                json.loads(raw) if raw else None,
            )
            status, envelope = api.answer(seen)
            body = b"" if envelope is None else json.dumps(envelope).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("TUNED_TENSOR_URL", api.url)
    monkeypatch.setenv("TUNED_TENSOR_API_KEY", KEY)
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    with serve_fake(monkeypatch) as api:
        yield api


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits `runs watch` would have made between polls (none is actually slept)."""
    waited: list[float] = []
    monkeypatch.setattr("tt_cli.commands.runs._sleep", waited.append)
    return waited


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def page(items: list[dict[str, Any]], *, page: int = 1, per_page: int = 20, total: int | None = None) -> Any:
    return {
        "data": items,
        "meta": {"page": page, "per_page": per_page, "total": len(items) if total is None else total},
    }


def error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error": {"code": code, "message": message}}


# -- canned objects, shaped as PRODUCT.md §9.6, §9.8, §9.9, §10.3, §10.4 -----------------------------------


def outputs(total: int, finished: float | None, valid_json: float | None) -> dict[str, Any]:
    """A §10.4 D object (rates null over zero outputs)."""
    return {
        "total": total,
        "avg_output_chars": 120.5,
        "max_output_chars": 400,
        "starts_json_count": 0,
        "starts_json_rate": 0.0,
        "valid_json_count": round((valid_json or 0) * total),
        "valid_json_rate": valid_json,
        "strict_json_count": 0,
        "strict_json_rate": 0.0,
        "expected_json_total": 0,
        "expected_schema_keys_count": 0,
        "expected_schema_keys_rate": None,
        "non_json_prefix_count": 0,
        "non_json_prefix_rate": 0.0,
        "visible_reasoning_prefix_count": 0,
        "visible_reasoning_prefix_rate": 0.0,
        "finished_count": round((finished or 0) * total),
        "finished_rate": finished,
    }


EVAL_SUMMARY: dict[str, Any] = {
    "total": 10,
    "eval_examples_total": 12,
    "eval_examples_used": 10,
    "eval_truncated": True,
    "eval_split": "spec_holdout",
    "eval_overlaps_training": False,
    "avg_score": 0.8123,
    "pass_rate": 0.8,
    "exact_match_rate": 0.3,
    "baseline_avg_score": 0.41,
    "baseline_pass_rate": 0.4,
    "avg_latency_ms": 512.0,
    "scoring_method": "llm_judge",
    "judge_model": "claude-sonnet-4-5",
    "regressions": 1,
    "improvements": 4,
    "previous_run_id": PREVIOUS_RUN_ID,
    "output_diagnostics": {
        "baseline": outputs(10, 0.6, 0.0),
        "candidate": outputs(10, 0.9, 0.0),
        "test": None,
        "insights": ["10% of tuned outputs hit max_output_tokens."],
    },
}

HYPERPARAMETERS = {
    "n_epochs": 3,
    "learning_rate": 0.0002,
    "batch_size": 8,
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "max_seq_length": 2048,
    "long_examples": "truncate",
    "max_eval_examples": 50,
    "max_test_eval_examples": 50,
    "max_output_tokens": 256,
    "eval_reserved_output_tokens": 64,
    "augment": True,
    "use_llm_judge": True,
}

STAGES = {
    "compiling_spec": ("preparing", "Compiling spec"),
    "augmenting": ("preparing", "Augmenting examples"),
    "uploading_dataset": ("preparing", "Uploading dataset"),
    "training_queued": ("training", "Waiting for training capacity"),
    "training_running": ("training", "Training model"),
    "generating_predictions": ("evaluating", "Generating predictions"),
    "scoring": ("evaluating", "Scoring outputs"),
    "completed": ("completed", "Completed"),
    "failed": ("failed", "Failed"),
    "cancelled": ("cancelled", "Cancelled"),
}


def run_object(stage: str = "compiling_spec", progress: int = 0, **fields: Any) -> dict[str, Any]:
    """A full run object (§9.6) at a stage of §9.2."""
    status, label = STAGES[stage]
    run = {
        "id": RUN_ID,
        "behavior_spec_id": SPEC_ID,
        "run_number": 3,
        "status": status,
        "current_stage": stage,
        "stage_label": label,
        "progress_pct": progress,
        "status_message": f"{label}.",
        "spec_snapshot": {
            "id": SPEC_ID,
            "updated_at": T0,
            "name": "Support Bot",
            "description": "Answers billing questions",
            "base_model": "meta-llama/Llama-3.2-3B-Instruct",
            "system_prompt": "You are a helpful support agent.",
            "guidelines": [],
            "constraints": [],
            "examples": [],
            "eval_cases": [],
        },
        "dataset_id": None,
        "parent_model_id": None,
        "fine_tune_job_id": None,
        "model_id": None,
        "hyperparameters": copy.deepcopy(HYPERPARAMETERS),
        "split_ratios": None,
        "augmentation_method": None,
        "row_counts": None,
        "eval_summary": None,
        "error": None,
        "started_at": T0,
        "created_at": T0,
        "updated_at": T0,
        "completed_at": None,
        "_spec_name": "Support Bot",
        "_events": [],
        "_evals": [],
    }
    run.update(fields)
    return run


def completed_run(**fields: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = dict(
        dataset_id=DATASET_ID,
        fine_tune_job_id=JOB_ID,
        model_id=MODEL_ID,
        augmentation_method="eda",
        row_counts={"training": 48, "augmented": 40, "evaluation": 2, "test": 0},
        eval_summary=copy.deepcopy(EVAL_SUMMARY),
        completed_at="2026-03-06T09:02:10.000Z",
        _events=[
            {
                "id": "e1",
                "stage": "compiling_spec",
                "label": "Compiling spec",
                "status": "started",
                "message": "Compiling the spec into training rows.",
                "occurred_at": T0,
            },
            {
                "id": "e2",
                "stage": "completed",
                "label": "Completed",
                "status": "completed",
                "message": "Run completed; model registered.",
                "occurred_at": "2026-03-06T09:02:10.000Z",
            },
        ],
    )
    return run_object("completed", 100, **{**defaults, **fields})


def summary_row(run_id: str, number: int, status: str = "completed", **fields: Any) -> dict[str, Any]:
    """A `view=summary` row (§9.6)."""
    row = {
        "id": run_id,
        "behavior_spec_id": SPEC_ID,
        "run_number": number,
        "status": status,
        "progress_pct": 100 if status == "completed" else 20,
        "eval_summary": {"avg_score": 0.8123, "pass_rate": 0.8} if status == "completed" else None,
        "model_id": MODEL_ID if status == "completed" else None,
        "started_at": T0,
        "completed_at": None,
        "_spec_name": "Support Bot",
    }
    row.update(fields)
    return row


def diagnostics(
    state: str = "running", epoch: float | None = 1.25, loss: float | None = 0.8412
) -> dict[str, Any]:
    """A §9.9 diagnostics object."""
    samples = [
        {
            "timestamp": T0,
            "epoch": 0.5 * i,
            "loss": 2.31 - 0.3 * i,
            "learning_rate": 0.0002,
            "token_accuracy": 0.5,
        }
        for i in range(1, 4)
    ]
    return {
        "run_id": RUN_ID,
        "status": "training",
        "stage": "training_running",
        "stage_label": "Training model",
        "progress_pct": 50,
        "status_message": "Training epoch 2 of 3.",
        "summary": "Training is running and the loss is falling.",
        "insights": ["Training has reached epoch 1.25 of 3.", "Loss fell from 2.31 to 0.84."],
        "output_diagnostics": {
            "baseline": outputs(4, 0.5, 0.25),
            "candidate": outputs(4, 1.0, 0.75),
            "test": None,
            "insights": [],
        },
        "training": {
            "state": state,
            "phase": "Training",
            "started_at": T0,
            "completed_at": None,
            "last_updated_at": T0,
            "curve": {
                "target_epochs": 3,
                "latest_epoch": epoch,
                "latest_loss": loss,
                "previous_loss": 0.91 if loss is not None else None,
                "latest_token_accuracy": 0.71,
                "epoch_rate_per_minute": 0.125,
                "estimated_minutes_remaining": 14,
                "latest_log_at": T0,
                "samples": samples if epoch is not None else [],
            },
        },
        "generated_at": T0,
    }


def envelope(data: Any) -> dict[str, Any]:
    return {"data": data}


# -- list ------------------------------------------------------------------------------------------------


def test_list_all_runs_table_and_footer(run: Any, fake: FakeApi) -> None:
    rows = [
        {k: v for k, v in completed_run().items() if k not in ("spec_snapshot", "_evals")},
        {
            k: v
            for k, v in run_object("training_queued", 20, id=RUN2_ID, run_number=4).items()
            if k != "_evals"
        },
    ]
    fake.on("GET", "/runs", page(rows, total=25))
    result = run("runs", "list")
    assert result.code == 0, result.err
    [seen] = fake.requests
    assert (seen.method, seen.path, seen.query) == ("GET", "/api/v1/runs", {"page": "1", "per_page": "20"})
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "SPEC", "#", "STATUS", "PROGRESS", "SCORE", "MODEL", "STARTED"]
    assert lines[1].split() == [RUN_ID, "Support", "Bot", "3", "completed", "100%", "0.8123", MODEL_ID, T0]
    assert lines[2].split() == [RUN2_ID, "Support", "Bot", "4", "training", "20%", "-", "-", T0]
    assert lines[-1] == "Page 1/2 (total 25)"


def test_list_one_specs_runs_as_summaries_by_spec_prefix(run: Any, fake: FakeApi) -> None:
    fake.on("GET", "/behavior-specs", page([{"id": SPEC_ID, "name": "Support Bot"}], per_page=100))
    listed = page([summary_row(RUN_ID, 3), summary_row(RUN2_ID, 4, "failed")], page=2, per_page=5, total=7)
    fake.on("GET", f"/behavior-specs/{SPEC_ID}/runs", listed)
    result = run("runs", "list", "-s", "5BEC", "--summary", "-p", "2", "--per-page", "5", "--json")
    assert result.code == 0, result.err
    assert result.json == listed  # the envelope exactly as received
    [runs] = fake.seen("GET", f"/behavior-specs/{SPEC_ID}/runs")
    assert runs.query == {"page": "2", "per_page": "5", "view": "summary"}
    text = run("runs", "list", "-s", SPEC_ID, "--summary", "-p", "2", "--per-page", "5")
    assert text.out.splitlines()[-1] == "Page 2/2 (total 7)"
    assert text.out.splitlines()[2].split()[3:6] == ["4", "failed", "20%"]


def test_list_when_empty_and_without_summary_sends_no_view(run: Any, fake: FakeApi) -> None:
    fake.on("GET", "/runs", page([]))
    result = run("runs", "list")
    assert result.out.splitlines() == ["No runs.", "Page 1/1 (total 0)"]
    assert "view" not in fake.requests[0].query


# -- get -------------------------------------------------------------------------------------------------


def test_get_shows_the_run_its_events_and_eval_summary(run: Any, fake: FakeApi) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", envelope(completed_run()))
    result = run("runs", "get", RUN_ID)
    assert result.code == 0, result.err
    out = result.out
    assert f"ID:           {RUN_ID}\n" in out
    assert f"Spec:         Support Bot ({SPEC_ID})\n" in out
    assert "Status:       completed\nStage:        Completed\nProgress:     100%\n" in out
    assert "Base model:   meta-llama/Llama-3.2-3B-Instruct\n" in out
    assert "Augmentation: eda\n" in out
    assert "Rows:         training 48 (40 generated), evaluation 2, test 0\n" in out
    assert f"Dataset:      {DATASET_ID}\n" in out and f"Model:        {MODEL_ID}\n" in out
    assert "Error:        -\n" in out
    assert "Hyperparameters:\n  n_epochs: 3\n  learning_rate: 0.0002\n" in out
    assert "  augment: true\n  use_llm_judge: true\n" in out
    events = out.split("TIME")[1].splitlines()
    assert events[1].split() == [
        T0,
        "Compiling",
        "spec",
        "started",
        "Compiling",
        "the",
        "spec",
        "into",
        "training",
        "rows.",
    ]
    assert "\nEvaluation:\nEval split: spec_holdout, 10 rows (of 12; capped by max_eval_examples)\n" in out
    assert "Scoring:    llm_judge (claude-sonnet-4-5)\n" in out
    assert "Avg score    0.8123  0.4100  +0.4023\n" in out
    assert f"Regressions: 1, improvements: 4 (vs run {PREVIOUS_RUN_ID})\n" in out


def test_get_json_is_the_envelope_as_received(run: Any, fake: FakeApi) -> None:
    body = envelope(run_object("training_running", 45))
    fake.on("GET", f"/runs/{RUN_ID}", body)
    result = run("runs", "get", RUN_ID.upper(), "--json")  # ids match case-insensitively
    assert result.code == 0 and result.json == body
    assert len(fake.requests) == 1  # a full id needs no list request


def test_run_prefixes_resolve_through_summary_rows(run: Any, fake: FakeApi) -> None:
    rows = [summary_row(RUN3_ID, 5), summary_row(RUN2_ID, 4), summary_row(RUN_ID, 3)]
    fake.on("GET", "/runs", page(rows, per_page=100))
    fake.on("GET", f"/runs/{RUN3_ID}", envelope(run_object(id=RUN3_ID, run_number=5)))
    got = run("runs", "get", "EF01", "--json")
    assert got.code == 0, got.err
    assert got.json["data"]["id"] == RUN3_ID
    listing = fake.seen("GET", "/runs")[0]
    assert listing.query == {"view": "summary", "page": "1", "per_page": "100"}

    ambiguous = run("runs", "get", "abcd")
    assert ambiguous.code == 1
    assert ambiguous.err.splitlines() == [
        "✗ [0] ambiguous_id: 'abcd' matches 2 runs; give more characters",
        f"  - {RUN2_ID}: Support Bot #4",
        f"  - {RUN_ID}: Support Bot #3",
    ]
    as_json = run("runs", "cancel", "abcd", "--json")
    assert as_json.code == 1 and as_json.json["error"]["code"] == "ambiguous_id"
    missing = run("runs", "watch", "ffff")
    assert missing.code == 1 and missing.err.startswith("✗ [404] not_found: No run id starts with 'ffff'")
    short = run("runs", "diagnose", "abc")
    assert short.code == 1 and short.err.startswith("✗ [0] cli_error: 'abc' is not a run id")
    assert not fake.seen("POST", f"/runs/{RUN_ID}/cancel")


# -- estimate and the run flags --------------------------------------------------------------------------

ESTIMATE = {
    "estimated_rows": 48,
    "estimated_training_tokens": 12345,
    "estimated_epochs": 3,
    "duration": {
        "estimated_minutes": 14,
        "range_minutes": {"low": 10.5, "high": 21},
        "basis": "fallback",
        "confidence": "low",
        "sample_count": 0,
    },
    "estimated_cost_usd": 0.33,
    "estimated_cost_cents": 33,
    "instance_type": "ml.g5.xlarge",
}


def test_estimate_sends_an_empty_body_without_flags_and_prints_the_estimate(run: Any, fake: FakeApi) -> None:
    fake.on("POST", f"/behavior-specs/{SPEC_ID}/runs/estimate", envelope(ESTIMATE))
    result = run("runs", "estimate", SPEC_ID)
    assert result.code == 0, result.err
    [seen] = fake.requests
    assert seen.body == {} and "Idempotency-Key" not in seen.headers  # an estimate creates nothing
    assert result.out.splitlines() == [
        "Rows:            48",
        "Training tokens: 12,345",
        "Epochs:          3",
        "Duration:        about 14 minutes (10.5–21; basis fallback, confidence low)",
        "Cost:            $0.33",
        "Instance type:   ml.g5.xlarge",
    ]
    as_json = run("runs", "estimate", SPEC_ID, "--json")
    assert as_json.json == envelope(ESTIMATE)


def test_only_given_run_flags_are_sent(run: Any, fake: FakeApi) -> None:
    fake.on("POST", f"/behavior-specs/{SPEC_ID}/runs/estimate", envelope(ESTIMATE))
    flags = [
        "--no-augment",
        "--no-llm-judge",
        "--epochs", "5",
        "--lr", "1e-4",
        "--batch-size", "16",
        "--lora-rank", "8",
        "--lora-alpha", "16",
        "--lora-dropout", "0",
        "--max-seq-length", "1024",
        "--long-examples", "skip",
        "--max-eval-examples", "20",
        "--max-test-eval-examples", "10",
        "--max-output-tokens", "128",
        "--eval-reserved-output-tokens", "0",
    ]  # fmt: skip
    assert run("runs", "estimate", SPEC_ID, *flags).code == 0
    assert fake.requests[-1].body == {
        "augment": False,
        "use_llm_judge": False,
        "hyperparameters": {
            "n_epochs": 5,
            "learning_rate": 0.0001,
            "batch_size": 16,
            "lora_rank": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "max_seq_length": 1024,
            "max_eval_examples": 20,
            "max_test_eval_examples": 10,
            "max_output_tokens": 128,
            "eval_reserved_output_tokens": 0,
            "long_examples": "skip",
        },
    }
    assert run("runs", "estimate", SPEC_ID, "--epochs", "2").code == 0
    assert fake.requests[-1].body == {"hyperparameters": {"n_epochs": 2}}
    assert run("runs", "estimate", SPEC_ID, "--long-examples", "drop").code == 2
    assert run("runs", "estimate", SPEC_ID, "--epochs", "two").code == 2


@pytest.mark.parametrize(
    ("flags", "ratios"),
    [
        (["--validation-ratio", "0.2"], {"train": 0.7, "validation": 0.2, "test": 0.1}),
        (
            ["--test-ratio", "0.05", "--validation-ratio", "0.15"],
            {"train": 0.8, "validation": 0.15, "test": 0.05},
        ),
        (
            ["--train-ratio", "1", "--validation-ratio", "0", "--test-ratio", "0"],
            {"train": 1, "validation": 0, "test": 0},
        ),
        (["--train-ratio", "0.8"], {"train": 0.8, "validation": 0.1, "test": 0.1}),
    ],
)
def test_ratio_flags_default_validation_and_test_to_a_tenth(
    run: Any, fake: FakeApi, flags: list[str], ratios: dict[str, float]
) -> None:
    fake.on("GET", "/datasets", page([{"id": DATASET_ID, "name": "faq"}], per_page=100))
    fake.on("POST", f"/behavior-specs/{SPEC_ID}/runs/estimate", envelope(ESTIMATE))
    result = run("runs", "estimate", SPEC_ID, "--dataset", "da7a", *flags)
    assert result.code == 0, result.err
    assert fake.seen("POST", f"/behavior-specs/{SPEC_ID}/runs/estimate")[0].body == {
        "dataset_id": DATASET_ID,
        "split_ratios": ratios,
    }


def test_dataset_and_parent_model_prefixes_are_resolved(run: Any, fake: FakeApi) -> None:
    fake.on("GET", "/behavior-specs", page([{"id": SPEC_ID, "name": "Support Bot"}], per_page=100))
    fake.on("GET", "/datasets", page([{"id": DATASET_ID, "name": "faq"}], per_page=100))
    fake.on(
        "GET", "/models", page([{"id": MODEL_ID, "name": "Llama-3.2-3B-Instruct-ft-b3e2b918"}], per_page=100)
    )
    fake.on("POST", f"/behavior-specs/{SPEC_ID}/runs", (201, envelope(run_object())))
    result = run("runs", "start", "5bec", "--dataset", "DA7A", "--parent-model", "0dd1")
    assert result.code == 0, result.err
    [start] = fake.seen("POST", f"/behavior-specs/{SPEC_ID}/runs")
    assert start.body == {"dataset_id": DATASET_ID, "parent_model_id": MODEL_ID}
    missing = run("runs", "start", SPEC_ID, "--dataset", "ffff")
    assert missing.code == 1 and missing.err.startswith("✗ [404] not_found: No dataset id starts with 'ffff'")
    assert len(fake.seen("POST", f"/behavior-specs/{SPEC_ID}/runs")) == 1  # nothing started


# -- start -----------------------------------------------------------------------------------------------


def test_start_retries_a_503_with_the_same_idempotency_key(
    run: Any, fake: FakeApi, pauses: list[float]
) -> None:
    fake.on(
        "POST",
        f"/behavior-specs/{SPEC_ID}/runs",
        error(503, "unavailable", "Service unavailable"),
        (201, envelope(run_object())),
    )
    result = run("runs", "start", SPEC_ID, "--epochs", "4")
    assert result.code == 0, result.err
    assert result.out == f"✓ Started run {RUN_ID} (#3, preparing)\n"
    first, second = fake.seen("POST", f"/behavior-specs/{SPEC_ID}/runs")
    key = first.headers["Idempotency-Key"]
    assert uuid.UUID(key) and second.headers["Idempotency-Key"] == key
    assert first.body == second.body == {"hyperparameters": {"n_epochs": 4}}
    assert pauses == [0.5]
    again = run("runs", "start", SPEC_ID, "--json")
    assert again.code == 0 and again.json == envelope(run_object())
    assert fake.seen("POST", f"/behavior-specs/{SPEC_ID}/runs")[-1].headers["Idempotency-Key"] != key


def test_start_errors_are_printed_with_their_details(run: Any, fake: FakeApi) -> None:
    fake.on(
        "POST",
        f"/behavior-specs/{SPEC_ID}/runs",
        error(409, "run_limit_reached", "2 runs are already active"),
    )
    result = run("runs", "start", SPEC_ID)
    assert result.code == 1 and result.out == ""
    assert result.err == "✗ [409] run_limit_reached: 2 runs are already active\n"
    invalid = (
        400,
        {
            "error": {
                "code": "validation_error",
                "message": "Request body is invalid: hyperparameters.n_epochs must be at most 20",
                "details": [{"field": "hyperparameters.n_epochs", "message": "must be at most 20"}],
            }
        },
    )
    fake.on("POST", f"/behavior-specs/{SPEC_ID}/runs", invalid)
    bad = run("runs", "start", SPEC_ID, "--epochs", "21")
    assert bad.code == 1
    assert bad.err.splitlines()[1] == "  - hyperparameters.n_epochs: must be at most 20"
    as_json = run("runs", "start", SPEC_ID, "--epochs", "21", "--json")
    assert as_json.code == 1 and as_json.json == invalid[1]


# -- watch -----------------------------------------------------------------------------------------------

WATCHED = [
    run_object("compiling_spec", 2),
    run_object("compiling_spec", 2),  # no change: no new line
    run_object("augmenting", 10),
    run_object("training_queued", 20),
    run_object("training_running", 45),
    run_object("training_running", 65),
    run_object("generating_predictions", 90),
    completed_run(),
]
CURVES = [diagnostics("pending", None, None), diagnostics(), diagnostics(epoch=2, loss=0.5)]


def test_watch_to_completed_prints_one_line_per_change_then_the_summary(
    run: Any, fake: FakeApi, sleeps: list[float]
) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", *map(envelope, WATCHED))
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", *map(envelope, CURVES))
    result = run("runs", "watch", RUN_ID, "--interval", "250")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[:7] == [
        "  2%  Compiling spec",
        " 10%  Augmenting examples",
        " 20%  Waiting for training capacity",
        " 45%  Training model · epoch 1.25/3 · loss 0.8412",
        " 65%  Training model · epoch 2/3 · loss 0.5000",
        " 90%  Generating predictions",
        "100%  Completed",
    ]
    assert lines[7] == f"✓ Run {RUN_ID} (#3) completed"
    assert lines[8:11] == [
        f"Model:      {MODEL_ID}",
        "Eval split: spec_holdout, 10 rows (of 12; capped by max_eval_examples)",
        "Scoring:    llm_judge (claude-sonnet-4-5)",
    ]
    assert [line.split() for line in lines[11:16]] == [
        ["METRIC", "TUNED", "BASE", "DELTA"],
        ["Avg", "score", "0.8123", "0.4100", "+0.4023"],
        ["Pass", "rate", "80.0%", "40.0%", "+40.0", "pp"],
        ["Exact", "match", "30.0%", "-", "-"],
        ["Finished", "90.0%", "60.0%", "+30.0", "pp"],
    ]
    assert lines[16:] == [
        f"Regressions: 1, improvements: 4 (vs run {PREVIOUS_RUN_ID})",
        "  - 10% of tuned outputs hit max_output_tokens.",
    ]
    assert sleeps == [0.25] * 7  # no sleep after the terminal status, never a real one
    assert len(fake.seen("GET", f"/runs/{RUN_ID}/diagnostics")) == 3  # only while training


def test_watch_polls_every_5_s_by_default(run: Any, fake: FakeApi, sleeps: list[float]) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", envelope(run_object("scoring", 96)), envelope(completed_run()))
    assert run("runs", "watch", RUN_ID).code == 0
    assert sleeps == [5.0]
    assert run("runs", "watch", RUN_ID, "--interval", "0").code == 2


@pytest.mark.parametrize(
    ("final", "reason"),
    [
        (
            run_object(
                "failed", 45, error="Training failed: the loss became NaN. Lower --lr and start again."
            ),
            "Error: Training failed: the loss became NaN. Lower --lr and start again.",
        ),
        (
            run_object("cancelled", 20, status_message="Cancelled by the user."),
            "Message: Cancelled by the user.",
        ),
    ],
)
def test_watch_to_failed_or_cancelled_exits_1_with_the_reason(
    run: Any, fake: FakeApi, sleeps: list[float], final: dict[str, Any], reason: str
) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", envelope(run_object("training_queued", 20)), envelope(final))
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", envelope(diagnostics("pending", None, None)))
    result = run("runs", "watch", RUN_ID)
    assert result.code == 1
    assert result.out.splitlines()[-2:] == [f"✗ Run {RUN_ID} (#3) {final['status']}", reason]
    as_json = run("runs", "watch", RUN_ID, "--json")
    assert as_json.code == 1 and as_json.json == envelope(final)


def test_watch_json_prints_the_final_envelope_only(run: Any, fake: FakeApi, sleeps: list[float]) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", *map(envelope, WATCHED))
    result = run("runs", "watch", RUN_ID, "--json")
    assert result.code == 0 and result.err == ""
    assert result.json == envelope(completed_run())
    assert not fake.seen("GET", f"/runs/{RUN_ID}/diagnostics")  # nothing to draw: not asked


def test_watch_redraws_one_line_on_a_terminal(
    run: Any, fake: FakeApi, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", *map(envelope, WATCHED))
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", *map(envelope, CURVES))
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setenv("COLUMNS", "120")
    assert run("runs", "watch", RUN_ID).code == 0
    drawn, _, summary = terminal.getvalue().partition("\n")
    frames = drawn.split("\r\033[K")
    assert frames[0] == ""
    assert frames[1:] == [
        "[░░░░░░░░░░░░░░░░░░░░]   2%  Compiling spec",
        "[██░░░░░░░░░░░░░░░░░░]  10%  Augmenting examples",
        "[████░░░░░░░░░░░░░░░░]  20%  Waiting for training capacity",
        "[█████████░░░░░░░░░░░]  45%  Training model · epoch 1.25/3 · loss 0.8412",
        "[█████████████░░░░░░░]  65%  Training model · epoch 2/3 · loss 0.5000",
        "[██████████████████░░]  90%  Generating predictions",
        "[████████████████████] 100%  Completed",
    ]
    assert summary.startswith(f"\033[32m✓\033[0m Run {RUN_ID} (#3) completed\n")  # a terminal: colour


def test_the_terminal_line_is_cut_to_the_width(
    run: Any, fake: FakeApi, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", envelope(run_object("training_running", 45)), envelope(completed_run()))
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", envelope(diagnostics()))
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setenv("COLUMNS", "41")
    assert run("runs", "watch", RUN_ID).code == 0
    frames = terminal.getvalue().split("\n")[0].split("\r\033[K")
    assert len(frames[1]) == 40  # one column short of the width: the line never wraps
    assert frames[1] == "[█████████░░░░░░░░░░░]  45%  Training mo"
    assert frames[2] == "[████████████████████] 100%  Completed"


def test_watch_goes_on_when_diagnostics_fail(run: Any, fake: FakeApi, sleeps: list[float]) -> None:
    fake.on("GET", f"/runs/{RUN_ID}", envelope(run_object("training_running", 45)), envelope(completed_run()))
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", error(500, "internal_error", "Internal error (request r1)"))
    result = run("runs", "watch", RUN_ID)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == " 45%  Training model"


def test_start_watch_follows_the_new_run(run: Any, fake: FakeApi, sleeps: list[float]) -> None:
    fake.on("POST", f"/behavior-specs/{SPEC_ID}/runs", (201, envelope(run_object())))
    fake.on("GET", f"/runs/{RUN_ID}", envelope(run_object("scoring", 97)), envelope(completed_run()))
    result = run("runs", "start", SPEC_ID, "-w", "--interval", "1000")
    assert result.code == 0, result.err
    assert result.out.splitlines()[:4] == [
        f"✓ Started run {RUN_ID} (#3, preparing)",
        " 97%  Scoring outputs",
        "100%  Completed",
        f"✓ Run {RUN_ID} (#3) completed",
    ]
    assert sleeps == [1.0]
    as_json = run("runs", "start", SPEC_ID, "--watch", "--json")
    assert as_json.code == 0 and as_json.json == envelope(completed_run())


# -- cancel, diagnose ------------------------------------------------------------------------------------


def test_cancel_prints_the_new_status(run: Any, fake: FakeApi) -> None:
    cancelled = envelope(run_object("cancelled", 20))
    fake.on("POST", f"/runs/{RUN_ID}/cancel", cancelled)
    result = run("runs", "cancel", RUN_ID)
    assert result.code == 0, result.err
    assert result.out == f"✓ Run {RUN_ID} is cancelled\n"
    [seen] = fake.requests
    assert seen.body == {} and "Idempotency-Key" not in seen.headers
    assert run("runs", "cancel", RUN_ID, "--json").json == cancelled


def test_cancel_of_a_finished_run_is_an_error(run: Any, fake: FakeApi, pauses: list[float]) -> None:
    refused = error(409, "run_not_cancellable", "Run is already completed")
    fake.on("POST", f"/runs/{RUN_ID}/cancel", refused)
    result = run("runs", "cancel", RUN_ID)
    assert result.code == 1 and result.out == ""
    assert result.err == "✗ [409] run_not_cancellable: Run is already completed\n"
    as_json = run("runs", "cancel", RUN_ID, "--json")
    assert as_json.code == 1 and as_json.err == "" and as_json.json == refused[1]
    assert len(fake.seen("POST", f"/runs/{RUN_ID}/cancel")) == 2 and pauses == []  # a POST: never retried


def test_diagnose_shows_training_curve_and_outputs(run: Any, fake: FakeApi) -> None:
    body = envelope(diagnostics())
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", body)
    result = run("runs", "diagnose", RUN_ID)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[:8] == [
        f"Run:          {RUN_ID}",
        "Status:       training (Training model, 50%)",
        "Message:      Training epoch 2 of 3.",
        "Summary:      Training is running and the loss is falling.",
        "Training:     running (Training)",
        "Curve:        epoch 1.25/3 · loss 0.8412 (previous 0.9100) · 0.125 epochs/min"
        " · about 14 min remaining",
        "Loss samples: 3",
        f"Last log:     {T0}",
    ]
    assert lines[8:11] == [
        "Insights:",
        "  - Training has reached epoch 1.25 of 3.",
        "  - Loss fell from 2.31 to 0.84.",
    ]
    assert [line.split() for line in lines[12:]] == [
        ["OUTPUTS", "TUNED", "BASE"],
        ["Total", "4", "4"],
        ["Finished", "100.0%", "50.0%"],
        ["Valid", "JSON", "75.0%", "25.0%"],
    ]
    assert run("runs", "diagnose", RUN_ID, "--json").json == body


def test_diagnose_before_training_prints_no_curve(run: Any, fake: FakeApi) -> None:
    pending = diagnostics("pending", None, None)
    pending["training"]["phase"] = None
    pending["insights"] = []
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", envelope(pending))
    result = run("runs", "diagnose", RUN_ID)
    assert result.code == 0, result.err
    assert "Training:     pending\n" in result.out
    assert "Curve:        about 14 min remaining\n" not in result.out
    assert "Loss samples: 0\n" in result.out and "Insights:" not in result.out


def test_summary_without_previous_run_with_overlap_and_null_rates(
    run: Any, fake: FakeApi, sleeps: list[float]
) -> None:
    summary = copy.deepcopy(EVAL_SUMMARY)
    summary.update(
        eval_split="spec_examples",
        eval_overlaps_training=True,
        eval_truncated=False,
        eval_examples_total=4,
        eval_examples_used=4,
        previous_run_id=None,
        regressions=0,
        improvements=0,
        scoring_method="similarity",
        judge_model=None,
        baseline_pass_rate=None,
    )
    summary["output_diagnostics"]["insights"] = []
    fake.on("GET", f"/runs/{RUN_ID}", envelope(completed_run(eval_summary=summary)))
    result = run("runs", "watch", RUN_ID)
    assert result.code == 0 and sleeps == []  # already terminal: printed at once
    lines = result.out.splitlines()
    assert lines[3:5] == [
        "Eval split: spec_examples, 4 rows — overlaps the training rows",
        "Scoring:    similarity",
    ]
    assert lines[7].split() == ["Pass", "rate", "80.0%", "-", "-"]
    assert lines[-1] == "Regressions: 0, improvements: 0 (no previous completed run)"


# -- intervals and verdict (§10.3) ------------------------------------------------------------------------

UNCERTAIN = {
    "scoring_method": "mixed",
    "judge_fallback_rows": 3,
    "pass_rate_ci95": [0.4902, 0.9433],
    "baseline_pass_rate_ci95": [0.1682, 0.6873],
    "avg_score_delta": 0.4023,
    "avg_score_delta_ci95": [0.3012, 0.51],
    "verdict": "better",
}


def test_get_and_watch_show_the_verdict_and_the_intervals(
    run: Any, fake: FakeApi, sleeps: list[float]
) -> None:
    summary = {**copy.deepcopy(EVAL_SUMMARY), **UNCERTAIN}
    fake.on("GET", f"/runs/{RUN_ID}", envelope(completed_run(eval_summary=summary)))
    for command in ("get", "watch"):
        result = run("runs", command, RUN_ID)
        assert result.code == 0, result.err
        out = result.out
        assert "Scoring:    mixed (claude-sonnet-4-5; 3 rows fell back to similarity)\n" in out
        assert "Verdict:    better (avg score delta +0.4023, 95% CI [+0.3012, +0.5100])\n" in out
        table = {line.split("  ")[0]: line.split() for line in out.splitlines()}
        assert table["Avg score"][2:] == ["0.8123", "0.4100", "+0.4023", "[+0.3012,", "+0.5100]"]
        assert table["Pass rate"][2:] == [
            "80.0%",
            "[49.0%,",
            "94.3%]",
            "40.0%",
            "[16.8%,",
            "68.7%]",
            "+40.0",
            "pp",
        ]


def test_a_summary_where_every_row_fell_back_says_so(run: Any, fake: FakeApi) -> None:
    summary = {**copy.deepcopy(EVAL_SUMMARY), **UNCERTAIN, "judge_model": None, "verdict": "inconclusive"}
    summary.update(scoring_method="similarity", judge_fallback_rows=10)
    fake.on("GET", f"/runs/{RUN_ID}", envelope(completed_run(eval_summary=summary)))
    out = run("runs", "get", RUN_ID).out
    assert "Scoring:    similarity (the judge failed on all 10 rows)\n" in out
    assert "Verdict:    inconclusive (avg score delta +0.4023, 95% CI [+0.3012, +0.5100])\n" in out


def _report_rows(scores: list[float]) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "prompt": f"Question {i}?", "expected": "e", "actual": "a", "score": score,
         "passed": score >= 0.7, "reasoning": None, "latency_ms": 5.0, "scored_by": "similarity"}
        for i, score in enumerate(scores)
    ]  # fmt: skip


def test_report_shows_each_blocks_verdict_and_intervals(run: Any, fake: FakeApi) -> None:
    def block(model: str, scores: list[float]) -> dict[str, Any]:
        passes = sum(score >= 0.7 for score in scores)
        return {"model": model, "total": len(scores), "eval_examples_total": len(scores),
                "eval_examples_used": len(scores), "eval_truncated": False,
                "avg_score": round(sum(scores) / len(scores), 4), "pass_rate": round(passes / len(scores), 4),
                "exact_match_rate": 0.0, "avg_latency_ms": 5.0, "results": _report_rows(scores)}  # fmt: skip

    comparison = {"avg_score_delta": 0.4, "avg_score_delta_ci95": [0.3, 0.5], "verdict": "better",
                  "pass_rate_delta": 0.75, "exact_match_rate_delta": 0.0, "regressions": 0, "improvements": 9,
                  "regressed_examples": [], "improved_examples": []}  # fmt: skip
    test_comparison = {**comparison, "avg_score_delta_ci95": [-0.1, 0.6], "verdict": "inconclusive"}
    report = {
        "run_id": RUN_ID, "status": "completed", "fine_tuned_model_id": MODEL_ID,
        "eval_split": "spec_holdout",
        "scoring_method": "mixed", "judge_model": "judge",
        "baseline": block("base", [0.4] * 12), "candidate": block("tuned", [0.9] * 9 + [0.5] * 3),
        "comparison": comparison,
        "test": {"baseline": block("base", [0.4] * 4), "candidate": block("tuned", [0.9] * 3 + [0.0]),
                 "comparison": test_comparison},
        "previous_run": None,
    }  # fmt: skip
    for row in report["candidate"]["results"][:2]:
        row["scored_by"] = "similarity_fallback"
    fake.on("GET", f"/runs/{RUN_ID}/report", envelope(report))
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", envelope(diagnostics()))
    result = run("runs", "report", RUN_ID, "--split", "all")
    assert result.code == 0, result.err
    assert "Scoring:    mixed (judge; 2 rows fell back to similarity)\n" in result.out
    primary, test = result.out.split("Test split", 1)
    table = {line.split("  ")[0]: line.split() for line in primary.splitlines()}
    assert table["Pass rate"][2:] == ["0.0%", "[0.0%,", "24.2%]", "75.0%", "[46.8%,", "91.1%]", "+75.0", "pp"]
    assert table["Avg score"][2:] == ["0.4000", "0.8000", "+0.4000", "[+0.3000,", "+0.5000]"]
    assert "Verdict: better (avg score delta +0.4000, 95% CI [+0.3000, +0.5000])" in primary
    assert "Verdict: inconclusive (avg score delta +0.4000, 95% CI [-0.1000, +0.6000])" in test
    test_table = {line.split("  ")[0]: line.split() for line in test.splitlines()}
    assert test_table["Pass rate"][2:8] == ["0.0%", "[0.0%,", "49.0%]", "75.0%", "[30.1%,", "95.4%]"]


def test_checkpoints_lists_the_kept_epochs(run: Any, fake: FakeApi) -> None:
    listed = [
        {"epoch": 5, "step": 10, "created_at": "2026-12-07T10:00:05.000Z", "is_registered_model": True,
         "metrics": {"train_loss": 0.12, "valid_loss": 1.9, "valid_token_accuracy": 0.41}},
        {"epoch": 4, "step": 8, "created_at": "2026-12-07T10:00:04.000Z", "is_registered_model": False,
         "metrics": {"train_loss": 0.2, "valid_loss": None, "valid_token_accuracy": None}},
    ]  # fmt: skip
    fake.on("GET", f"/runs/{RUN_ID}/checkpoints", {"data": listed}, {"data": []})
    result = run("runs", "checkpoints", RUN_ID)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "EPOCH",
        "STEP",
        "TRAIN",
        "LOSS",
        "VALID",
        "LOSS",
        "VALID",
        "ACC",
        "MODEL",
        "CREATED",
    ]
    assert lines[1].split()[:6] == ["5", "10", "0.1200", "1.9000", "41.0%", "yes"]
    assert f"tt models serve {RUN_ID} --epoch N" in result.out
    empty = run("runs", "checkpoints", RUN_ID)
    assert empty.code == 0 and "No checkpoints yet" in empty.out + empty.err


def test_diagnose_and_report_put_training_beside_validation_by_epoch(run: Any, fake: FakeApi) -> None:
    body = diagnostics("completed", 3.0, 0.2)
    body["training"]["curve"]["samples"] = [
        {"timestamp": T0, "epoch": float(e), "loss": loss, "learning_rate": 0.0002, "token_accuracy": acc,
         "valid_loss": valid, "valid_token_accuracy": valid_acc}
        for e, loss, acc, valid, valid_acc in (
            (1, 1.5, 0.4, 1.7, 0.35), (2, 0.8, 0.7, 1.6, 0.4), (3, 0.2, 0.9, 1.9, 0.38)
        )
    ]  # fmt: skip
    body["training"]["curve"]["latest_valid_loss"] = 1.9
    body["insights"] = [
        "Validation loss rose after epoch 2: later epochs may be over-fitting; consider n_epochs=2 or "
        "early_stopping_patience."
    ]
    fake.on("GET", f"/runs/{RUN_ID}/diagnostics", envelope(body))
    result = run("runs", "diagnose", RUN_ID)
    assert result.code == 0, result.err
    assert "validation loss 1.9000" in result.out
    rows = [line.split() for line in result.out.splitlines()]
    header = ["EPOCH", "TRAIN", "LOSS", "TRAIN", "ACC", "VALID", "LOSS", "VALID", "ACC"]
    at = rows.index(header)
    assert rows[at + 1 : at + 4] == [
        ["1", "1.5000", "40.0%", "1.7000", "35.0%"],
        ["2", "0.8000", "70.0%", "1.6000", "40.0%"],
        ["3", "0.2000", "90.0%", "1.9000", "38.0%"],
    ]
    assert "  - Validation loss rose after epoch 2" in result.out
