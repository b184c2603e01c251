"""`tt datasets upload|list|get|delete`: the local check, the upload flow over moto, polling, progress."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cli.conftest import Api, write
from tt_cli.commands import datasets
from tt_core.models.datasets import ValidationReport

ROW = {"input": "How do I reset my password?", "output": "Go to Settings > Security."}
GOOD = "\n".join(json.dumps(row) for row in [ROW, ROW, {"input": "Hi", "output": "Hello!"}]) + "\n"
BAD = "\n".join(
    [
        json.dumps(ROW),
        '{"input": "x"}',
        "not json",
        "",
        json.dumps({**ROW, "extra": 1}),
    ]
)
IDS = [
    "abcd1111-0000-4000-8000-000000000001",
    "abcd2222-0000-4000-8000-000000000002",
    "ef015555-0000-4000-8000-000000000003",
]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Validation:
    """Control over the server's validation (the stack's function, run in-process) and the CLI's waits.

    `_sleep` of the CLI never sleeps: it records the wait, moves a fake clock and, unless `held`, lets
    deferred validations run, so one poll later the dataset has settled.
    """

    def __init__(self, lambdas: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sleeps: list[float] = []
        self.clock = 0.0
        self.held = False
        self._lambdas = lambdas
        self._monkeypatch = monkeypatch
        self._original = lambdas.invoke_async
        self._queued: list[tuple[str, dict[str, Any]]] = []
        monkeypatch.setattr("tt_cli.commands.datasets._sleep", self._sleep)
        monkeypatch.setattr("tt_cli.commands.datasets._now", lambda: self.clock)

    def defer(self) -> None:
        """Uploads are validated only at the CLI's next wait, and finalize returns at once."""
        self._monkeypatch.setattr(
            self._lambdas, "invoke_async", lambda name, event: self._queued.append((name, event))
        )
        self._monkeypatch.setattr("tt_core.services.datasets.FINALIZE_WAIT_S", 0.0)

    def release(self) -> None:
        for name, event in self._queued:
            self._original(name, event)
        self._queued.clear()
        self._lambdas.wait()

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds
        if not self.held:
            self.release()


