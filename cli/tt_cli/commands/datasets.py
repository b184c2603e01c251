"""`tt datasets list|get|delete|upload` (PRODUCT.md §8, §14.3, §14.4)."""

from __future__ import annotations

import contextlib
import mimetypes
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import requests

from tt_cli.client import TIMEOUT, ApiResponse, _reason
from tt_cli.commands.resources import delete_confirmed, delete_parser, id_argument, list_page, paging_options
from tt_cli.context import Context
from tt_cli.errors import CLI_ERROR, CONNECTION_ERROR, CliError

DATASETS_PATH = "/datasets"
UPLOAD_URL_PATH = "/datasets/upload-url"
FINALIZE_PATH = "/datasets/finalize"
NOUN = "dataset"
TERMINAL = frozenset({"validated", "invalid"})
POLL_INTERVAL_S = 2.0
POLL_TIMEOUT_S = 600.0
ISSUE_HEADERS = ["LINE", "FIELD", "CODE", "MESSAGE"]
DEFAULT_CONTENT_TYPE = "application/octet-stream"
READ_CHUNK = 64 * 1024  # iteration only; requests streams a file-like body in its own block size
BAR_WIDTH = 30
REDRAW_S = 0.1


def _sleep(seconds: float) -> None:
    """Indirection so tests can skip the waits between polls."""
    time.sleep(seconds)


def _now() -> float:
    """Indirection so tests can move the clock of the poll deadline."""
    return time.monotonic()


def register(subparsers: Any) -> None:
    datasets = subparsers.add_parser("datasets", help="manage training datasets (JSONL)")
    commands = datasets.add_subparsers(dest="datasets_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list datasets, newest first")
    paging_options(listing)
    listing.set_defaults(func=list_command)

    get = commands.add_parser("get", help="show one dataset and its validation result")
    id_argument(get, NOUN)
    get.set_defaults(func=get_command)

    delete_parser(commands, NOUN, "and its file").set_defaults(func=delete_command)

    upload = commands.add_parser(
        "upload", help="check a JSONL file locally, upload it and wait for its validation"
    )
    upload.add_argument("file", metavar="FILE", help='JSONL file, one {"input", "output"} object per line')
    upload.add_argument("-n", "--name", help="dataset name (default: the file name without its extension)")
    upload.add_argument("-d", "--description", help="dataset description")
    upload.add_argument(
        "--no-wait", action="store_true", help="do not wait for the server's validation to finish"
    )
    upload.set_defaults(func=upload_command)


def resolve(ctx: Context, value: str) -> str:
    return ctx.client.resolve_id(DATASETS_PATH, value, NOUN)


# -- rendering ---------------------------------------------------------------------------------------


def human_bytes(size: int | None) -> str | None:
    """`1,023 B`, `1.5 KB`, `100.0 MB` (1024-based, as the 100 MB limit is)."""
    if size is None:
        return None
    if size < 1024:
        return f"{size:,} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def print_issues(ctx: Context, issues: Sequence[Mapping[str, Any]], total: int) -> None:
    """The kept validation errors as a table, then the total (all errors found, not only those kept)."""
    rows = [[i.get("line"), i.get("field"), i.get("code"), i.get("message")] for i in issues]
    if rows:
        ctx.out.table(rows, ISSUE_HEADERS, uncut={"MESSAGE"})
    shown = f" (the first {len(rows)} shown)" if total > len(rows) else ""
    ctx.out.line(f"{_count(total, 'error')} in total{shown}")


def _stats(dataset: Mapping[str, Any]) -> list[tuple[str, Any]]:
    def number(key: str) -> str | None:
        value = dataset.get(key)
        return f"{value:,}" if isinstance(value, int) else None

    return [
        ("Rows", number("row_count")),
        ("Estimated tokens", number("estimated_tokens")),
        ("Duplicate rows", number("duplicate_rows")),
    ]


def render_dataset(ctx: Context, dataset: Mapping[str, Any]) -> None:
    ctx.out.fields(
        [
            ("ID", dataset.get("id")),
            ("Name", dataset.get("name")),
            ("Description", dataset.get("description")),
            ("Status", dataset.get("status")),
            ("Format", dataset.get("format")),
            ("Source", dataset.get("source")),
            ("Run", dataset.get("run_id")),
            *_stats(dataset),
            ("File size", human_bytes(dataset.get("file_size_bytes"))),
            ("Storage path", dataset.get("storage_path")),
            ("Created", dataset.get("created_at")),
            ("Updated", dataset.get("updated_at")),
        ]
    )
    if dataset.get("status") == "invalid":
        ctx.out.line()
        print_issues(
            ctx, dataset.get("validation_errors") or [], int(dataset.get("validation_error_count") or 0)
        )


# -- list, get, delete -------------------------------------------------------------------------------


