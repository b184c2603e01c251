"""`tt specs list|get|create|update|delete`, ID prefixes and the `--json` envelopes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.cli.conftest import Api, write

IDS = [
    "abcd1111-0000-4000-8000-000000000001",
    "abcd2222-0000-4000-8000-000000000002",
    "ef015555-0000-4000-8000-000000000003",
]


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Specs get known ids, so prefixes can be made to collide."""
    queue = iter(IDS)
    monkeypatch.setattr("tt_core.adapters.system.UuidGenerator.new_id", lambda self: next(queue))
    return IDS


def create(run: Any, spec: dict[str, Any], name: str) -> dict[str, Any]:
    write("spec.json", spec)
    result = run("specs", "create", "-f", "spec.json", "-n", name, "--json")
    assert result.code == 0, result.out + result.err
    return result.json["data"]


def test_create_applies_overrides_and_prints_the_envelope(
    run: Any, authed: Api, spec: dict[str, Any]
) -> None:
    write("spec.json", {"id": "ignored", **spec, "extra": 1})
    result = run("specs", "create", "-f", "spec.json", "-n", "Override", "--model", "QWEN3.5-4B", "--json")
    assert result.code == 0, result.err
    assert set(result.json) == {"data"}
    data = result.json["data"]
    assert data["name"] == "Override" and data["base_model"] == "Qwen/Qwen3.5-4B"
    assert data["examples"] == spec["examples"]
    text = run("specs", "create", "-f", "spec.json")
    assert text.code == 0 and text.out.startswith("✓ Created behaviour spec ")


def test_create_reports_server_validation_errors(run: Any, authed: Api, spec: dict[str, Any]) -> None:
    write("spec.json", {**spec, "examples": [{"input": "a", "output": ""}]})
    result = run("specs", "create", "-f", "spec.json")
    assert result.code == 1
    assert result.err.splitlines() == [
        "✗ [400] validation_error: Request body is invalid: examples.0.output must not be empty",
        "  - examples.0.output: must not be empty",
    ]
    write("spec.json", spec)
    as_json = run("specs", "create", "-f", "spec.json", "--model", "gpt-5", "--json")
    assert as_json.code == 1
    assert as_json.json["error"]["code"] == "validation_error"  # the envelope exactly as received
    assert as_json.json["error"]["details"][0]["field"] == "base_model"


def test_create_needs_a_file(run: Any, authed: Api) -> None:
    assert run("specs", "create").code == 2
    missing = run("specs", "create", "-f", "nope.json")
    assert missing.code == 1 and missing.err.startswith("✗ [0] cli_error: nope.json not found")


def test_list_table_footer_and_json(
    run: Any, authed: Api, spec: dict[str, Any], fixed_ids: list[str]
) -> None:
    for name in ("one", "two", "three"):
        create(run, spec, name)
    table = run("specs", "list", "--per-page", "2")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "BASE", "MODEL", "EXAMPLES", "RUNS", "LATEST", "RUN", "UPDATED"]
    assert lines[1].startswith(IDS[2]) and "three" in lines[1] and "tunedtensor/tiny-chat" in lines[1]
    assert lines[-1] == "Page 1/2 (total 3)"
    page2 = run("specs", "list", "-p", "2", "--per-page", "2", "--json")
    assert page2.json["meta"] == {"page": 2, "per_page": 2, "total": 3}
    assert [item["id"] for item in page2.json["data"]] == [IDS[0]]
    assert page2.json["data"][0]["_example_count"] == 5
    bad = run("specs", "list", "--per-page", "101")
    assert bad.code == 1 and bad.err.startswith("✗ [400] validation_error:")


def test_list_when_empty(run: Any, authed: Api) -> None:
    result = run("specs", "list")
    assert result.out.splitlines() == ["No behaviour specs.", "Page 1/1 (total 0)"]