@pytest.fixture
def validation(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Validation:
    return Validation(aws["lambdas"], monkeypatch)


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Datasets get known ids, so prefixes can be made to collide."""
    queue = iter(IDS)
    monkeypatch.setattr("tt_core.adapters.system.UuidGenerator.new_id", lambda self: next(queue))
    return IDS


def listed(run: Any) -> dict[str, Any]:
    result = run("datasets", "list", "--json")
    assert result.code == 0, result.err
    envelope: dict[str, Any] = result.json
    return envelope


def upload(run: Any, name: str, content: str = GOOD) -> dict[str, Any]:
    write(f"{name}.jsonl", content)
    result = run("datasets", "upload", f"{name}.jsonl", "--json")
    assert result.code == 0, result.out + result.err
    data: dict[str, Any] = result.json["data"]
    return data


# -- upload --------------------------------------------------------------------------------------------


def test_upload_validates_and_prints_rows_tokens_duplicates(
    run: Any, authed: Api, validation: Validation
) -> None:
    write("faq.jsonl", GOOD)
    result = run("datasets", "upload", "faq.jsonl", "-d", "Billing questions")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "✓ Checked faq.jsonl: 3 rows, no errors"
    assert lines[1] == f"✓ Uploaded faq.jsonl ({len(GOOD)} B)"
    assert lines[2].startswith("✓ Dataset ") and lines[2].endswith(" (faq) is validated")
    tokens = -(-sum(len(r["input"]) + len(r["output"]) for r in map(json.loads, GOOD.splitlines())) // 4)
    assert lines[3:] == ["Rows:             3", f"Estimated tokens: {tokens}", "Duplicate rows:   1"]
    assert "Uploading" not in result.err and "█" not in result.err  # not a terminal: no progress bar
    assert validation.sleeps == []  # finalize waited for the validation: no poll was needed
    [dataset] = listed(run)["data"]
    assert (dataset["name"], dataset["description"], dataset["status"]) == (
        "faq",
        "Billing questions",
        "validated",
    )
    assert dataset["file_size_bytes"] == len(GOOD.encode())


def test_upload_json_prints_the_final_envelope(run: Any, authed: Api, validation: Validation) -> None:
    write("faq.jsonl", GOOD)
    result = run("datasets", "upload", "faq.jsonl", "-n", "Support FAQ", "--json")
    assert result.code == 0 and "✗" not in result.err
    assert set(result.json) == {"data"}  # the envelope only: no other line on stdout
    data = result.json["data"]
    assert data["name"] == "Support FAQ" and data["description"] is None
    assert (data["status"], data["row_count"], data["duplicate_rows"]) == ("validated", 3, 1)
    assert data["validation_errors"] is None and data["validation_error_count"] == 0
    assert data["source"] == "upload" and data["storage_path"].startswith("s3://")
    assert run("datasets", "get", data["id"], "--json").json == result.json


def test_a_locally_invalid_file_is_never_sent(run: Any, authed: Api) -> None:
    write("bad.jsonl", BAD)
    result = run("datasets", "upload", "bad.jsonl")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].split() == ["LINE", "FIELD", "CODE", "MESSAGE"]
    rows = [line.split(None, 3) for line in lines[1:-1]]
    assert [row[:3] for row in rows] == [
        ["2", "output", "missing_field"],
        ["3", "-", "invalid_json"],
        ["5", "extra", "unknown_field"],
    ]
    # Messages are never cut, whatever their length.
    assert (
        rows[0][3]
        == "Line 2: field 'output' is missing; every row needs non-empty strings 'input' and 'output'."
    )
    assert lines[-1] == "3 errors in total"
    assert result.err.splitlines()[0] == (
        "✗ [0] cli_error: bad.jsonl failed the dataset checks (3 errors); nothing was sent"
    )
    assert listed(run)["meta"]["total"] == 0


def test_the_local_check_needs_no_api_key_and_counts_every_error(run: Any) -> None:
    write("bad.jsonl", "\n".join(['{"input": 1, "output": "x"}'] * 25) + "\n")
    result = run("datasets", "upload", "bad.jsonl")
    assert result.code == 1 and "no_api_key" not in result.err  # failed before any request
    assert len(result.out.splitlines()) == 1 + 20 + 1
    assert result.out.splitlines()[-1] == "25 errors in total (the first 20 shown)"
    as_json = run("datasets", "upload", "bad.jsonl", "--json")
    assert as_json.code == 1 and as_json.err == ""
    error = as_json.json["error"]
    assert error["code"] == "cli_error" and "(25 errors); nothing was sent" in error["message"]
    assert len(error["details"]) == 20
    assert error["details"][0] == {
        "field": "line 1.input",
        "message": "wrong_type: Line 1: field 'input' must be a non-empty string, not a number.",
    }
    write("empty.jsonl", "\n\n")
    empty = run("datasets", "upload", "empty.jsonl", "--json")
    assert empty.code == 1 and empty.json["error"]["details"][0]["field"] == "file"
    assert empty.json["error"]["details"][0]["message"].startswith("empty_file: ")


def test_missing_and_non_regular_files(run: Any, authed: Api) -> None:
    missing = run("datasets", "upload", "nope.jsonl")
    assert missing.code == 1 and missing.err.startswith("✗ [0] cli_error: nope.jsonl not found")
    Path("folder").mkdir()
    folder = run("datasets", "upload", "folder")
    assert folder.code == 1 and folder.err.startswith("✗ [0] cli_error: folder is not a regular file")
    assert run("datasets", "upload").code == 2


def test_upload_polls_every_2_s_until_validated(run: Any, authed: Api, validation: Validation) -> None:
    validation.defer()
    write("faq.jsonl", GOOD)
    result = run("datasets", "upload", "faq.jsonl")
    assert result.code == 0, result.err
    assert validation.sleeps == [2.0]
    assert "Waiting for the server to validate dataset " in result.out
    assert "is validated\nRows:             3\n" in result.out


def test_no_wait_prints_the_dataset_after_finalize(run: Any, authed: Api, validation: Validation) -> None:
    validation.defer()
    write("faq.jsonl", GOOD)
    result = run("datasets", "upload", "faq.jsonl", "--no-wait")
    assert result.code == 0, result.err
    assert validation.sleeps == []
    assert "Status:           pending_upload" in result.out
    dataset_id = listed(run)["data"][0]["id"]
    assert f"check it with `tt datasets get {dataset_id}`" in result.out
    as_json = run("datasets", "upload", "faq.jsonl", "--no-wait", "--json")
    assert as_json.code == 0 and as_json.json["data"]["status"] == "pending_upload"
    validation.release()
    assert {item["status"] for item in listed(run)["data"]} == {"validated"}


def test_polling_gives_up_after_10_minutes(
    run: Any, authed: Api, validation: Validation, monkeypatch: pytest.MonkeyPatch
) -> None:
    validation.defer()
    validation.held = True
    write("faq.jsonl", GOOD)
    assert datasets.POLL_TIMEOUT_S == 600
    monkeypatch.setattr("tt_cli.commands.datasets.POLL_TIMEOUT_S", 20.0)  # fewer polls, same rule
    result = run("datasets", "upload", "faq.jsonl")
    assert result.code == 1
    assert validation.sleeps == [2.0] * 10
    dataset_id = listed(run)["data"][0]["id"]
    assert result.err.splitlines()[-2:] == [
        f"✗ [0] cli_error: Dataset {dataset_id} is still pending_upload after 20 seconds",
        f"  hint: Check it later with `tt datasets get {dataset_id}`.",
    ]


def test_a_dataset_the_server_finds_invalid_exits_1(
    run: Any, authed: Api, validation: Validation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local check that passes what the server refuses (as if the file changed after the check).
    passed = ValidationReport(valid=True, row_count=1, file_size_bytes=1)
    monkeypatch.setattr("tt_core.datasets.validator.validate_file", lambda path: passed)
    write("bad.jsonl", BAD)
    result = run("datasets", "upload", "bad.jsonl")
    assert result.code == 1
    out = result.out.splitlines()
    assert out[2].startswith("✗ Dataset ") and out[2].endswith(" (bad) is invalid")
    assert out[3].split() == ["LINE", "FIELD", "CODE", "MESSAGE"]
    assert [line.split()[:3] for line in out[4:7]] == [
        ["2", "output", "missing_field"],
        ["3", "-", "invalid_json"],
        ["5", "extra", "unknown_field"],
    ]
    assert out[7:] == ["3 errors in total"]
    as_json = run("datasets", "upload", "bad.jsonl", "--json")
    assert as_json.code == 1
    assert as_json.json["data"]["status"] == "invalid" and as_json.json["data"]["validation_error_count"] == 3
    # `get` shows the same errors.
    got = run("datasets", "get", as_json.json["data"]["id"])
    assert "Status:           invalid" in got.out and got.out.endswith("3 errors in total\n")


def _fake_put(status: int, body: str) -> Any:
    def put(method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs["data"].read()
        response = requests.Response()
        response.status_code = status
        response._content = body.encode()
        return response

    return put


def test_a_refused_put_is_an_error_and_leaves_no_dataset(
    run: Any, authed: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    xml = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    monkeypatch.setattr("tt_cli.commands.datasets.requests.request", _fake_put(403, xml))
    write("faq.jsonl", GOOD)
    result = run("datasets", "upload", "faq.jsonl")
    assert result.code == 1
    assert result.err.splitlines() == [
        "✗ [0] cli_error: Storage refused the upload of faq.jsonl"
        " (HTTP 403 AccessDenied: Request has expired)",
        "  hint: Nothing was stored; run the upload again.",
    ]
    assert "Uploaded" not in result.out
    assert listed(run)["meta"]["total"] == 0  # the pending dataset was discarded
    as_json = run("datasets", "upload", "faq.jsonl", "--json")
    assert as_json.code == 1 and as_json.json["error"]["code"] == "cli_error"

    def unreachable(method: str, url: str, **kwargs: Any) -> requests.Response:
        raise requests.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused")

    monkeypatch.setattr("tt_cli.commands.datasets.requests.request", unreachable)
    down = run("datasets", "upload", "faq.jsonl")
    assert down.code == 1
    assert down.err.startswith(
        "✗ [0] connection_error: Cannot reach storage to upload faq.jsonl: connection refused"
    )


def test_the_put_sends_exactly_the_signed_headers_and_streams_the_file(
    run: Any, authed: Api, validation: Validation, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    real = requests.request

    def spy(method: str, url: str, **kwargs: Any) -> requests.Response:
        seen.update(method=method, headers=kwargs["headers"], body=kwargs["data"])
        return real(method, url, **kwargs)

    monkeypatch.setattr("tt_cli.commands.datasets.requests.request", spy)
    write("faq.jsonl", GOOD)
    assert run("datasets", "upload", "faq.jsonl").code == 0
    assert seen["method"] == "PUT"
    assert set(seen["headers"]) == {"Content-Type", "If-None-Match", "x-amz-tagging"}
    assert seen["headers"]["Content-Type"] == "application/octet-stream"
    assert isinstance(seen["body"], datasets.ProgressReader)  # streamed from the file, never read whole first


# -- progress ------------------------------------------------------------------------------------------


def test_the_progress_bar_is_drawn_on_a_terminal_only(
    run: Any, authed: Api, validation: Validation, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("faq.jsonl", GOOD)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert run("datasets", "upload", "faq.jsonl").code == 0
    drawn = terminal.getvalue()
    assert drawn.startswith("\rUploading faq.jsonl [") and drawn.endswith("\n")
    assert f"100%  {len(GOOD)} B / {len(GOOD)} B" in drawn
    terminal.truncate(0)
    terminal.seek(0)
    assert run("datasets", "upload", "faq.jsonl", "--json").code == 0
    assert "Uploading" not in terminal.getvalue()  # --json: no bar


def test_byte_progress_redraws_one_line() -> None:
    stream = io.StringIO()
    now = [0.0]
    bar = datasets.ByteProgress(stream, 4096, "Uploading f", clock=lambda: now[0])
    bar.advance(1024)  # the first read is drawn at once
    bar.advance(1024)  # too soon: not drawn
    now[0] = 1.0
    bar.advance(1024)
    bar.advance(1024)  # the end is always drawn
    bar.close()
    frames = stream.getvalue().split("\r")[1:]
    assert [frame.split("]")[1].split() for frame in frames] == [
        ["25%", "1.0", "KB", "/", "4.0", "KB"],
        ["75%", "3.0", "KB", "/", "4.0", "KB"],
        ["100%", "4.0", "KB", "/", "4.0", "KB"],
    ]
    assert frames[0].startswith("Uploading f [" + "█" * 8 + "░" * 22 + "]")
    assert stream.getvalue().endswith("\n") and "\n" not in stream.getvalue()[:-1]
    assert (
        len({len(frame.rstrip("\n")) for frame in frames}) == 1
    )  # padded: a shorter frame covers a longer one

    empty = io.StringIO()
    datasets.ByteProgress(empty, 0, "Uploading e").close()  # nothing read: drawn once, complete
    assert "100%" in empty.getvalue()


def test_progress_reader_reports_reads_and_gives_requests_a_length(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"x" * 100_000)
    reported: list[int] = []
    with path.open("rb") as handle:
        reader = datasets.ProgressReader(handle, 100_000, reported.append)
        prepared = requests.Request("PUT", "http://storage.invalid/k", data=reader).prepare()
        assert prepared.headers["Content-Length"] == "100000"  # not chunked: S3 needs the length
        assert "Transfer-Encoding" not in prepared.headers and prepared.body is reader
        assert len(reader.read(16_384)) == 16_384
        assert b"".join(reader) == b"x" * (100_000 - 16_384)
        assert reader.read() == b""
    assert sum(reported) == 100_000 and reported[0] == 16_384


def test_human_bytes() -> None:
    assert [datasets.human_bytes(n) for n in (None, 0, 1023, 1024, 1536, 104_857_600, 5 * 1024**4)] == [
        None,
        "0 B",
        "1,023 B",
        "1.0 KB",
        "1.5 KB",
        "100.0 MB",
        "5120.0 GB",
    ]


# -- list, get, delete ---------------------------------------------------------------------------------


def test_list_table_footer_and_json(
    run: Any, authed: Api, validation: Validation, fixed_ids: list[str]
) -> None:
    for name in ("one", "two", "three"):
        upload(run, name)
    table = run("datasets", "list", "--per-page", "2")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "ROWS", "SIZE", "SOURCE", "CREATED"]
    assert lines[1].split()[:6] == [IDS[2], "three", "validated", "3", f"{len(GOOD)}", "B"]
    assert lines[1].split()[6] == "upload"
    assert lines[-1] == "Page 1/2 (total 3)"
    page2 = run("datasets", "list", "-p", "2", "--per-page", "2", "--json")
    assert page2.json["meta"] == {"page": 2, "per_page": 2, "total": 3}
    assert [item["id"] for item in page2.json["data"]] == [IDS[0]]
    bad = run("datasets", "list", "--per-page", "0")
    assert bad.code == 1 and bad.err.startswith("✗ [400] validation_error:")


def test_list_when_empty(run: Any, authed: Api) -> None:
    assert run("datasets", "list").out.splitlines() == ["No datasets.", "Page 1/1 (total 0)"]


def test_get_and_delete_by_prefix(
    run: Any, authed: Api, validation: Validation, fixed_ids: list[str]
) -> None:
    for name in ("one", "two", "three"):
        upload(run, name)
    got = run("datasets", "get", "EF01")  # prefixes match case-insensitively
    assert got.code == 0, got.err
    assert f"ID:               {IDS[2]}" in got.out and "Name:             three" in got.out
    assert "Status:           validated" in got.out and "Duplicate rows:   1" in got.out
    assert run("datasets", "get", IDS[0].upper(), "--json").json["data"]["name"] == "one"

    ambiguous = run("datasets", "get", "abcd")
    assert ambiguous.code == 1
    assert ambiguous.err.splitlines() == [
        "✗ [0] ambiguous_id: 'abcd' matches 2 datasets; give more characters",
        f"  - {IDS[1]}: two",
        f"  - {IDS[0]}: one",
    ]
    missing = run("datasets", "get", "ffff")
    assert missing.code == 1 and missing.err.startswith("✗ [404] not_found: No dataset id starts with 'ffff'")
    unknown = run("datasets", "get", "00000000-0000-4000-8000-000000000000")
    assert unknown.err.startswith("✗ [404] not_found: Dataset not found")
    short = run("datasets", "delete", "abc", "-y")
    assert short.code == 1 and short.err.startswith("✗ [0] cli_error:")

    deleted = run("datasets", "delete", "abcd2", "-y", "--json")
    assert deleted.code == 0 and deleted.json == {"data": None}
    text = run("datasets", "delete", "ef01")  # not a terminal: no question asked
    assert text.code == 0 and text.out == f"✓ Deleted dataset {IDS[2]}\n"
    assert [item["id"] for item in listed(run)["data"]] == [IDS[0]]


def test_delete_asks_on_a_terminal(
    run: Any, authed: Api, validation: Validation, fixed_ids: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(run, "one")
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    declined = run("datasets", "delete", "abcd")
    assert declined.code == 1
    assert f"Delete dataset {IDS[0]} and its file? [y/N]" in declined.err
    assert "nothing was deleted" in declined.err
    assert listed(run)["meta"]["total"] == 1
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert run("datasets", "delete", "abcd").code == 0
    monkeypatch.setattr("sys.stdin", _Terminal(""))
    assert listed(run)["data"] == []