def list_command(ctx: Context) -> int:
    response = list_page(ctx, DATASETS_PATH)

    def render(response: ApiResponse) -> None:
        rows = [
            [
                item["id"],
                item.get("name"),
                item.get("status"),
                item.get("row_count"),
                human_bytes(item.get("file_size_bytes")),
                item.get("source"),
                item.get("created_at"),
            ]
            for item in response.data or []
        ]
        headers = ["ID", "NAME", "STATUS", "ROWS", "SIZE", "SOURCE", "CREATED"]
        ctx.out.page(rows, headers, response.meta, empty="No datasets.")

    return ctx.emit(response, render)


def get_command(ctx: Context) -> int:
    response = ctx.client.get(f"{DATASETS_PATH}/{resolve(ctx, ctx.args.id)}")
    return ctx.emit(response, lambda r: render_dataset(ctx, r.data))


def delete_command(ctx: Context) -> int:
    return delete_confirmed(ctx, DATASETS_PATH, resolve(ctx, ctx.args.id), NOUN, "and its file")


# -- upload: progress --------------------------------------------------------------------------------


class ByteProgress:
    """One line redrawn in place: `label [█████░░░░░]  50%  1.0 MB / 2.0 MB` (at most every REDRAW_S)."""

    def __init__(
        self, stream: TextIO, total: int, label: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._total = total
        self._label = label
        self._clock = clock
        self.sent = 0
        self._drawn_at: float | None = None
        self._width = 0  # of the longest line drawn, so a shorter one fully covers it

    def advance(self, n: int) -> None:
        self.sent += n
        now = self._clock()
        if self._drawn_at is None or now - self._drawn_at >= REDRAW_S or self.sent >= self._total:
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        fraction = min(self.sent / self._total, 1.0) if self._total else 1.0
        filled = round(BAR_WIDTH * fraction)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        text = (
            f"{self._label} [{bar}] {fraction * 100:3.0f}%  "
            f"{human_bytes(self.sent)} / {human_bytes(self._total)}"
        )
        self._width = max(self._width, len(text))
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()

    def close(self) -> None:
        """Ends the line (drawing it once more when nothing was drawn yet)."""
        if self._drawn_at is None:
            self._draw(self._clock())
        self._stream.write("\n")
        self._stream.flush()


class ProgressReader:
    """A binary file as a `requests` body, streamed, each read reported to `on_read`.

    `__len__` gives requests the Content-Length (a presigned S3 PUT refuses chunked transfer encoding);
    `__iter__` makes requests treat the object as a stream, which urllib3 then sends in `read(n)` blocks.
    """

    def __init__(self, handle: BinaryIO, size: int, on_read: Callable[[int], None]) -> None:
        self._handle = handle
        self._size = size
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if chunk:
            self._on_read(len(chunk))
        return chunk

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(READ_CHUNK):
            yield chunk


# -- upload: the flow --------------------------------------------------------------------------------


def _regular_file(path: Path) -> int:
    """The file's size; a missing, unreadable or non-regular file is a `cli_error`."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CliError.local(f"{path} not found") from None
    except OSError as error:
        raise CliError.local(f"Cannot read {path}: {error.strerror or error}") from None
    if not path.is_file():
        raise CliError.local(f"{path} is not a regular file")
    return info.st_size


def _where(issue: Mapping[str, Any]) -> str:
    """An issue's place as a `--json` detail field: `file`, `line 3` or `line 3.output`."""
    if issue.get("line") is None:
        return "file"
    return f"line {issue['line']}" + (f".{issue['field']}" if issue.get("field") else "")


def check_locally(ctx: Context, path: Path) -> None:
    """The server's row rules (the shared validator) run before anything is sent; failures end here."""
    from tt_core.datasets import validator  # only `upload` needs the validator: not loaded for other commands

    try:
        report = validator.validate_file(path)
    except OSError as error:
        raise CliError.local(f"Cannot read {path}: {error.strerror or error}") from None
    if report.valid:
        if not ctx.json_mode:
            ctx.out.success(f"Checked {path}: {_count(report.row_count or 0, 'row')}, no errors")
        return
    issues = [issue.model_dump() for issue in report.errors]
    message = f"{path} failed the dataset checks ({_count(report.error_count, 'error')}); nothing was sent"
    if ctx.json_mode:
        details = [{"field": _where(i), "message": f"{i['code']}: {i['message']}"} for i in issues]
        envelope = {"error": {"code": "cli_error", "message": message, "details": details}}
        raise CliError(0, CLI_ERROR, message, envelope=envelope)
    print_issues(ctx, issues, report.error_count)
    raise CliError.local(message, hint='Each line must be one JSON object {"input": "…", "output": "…"}.')


def _storage_error(response: requests.Response) -> str:
    """`HTTP 403 AccessDenied: Request has expired` from S3's XML error body, when there is one."""
    text = response.text or ""
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    parts = [f"HTTP {response.status_code}"]
    if code:
        parts.append(code.group(1))
    result = " ".join(parts)
    if message:
        result += f": {message.group(1)}"
    elif not code and text.strip():
        snippet = " ".join(text.split())
        result += f": {snippet[:200]}{'…' if len(snippet) > 200 else ''}"
    return result


def _discard(ctx: Context, dataset_id: str) -> None:
    """Best effort: a failed upload leaves no pending dataset behind (it would expire in 24 h anyway)."""
    with contextlib.suppress(CliError):
        ctx.client.delete(f"{DATASETS_PATH}/{dataset_id}")


def put_file(ctx: Context, issued: Mapping[str, Any], path: Path, size: int) -> None:
    """Streams the file to the presigned URL with exactly the signed headers; a bar on a terminal."""
    show_bar = not ctx.json_mode and bool(getattr(sys.stderr, "isatty", lambda: False)())
    bar = ByteProgress(sys.stderr, size, f"Uploading {path.name}") if show_bar else None
    error: CliError | None = None
    try:
        with path.open("rb") as handle:
            body = ProgressReader(handle, size, bar.advance if bar else lambda _: None)
            response = requests.request(
                str(issued.get("method") or "PUT"),
                issued["upload_url"],
                data=body,
                headers=dict(issued.get("headers") or {}),
                timeout=TIMEOUT,
            )
        if not 200 <= response.status_code < 300:
            error = CliError.local(f"Storage refused the upload of {path} ({_storage_error(response)})")
    except (requests.ConnectionError, requests.Timeout) as failure:
        error = CliError(0, CONNECTION_ERROR, f"Cannot reach storage to upload {path}: {_reason(failure)}")
    except OSError as failure:
        error = CliError.local(f"Cannot read {path}: {failure.strerror or failure}")
    finally:
        if bar:
            bar.close()
    if error is not None:
        _discard(ctx, issued["dataset_id"])
        error.hint = "Nothing was stored; run the upload again."
        raise error


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"


def _wait(ctx: Context, response: ApiResponse) -> ApiResponse:
    """Polls `GET /datasets/:id` every 2 s until validated or invalid, for at most 10 minutes."""
    dataset_id = response.data["id"]
    if response.data.get("status") not in TERMINAL and not ctx.json_mode:
        ctx.out.dim(f"Waiting for the server to validate dataset {dataset_id}…")
    deadline = _now() + POLL_TIMEOUT_S
    while (status := response.data.get("status")) not in TERMINAL:
        if _now() >= deadline:
            raise CliError.local(
                f"Dataset {dataset_id} is still {status} after {_duration(POLL_TIMEOUT_S)}",
                hint=f"Check it later with `tt datasets get {dataset_id}`.",
            )
        _sleep(POLL_INTERVAL_S)
        response = ctx.client.get(f"{DATASETS_PATH}/{dataset_id}")
    return response


def _report(ctx: Context, response: ApiResponse) -> int:
    """The outcome: exit 0 for validated (or still running with --no-wait), 1 for invalid."""
    dataset = response.data
    status = dataset.get("status")
    code = 1 if status == "invalid" else 0
    if ctx.json_mode:
        ctx.out.json(response.envelope)
        return code
    label = f"Dataset {dataset.get('id')} ({dataset.get('name')})"
    if status == "validated":
        ctx.out.success(f"{label} is validated")
        ctx.out.fields(_stats(dataset))
    elif status == "invalid":
        ctx.out.failure(f"{label} is invalid")
        print_issues(
            ctx, dataset.get("validation_errors") or [], int(dataset.get("validation_error_count") or 0)
        )
    else:
        render_dataset(ctx, dataset)
        ctx.out.line(f"Validation goes on; check it with `tt datasets get {dataset.get('id')}`.")
    return code


def upload_command(ctx: Context) -> int:
    path = Path(ctx.args.file)
    size = _regular_file(path)
    check_locally(ctx, path)
    name = ctx.args.name if ctx.args.name is not None else path.stem
    described = {} if ctx.args.description is None else {"description": ctx.args.description}
    issued = ctx.client.post(
        UPLOAD_URL_PATH,
        {
            "name": name,
            **described,
            "filename": path.name,
            "size": size,
            "contentType": mimetypes.guess_type(path.name)[0] or DEFAULT_CONTENT_TYPE,
        },
    ).data
    put_file(ctx, issued, path, size)
    if not ctx.json_mode:
        ctx.out.success(f"Uploaded {path} ({human_bytes(size)})")
    # Finalize is repeatable (PRODUCT.md §8), so it may be retried like a GET.
    response = ctx.client.post(
        FINALIZE_PATH, {"path": issued["path"], "name": name, **described}, idempotent=True
    )
    if not ctx.args.no_wait:
        response = _wait(ctx, response)
    return _report(ctx, response)