def test_get_update_delete_by_prefix(
    run: Any, authed: Api, spec: dict[str, Any], fixed_ids: list[str]
) -> None:
    for name in ("one", "two", "three"):
        create(run, spec, name)
    got = run("specs", "get", "EF01")  # prefixes match case-insensitively
    assert got.code == 0, got.err
    assert f"ID:            {IDS[2]}" in got.out and "Name:          three" in got.out
    assert "Guidelines:\n  - Be concise." in got.out
    assert run("specs", "get", IDS[0].upper(), "--json").json["data"]["_runs"] == []

    write("patch.json", {"description": "new", "guidelines": ["A", "B"]})
    updated = run("specs", "update", "abcd1", "-f", "patch.json", "--model", "starcoder2-3b", "--json")
    assert updated.code == 0, updated.err
    data = updated.json["data"]
    assert (data["id"], data["description"], data["guidelines"]) == (IDS[0], "new", ["A", "B"])
    assert data["base_model"] == "bigcode/starcoder2-3b" and data["name"] == "one"  # partial update
    renamed = run("specs", "update", "abcd2", "-n", "renamed")
    assert renamed.out.startswith(f"✓ Updated behaviour spec {IDS[1]} (renamed)")

    deleted = run("specs", "delete", "abcd2", "-y", "--json")
    assert deleted.code == 0 and deleted.json == {"data": None}
    text = run("specs", "delete", "ef01")  # not a terminal: no question asked
    assert text.code == 0 and text.out.startswith(f"✓ Deleted behaviour spec {IDS[2]}")
    assert [item["id"] for item in run("specs", "list", "--json").json["data"]] == [IDS[0]]


def test_ambiguous_missing_and_short_prefixes(
    run: Any, authed: Api, spec: dict[str, Any], fixed_ids: list[str]
) -> None:
    create(run, spec, "one")
    create(run, spec, "two")
    ambiguous = run("specs", "get", "abcd")
    assert ambiguous.code == 1
    assert ambiguous.err.splitlines() == [
        "✗ [0] ambiguous_id: 'abcd' matches 2 behaviour specs; give more characters",
        f"  - {IDS[1]}: two",
        f"  - {IDS[0]}: one",
    ]
    as_json = run("specs", "delete", "abcd", "-y", "--json")
    assert as_json.json["error"]["code"] == "ambiguous_id" and len(as_json.json["error"]["details"]) == 2

    missing = run("specs", "get", "ffff")
    assert missing.code == 1 and missing.err.startswith(
        "✗ [404] not_found: No behaviour spec id starts with 'ffff'"
    )
    short = run("specs", "get", "abc")
    assert short.code == 1 and short.err.startswith("✗ [0] cli_error:")
    unknown_uuid = run("specs", "get", "00000000-0000-4000-8000-000000000000")
    assert unknown_uuid.err.startswith("✗ [404] not_found: Behaviour spec not found")


def test_prefix_resolution_reads_every_page(
    run: Any, authed: Api, spec: dict[str, Any], fixed_ids: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two", "three"):
        create(run, spec, name)
    monkeypatch.setattr("tt_cli.client.LIST_PAGE_SIZE", 1)
    result = run("specs", "get", "abcd1", "--json")  # the oldest: on the last page
    assert result.code == 0 and result.json["data"]["id"] == IDS[0]


def test_update_needs_a_change(run: Any) -> None:
    result = run("specs", "update", "abcd")
    assert result.code == 2 and "at least one of -f/--file, -n/--name, --model" in result.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_delete_asks_on_a_terminal(
    run: Any, authed: Api, spec: dict[str, Any], fixed_ids: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create(run, spec, "one")
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    declined = run("specs", "delete", "abcd")
    assert (
        declined.code == 1
        and "Delete behaviour spec" in declined.err
        and "nothing was deleted" in declined.err
    )
    assert len(run("specs", "list", "--json").json["data"]) == 1
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert run("specs", "delete", "abcd").code == 0
    assert run("specs", "list", "--json").json["data"] == []


def test_global_options_work_before_and_after_the_command(run: Any, api: Api, spec: dict[str, Any]) -> None:
    before = run("-u", api.base_url, "-k", api.key, "--json", "specs", "list")
    after = run("specs", "list", "-u", api.base_url, "-k", api.key, "--json")
    assert before.code == after.code == 0
    assert (
        json.loads(before.out)
        == json.loads(after.out)
        == {
            "data": [],
            "meta": {"page": 1, "per_page": 20, "total": 0},
        }
    )
