"""`tt models list|get` against the scripted fake API of test_runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.test_runs import JOB_ID, RUN_ID, SPEC_ID, FakeApi, page, serve_fake
from tt_cli.main import build_parser


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    with serve_fake(monkeypatch) as api:
        yield api


MODEL_IDS = [
    "0dd10000-0000-4000-8000-000000000001",
    "0dd12222-0000-4000-8000-000000000002",
    "7e570000-0000-4000-8000-000000000003",
]


def model(model_id: str, name: str, **fields: Any) -> dict[str, Any]:
    """A model object (PRODUCT.md §11)."""
    return {
        "id": model_id,
        "name": name,
        "provider": "tunedtensor",
        "provider_model_id": f"s3://artifacts/models/{model_id}/model.tar.gz",
        "base_model": "meta-llama/Llama-3.2-3B-Instruct",
        "run_id": RUN_ID,
        "behavior_spec_id": SPEC_ID,
        "fine_tune_job_id": JOB_ID,
        "description": "Support Bot run #3",
        "created_at": "2026-03-06T09:02:10.000Z",
        **fields,
    }


MODELS = [
    model(MODEL_IDS[2], "Llama-3.2-3B-Instruct-ft-7e570000", behavior_spec_id=None, run_id=None),
    model(MODEL_IDS[1], "Llama-3.2-3B-Instruct-ft-0dd12222"),
    model(MODEL_IDS[0], "Llama-3.2-3B-Instruct-ft-b3e2b918"),
]


def test_list_table_footer_and_json(run: Any, fake: FakeApi) -> None:
    listed = page(MODELS[:2], per_page=2, total=3)
    fake.on("GET", "/models", listed)
    result = run("models", "list", "--per-page", "2")
    assert result.code == 0, result.err
    assert fake.requests[0].query == {"page": "1", "per_page": "2"}
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "BASE", "MODEL", "RUN", "CREATED"]
    assert lines[1].split() == [
        MODEL_IDS[2],
        "Llama-3.2-3B-Instruct-ft-7e570000",
        "meta-llama/Llama-3.2-3B-Instruct",
        "-",  # the spec (and so the run) was deleted
        "2026-03-06T09:02:10.000Z",
    ]
    assert lines[2].split()[3] == RUN_ID
    assert lines[-1] == "Page 1/2 (total 3)"
    as_json = run("models", "list", "-p", "1", "--per-page", "2", "--json")
    assert as_json.code == 0 and as_json.json == listed


def test_list_when_empty(run: Any, fake: FakeApi) -> None:
    fake.on("GET", "/models", page([]))
    assert run("models", "list").out.splitlines() == ["No models.", "Page 1/1 (total 0)"]


def test_get_by_prefix_and_json(run: Any, fake: FakeApi) -> None:
    fake.on("GET", "/models", page(MODELS, per_page=100))
    fake.on("GET", f"/models/{MODEL_IDS[2]}", {"data": MODELS[0]})
    result = run("models", "get", "7E57")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"ID:           {MODEL_IDS[2]}",
        "Name:         Llama-3.2-3B-Instruct-ft-7e570000",
        "Description:  Support Bot run #3",
        "Base model:   meta-llama/Llama-3.2-3B-Instruct",
        "Run:          -",
        "Spec:         -",
        f"Training job: {JOB_ID}",
        "Provider:     tunedtensor",
        f"Artifact:     s3://artifacts/models/{MODEL_IDS[2]}/model.tar.gz",
        "Created:      2026-03-06T09:02:10.000Z",
    ]
    assert fake.seen("GET", "/models")[0].query == {"page": "1", "per_page": "100"}
    assert run("models", "get", MODEL_IDS[2], "--json").json == {"data": MODELS[0]}


def test_ambiguous_and_unknown_model_ids(run: Any, fake: FakeApi) -> None:
    fake.on("GET", "/models", page(MODELS, per_page=100))
    ambiguous = run("models", "get", "0dd1")
    assert ambiguous.code == 1
    assert ambiguous.err.splitlines() == [
        "✗ [0] ambiguous_id: '0dd1' matches 2 models; give more characters",
        f"  - {MODEL_IDS[1]}: Llama-3.2-3B-Instruct-ft-0dd12222",
        f"  - {MODEL_IDS[0]}: Llama-3.2-3B-Instruct-ft-b3e2b918",
    ]
    missing = run("models", "get", "ffff")
    assert missing.code == 1 and missing.err.startswith("✗ [404] not_found: No model id starts with 'ffff'")
    unknown = "00000000-0000-4000-8000-000000000000"
    fake.on(
        "GET", f"/models/{unknown}", (404, {"error": {"code": "not_found", "message": "Model not found"}})
    )
    as_json = run("models", "get", unknown, "--json")
    assert as_json.code == 1
    assert as_json.json == {"error": {"code": "not_found", "message": "Model not found"}}


def test_the_models_group_can_take_more_subcommands() -> None:
    import argparse

    from tt_cli.commands import tuned_models

    parser = argparse.ArgumentParser()
    commands = tuned_models.register(parser.add_subparsers(dest="command", required=True))
    commands.add_parser("extra").set_defaults(func="extra")
    assert parser.parse_args(["models", "extra"]).func == "extra"
    assert parser.parse_args(["models", "get", "abcd"]).id == "abcd"
    assert build_parser().parse_args(["models", "list", "-p", "2"]).page == 2
