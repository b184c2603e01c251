"""Printing: text tables and summaries, `--json` envelopes, errors on stderr, colour (§14.2)."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TextIO

from tt_cli.errors import CliError

_GREEN, _RED, _YELLOW, _DIM, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m"
MAX_CELL = 48


def color_enabled(no_color_flag: bool, stream: TextIO) -> bool:
    """Colour only on a terminal, and never with --no-color or a non-empty NO_COLOR (no-color.org)."""
    if no_color_flag or os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _cell(value: Any, *, cut: bool = True) -> str:
    if value is None:
        return "-"
    text = str(value).replace("\n", " ")
    return text if not cut or len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render_table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], *, uncut: Collection[str] = ()
) -> str:
    """Aligned columns; cells longer than MAX_CELL are cut, except in the columns named in `uncut`."""
    keep = [header in uncut for header in headers]
    cells = [[_cell(v, cut=not k) for v, k in zip(row, keep, strict=True)] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def page_footer(meta: Mapping[str, Any]) -> str:
    page, per_page, total = int(meta.get("page", 1)), int(meta.get("per_page", 20)), int(meta.get("total", 0))
    pages = max(1, math.ceil(total / per_page)) if per_page else 1
    return f"Page {page}/{pages} (total {total})"


class Output:
    """One per invocation; the streams are looked up at print time so redirection (and capsys) work."""

    def __init__(self, *, json_mode: bool = False, no_color: bool = False) -> None:
        self.json_mode = json_mode
        self._no_color = no_color

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    def _paint(self, text: str, color: str, stream: TextIO) -> str:
        return f"{color}{text}{_RESET}" if color_enabled(self._no_color, stream) else text

    def line(self, text: str = "", *, err: bool = False) -> None:
        stream = self.stderr if err else self.stdout
        print(text, file=stream)

    def json(self, payload: Any) -> None:
        print(json.dumps(payload, indent=2, ensure_ascii=False), file=self.stdout)

    def success(self, text: str) -> None:
        self.line(self._paint("✓", _GREEN, self.stdout) + " " + text)

    def warning(self, text: str, *, err: bool = True) -> None:
        stream = self.stderr if err else self.stdout
        self.line(self._paint("!", _YELLOW, stream) + " " + text, err=err)

    def failure(self, text: str, *, err: bool = False) -> None:
        stream = self.stderr if err else self.stdout
        self.line(self._paint("✗", _RED, stream) + " " + text, err=err)

    def dim(self, text: str) -> None:
        self.line(self._paint(text, _DIM, self.stdout))

    def table(
        self, rows: Sequence[Sequence[Any]], headers: Sequence[str], *, uncut: Collection[str] = ()
    ) -> None:
        self.line(render_table(rows, headers, uncut=uncut))

    def footer(self, meta: Mapping[str, Any]) -> None:
        self.dim(page_footer(meta))

    def page(
        self, rows: Sequence[Sequence[Any]], headers: Sequence[str], meta: Mapping[str, Any], *, empty: str
    ) -> None:
        """One page of a list endpoint: the table (or `empty`), then `Page p/N (total T)`."""
        if rows:
            self.table(rows, headers)
        else:
            self.line(empty)
        self.footer(meta)

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Aligned `Label: value` lines for a single object."""
        width = max(len(label) for label, _ in pairs) + 1
        for label, value in pairs:
            self.line(f"{(label + ':').ljust(width)} {'-' if value in (None, '') else value}")

    def error(self, error: CliError) -> None:
        """`--json`: the error envelope on stdout; text: `✗ [status] code: message` and details on stderr."""
        if self.json_mode:
            self.json(error.to_envelope())
            return
        self.failure(f"[{error.status}] {error.code}: {error.message}", err=True)
        for detail in error.details:
            self.line(f"  - {detail.field}: {detail.message}", err=True)
        if error.hint:
            self.line(f"  hint: {error.hint}", err=True)
