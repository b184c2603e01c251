"""Streaming validation of uploaded JSONL datasets (PRODUCT.md §8) for the validator function and the CLI."""

from __future__ import annotations

import json
import os
import re
import stat
from array import array
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import msgspec
import numpy as np
import simdjson

from tt_core.models.datasets import (
    MAX_DATASET_BYTES,
    MAX_REPORTED_ISSUES,
    ValidationIssue,
    ValidationReport,
)

MAX_LINE_BYTES = 1_048_576
CHUNK_BYTES = 1_048_576
FIELDS = ("input", "output")

_BOM = b"\xef\xbb\xbf"
# A pending line may hold one byte more than the limit: the CR of a CRLF ending, not part of the line.
_PENDING_CAP = MAX_LINE_BYTES + 1
# JSON whitespace other than LF, which ends a line: a line of only these is blank.
_JSON_SPACE = " \t\r"
# Unknown keys are user data of any length; an issue stores at most this much of one (DynamoDB items are
# limited to 400 KB and 20 issues are kept).
_SHOWN_KEY_CHARS = 100
_MISSING = object()

# U+0000–U+001F and U+007F–U+009F except tab, LF and CR (PRODUCT.md §8).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Of these, a line that parses as JSON can hold as is only DEL and C1 (UTF-8 C2 80–C2 9F): JSON refuses
# raw C0 characters inside strings.
_RAW_C1 = re.compile(rb"\xc2[\x80-\x9f]")
# Bytes as ints: `int in bytes` is a memchr, where `bytes in bytes` first sets up a substring search.
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


def _may_hold_raw_control_characters(line: bytes) -> bool:
    return 0x7F in line or (0xC2 in line and _RAW_C1.search(line) is not None)


# The fast loop (`RowValidator._check_plain_rows`) takes the common valid row without building a string
# of it. msgspec reads the line in one C pass that checks its JSON (every rule but UTF-8: raw control
# characters, bad escapes and lone surrogate escapes are refused) and that its keys are exactly `input`
# and `output`, and hands back each value as the bytes it is written with (`msgspec.Raw`). Where the
# block is known to be valid UTF-8 (`_TextFacts`), those bytes are all the counts need: a value's
# characters are its bytes less its UTF-8 continuation bytes, its two quotes and what its escapes save,
# and, where it is written as the file's style writes it (`_Style`), its bytes are its duplicate key.
# Where it cannot tell, `_check_decoded` (msgspec decoding the strings) and then the exact rules decide;
# tests/unit/test_dataset_validator.py compares the loops with the exact rules on every bad-file case, on
# random lines and on rows written in any style, so the paths never disagree.


class _RawRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A line with exactly the keys `input` and `output`, their values as written (JSON text, unparsed)."""

    input: msgspec.Raw
    output: msgspec.Raw


class _Row(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A line with exactly the keys `input` and `output`, both strings."""

    input: str
    output: str


_decode_raw_row: Callable[[bytes], _RawRow] = msgspec.json.Decoder(_RawRow).decode
_decode_row: Callable[[bytes], _Row] = msgspec.json.Decoder(_Row).decode


# The duplicate key of a value is the value as JSON writes it in the file's style, quoted, with only the
# escapes the style needs (a valid value holds no control character but tab, LF and CR). Most files are
# written by one program, in one style, so the key of most values is the bytes they are written with, and
# the fast loop takes those. The first block with a non-ASCII character, as is or escaped, decides the
# style; until then every value is ASCII and written the same in both. A value written otherwise is
# decoded and written again (`RowValidator._key`).
_Style = Callable[[str], str]
_UTF8_STYLE: _Style = json.encoder.encode_basestring  # as is: json.dumps(..., ensure_ascii=False)
_ASCII_STYLE: _Style = json.encoder.encode_basestring_ascii  # \\u escapes, lowercase hex: json.dumps


def _continuation_bytes(text: bytes) -> int:
    """How many bytes of valid UTF-8 `text` continue a character: its length in bytes less its length in
    characters. One vectorized pass: as signed bytes, continuation bytes (0x80-0xBF) are those below -64."""
    return 0 if text.isascii() else int(np.count_nonzero(np.frombuffer(text, np.int8) < -64))


class _Escapes(NamedTuple):
    """The escapes in JSON lines, as `_escapes` finds them."""

    saved: int  # characters they save: 1 for each, 4 more for a \\u escape, 1 more for a surrogate pair
    unicode: int  # \\u escapes
    utf8_style: bool  # all are written as the UTF8 style writes them: \\" \\\\ \\n \\r \\t
    ascii_style: bool  # all are written as the ASCII style writes them: those, or \\u for U+00A0 and above


def _byte_table(members: bytes) -> np.ndarray:
    """A lookup table over byte values: True for `members`."""
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(members, np.uint8)] = True
    return table


_UTF8_STYLE_ESCAPES = _byte_table(b'"\\nrt')
_LOWER_HEX = _byte_table(b"0123456789abcdef")
_HIGH_SURROGATE_SECOND_DIGIT = _byte_table(b"89ab")  # \\ud800-\\udbff


def _escapes(text: bytes) -> _Escapes:
    """The escapes in `text`, JSON lines, found without a loop over its bytes.

    A backslash starts an escape unless it is the second of `\\\\`: in a run of adjacent backslashes, those
    at even offsets from its start do. Past the end of the text (a malformed line) the characters of an
    escape read as NUL.
    """
    data = np.frombuffer(text, np.uint8)
    starts = np.flatnonzero(data == _BACKSLASH)
    if starts[-1] + 5 >= data.size:  # an escape may run past the end: read on in a padded copy
        data = np.frombuffer(text + bytes(5), np.uint8)
    if np.any(starts[1:] == starts[:-1] + 1):  # runs of backslashes: keep those at even offsets
        run_starts = np.flatnonzero(np.diff(starts, prepend=-2) != 1)  # indexes into `starts`
        offsets = np.arange(starts.size) - np.repeat(run_starts, np.diff(run_starts, append=starts.size))
        starts = starts[offsets % 2 == 0]
    kinds = data[starts + 1]
    utf8_style = _UTF8_STYLE_ESCAPES[kinds]
    unicode_starts = starts[kinds == ord("u")]
    if unicode_starts.size == 0:
        all_utf8_style = bool(utf8_style.all())
        return _Escapes(saved=starts.size, unicode=0, utf8_style=all_utf8_style, ascii_style=all_utf8_style)
    first, second, third, fourth = (data[unicode_starts + ahead] for ahead in range(2, 6))
    high_surrogates = np.count_nonzero((first == ord("d")) & _HIGH_SURROGATE_SECOND_DIGIT[second])
    below_a0 = (first == ord("0")) & (second == ord("0")) & (third <= ord("9"))
    lower_hex = _LOWER_HEX[first] & _LOWER_HEX[second] & _LOWER_HEX[third] & _LOWER_HEX[fourth]
    return _Escapes(
        saved=starts.size + 4 * unicode_starts.size + high_surrogates,
        unicode=unicode_starts.size,
        utf8_style=False,
        ascii_style=bool(
            lower_hex.all()
            and not below_a0.any()
            and np.count_nonzero(utf8_style) + unicode_starts.size == starts.size
        ),
    )


_NO_ESCAPES = _Escapes(saved=0, unicode=0, utf8_style=True, ascii_style=True)


class _TextFacts(NamedTuple):
    """What the fast loop needs to know of a block of lines that is valid UTF-8 (`RowValidator._facts`)."""

    continuation: int  # UTF-8 continuation bytes
    raw_controls: bool  # whether it may hold DEL or a C1 control character as is
    saved: int | None  # characters its escapes save, if every value is written in the file's style;
    # None if some may not be: then a line with an escape, or (ASCII style) a non-ASCII byte, is decoded


# The C scanner behind json.loads, called directly by the exact rules: it skips json.loads' Python-level
# wrapper. The surrounding whitespace json.loads would allow is stripped first (`_parse`).
_Scanner = Callable[[str, int], tuple[Any, int]]
_scan: _Scanner = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_lenient_scan: _Scanner = json.JSONDecoder(strict=False).scan_once  # type: ignore[attr-defined]

_KINDS: dict[type, str] = {
    list: "a JSON array",
    dict: "a JSON object",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}
_ROW_EXAMPLE = '{"input": "…", "output": "…"}'


def _shown(key: str) -> str:
    """A key as an issue shows it: cut to a bounded length, escaped when it is not printable."""
    cut = key if len(key) <= _SHOWN_KEY_CHARS else key[:_SHOWN_KEY_CHARS] + "…"
    return cut if cut.isprintable() else json.dumps(cut)[1:-1]


def _too_large_message(size: int | None, max_bytes: int) -> str:
    """`size` None: reading stopped as soon as the limit was passed."""
    amount = f"more than {max_bytes:,} bytes" if size is None else f"{size:,} bytes"
    return f"The file is {amount}; the limit is {max_bytes:,} bytes. Split it into smaller files."


def _mismatch_message(size: int | None, declared_size: int) -> str:
    """`size` None: reading stopped as soon as the declared size was passed."""
    amount = f"more than {declared_size:,} bytes" if size is None else f"{size:,} bytes"
    return (
        f"The stored file is {amount} but the upload declared {declared_size:,} bytes. "
        "Upload it again, declaring its exact size."
    )


class RowValidator:
    """Validates a JSONL dataset fed in chunks of any size; `finish()` returns the report.

    Memory stays bounded whatever the file size: one line of at most 1 MiB is assembled at a time, plus
    8 bytes per valid row for `duplicate_rows`.

    Checks, in this order, each line ending the checks of that line when it fails:

    1. length: over 1,048,576 bytes, not counting the LF or CRLF ending → `line_too_long`. Checked first
       because an over-long line is never held in memory: its bytes past the limit are dropped as they stream
       by, so nothing else about it can be known. Whitespace-only lines count here too.
    2. UTF-8, strict (one BOM at the very start of the file is dropped) → `invalid_utf8`.
    3. blank: only spaces, tabs and CRs → skipped, but the line number still advances.
    4. JSON as Python's `json.loads` reads it, which refuses raw control characters inside strings →
       `invalid_json`. One exception: a raw forbidden control character inside `input` or `output` is reported
       as the more useful `control_character` instead.
    5. a JSON object → `not_an_object`.
    6. fields: `input`, then `output` (each at most one of `missing_field`, `wrong_type`, `empty_field`,
       `control_character`), then every other key in the order it appears (`unknown_field`). One line can
       yield several of these because each names a different field.

    Every non-blank line counts in `row_count`, valid or not. `estimated_tokens` and `duplicate_rows` are
    computed over the rows that passed every check. `size_mismatch` and `file_too_large` end validation at
    once and are then the only issue (`row_count` null; `file_size_bytes` the bytes read when reading stopped
    early, a lower bound). Control-character offsets count characters from 0.

    Not thread-safe; one instance per file. After `done` becomes true (a size rule ended validation),
    further chunks are ignored and need not be read.
    """

    def __init__(self, *, declared_size: int | None = None, max_bytes: int = MAX_DATASET_BYTES) -> None:
        self._declared_size = declared_size
        self._max_bytes = max_bytes
        self._size = 0
        self._line_no = 0  # lines completed so far, blank ones included
        self._rows = 0  # non-blank lines
        self._valid_rows = 0
        self._chars = 0  # characters of the valid rows' inputs and outputs
        # duplicate_rows = valid rows - distinct (input, output) pairs, so each valid row leaves a fixed-size
        # digest: hash((key of input, key of output)), Python's keyed 64-bit SipHash of the pair (see
        # `_Style` for the keys). A 16-byte blake2b digest costs ~1 µs more per row, more than the rest of
        # the fast loop (bench/dataset_validation.py), while 64 bits already make a collision negligible:
        # below n²/2⁶⁵ ≈ 4·10⁻⁷ even for the largest possible file, and one would only make duplicate_rows
        # one too high.
        # The bound: the shortest valid row, {"input":"a","output":"b"} and its LF, is 27 bytes, so 100 MB
        # hold at most ~3.9 M rows: 31 MB of digests in an array, where a set of them would take ~82 bytes a
        # row, 310 MB; `_distinct_rows` sorts them in place.
        self._digests = array("q")
        self._issues: list[ValidationIssue] = []
        self._error_count = 0
        self._head: bytes | None = b""  # the first bytes while a leading BOM is still possible
        self._pending = bytearray()  # the line being assembled across chunks
        self._pending_bytes = 0  # its length so far, counting the bytes dropped past the cap
        self._pending_cr = False  # whether its last byte so far is a CR
        self._report: ValidationReport | None = None
        self._utf8_check = simdjson.Parser()
        self._style: _Style | None = None  # how the file writes non-ASCII characters, once known

    @property
    def done(self) -> bool:
        """True once the outcome is known: a size rule ended validation, or `finish()` was called."""
        return self._report is not None

    def feed(self, chunk: bytes) -> None:
        """Checks the next bytes of the file."""
        if self._report is not None or not chunk:
            return
        self._size += len(chunk)
        if self._size > self._max_bytes:
            self._end("file_too_large", _too_large_message(None, self._max_bytes))
            return
        if self._declared_size is not None and self._size > self._declared_size:
            self._end("size_mismatch", _mismatch_message(None, self._declared_size))
            return
        if self._head is not None:
            head = self._head + chunk if self._head else chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head  # wait for enough bytes to tell
                return
            self._head = None
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        # Slices of at most 1 MiB: then a line that both starts and ends inside one slice is within the
        # limit, and the fast loop need not measure lines.
        for start in range(0, len(chunk), CHUNK_BYTES):
            self._feed_slice(chunk[start : start + CHUNK_BYTES] if len(chunk) > CHUNK_BYTES else chunk)

    def finish(self) -> ValidationReport:
        """Checks the last line and returns the report (the same one on later calls)."""
        if self._report is None:
            self._report = self._final_report()
        return self._report

    def _final_report(self) -> ValidationReport:
        if self._head:
            self._extend_pending(self._head)  # a partial BOM and nothing after it
        self._head = None
        if self._pending_bytes:
            self._complete_pending()
        if self._declared_size is not None and self._size != self._declared_size:
            return self._end("size_mismatch", _mismatch_message(self._size, self._declared_size))
        if self._rows == 0:
            message = f"The file has no rows; write one JSON object per line: {_ROW_EXAMPLE}."
            # Unlike the size rules, this one read every line: row_count is known, and 0.
            return self._end("empty_file", message).model_copy(update={"row_count": 0})
        report = ValidationReport(
            valid=self._error_count == 0,
            row_count=self._rows,
            file_size_bytes=self._size,
            estimated_tokens=-(-self._chars // 4),
            duplicate_rows=self._valid_rows - self._distinct_rows(),
            errors=self._issues,
            error_count=self._error_count,
        )
        self._digests = array("q")
        return report

    def _distinct_rows(self) -> int:
        """How many distinct digests there are: sorted in place, equal digests are neighbours."""
        digests = np.frombuffer(self._digests, np.int64)
        digests.sort()
        return int(np.count_nonzero(digests[1:] != digests[:-1])) + min(len(digests), 1)

    # -- streaming -------------------------------------------------------------------------------------

    def _feed_slice(self, data: bytes) -> None:
        first = data.find(b"\n")
        if first < 0:
            self._extend_pending(data)
            return
        self._extend_pending(data[:first])
        self._complete_pending()
        last = data.rfind(b"\n")
        if last > first:
            self._check_block(data[first + 1 : last])
        self._extend_pending(data[last + 1 :])

    def _extend_pending(self, piece: bytes) -> None:
        if not piece:
            return
        self._pending_bytes += len(piece)
        self._pending_cr = piece.endswith(b"\r")
        if self._pending_bytes <= _PENDING_CAP:
            self._pending += piece
        elif self._pending:
            self._pending = bytearray()  # too long already: drop what is held, and the rest as it comes

    def _complete_pending(self) -> None:
        if self._pending_bytes > _PENDING_CAP:
            self._line_no += 1
            self._rows += 1
            self._line_too_long(self._pending_bytes - int(self._pending_cr))
        elif self._pending_bytes <= MAX_LINE_BYTES:  # within the limit, CR or not: the fast loop may take it
            line = bytes(self._pending)
            self._check_lines([line], line)
        else:
            self._line_no += 1
            self._check_line(bytes(self._pending))
        self._pending = bytearray()
        self._pending_bytes = 0
        self._pending_cr = False

    def _check_block(self, block: bytes) -> None:
        """Checks complete lines (a block of at most 1 MiB, LF-separated, without the final LF)."""
        self._check_lines(block.split(b"\n"), block)

    def _check_lines(self, lines: list[bytes], text: bytes) -> None:
        """Checks `lines`, the lines of `text`: in the fast loop where `text` is known to be valid UTF-8."""
        facts = self._facts(text)
        if facts is None:
            for line in lines:
                self._line_no += 1
                self._check_decoded(line)
        else:
            self._check_plain_rows(lines, facts)

    def _facts(self, text: bytes) -> _TextFacts | None:
        """What the fast loop needs to know of `text`, if it is known to be valid UTF-8; else None.

        simdjson checks UTF-8 at gigabytes a second, the only validator at hand that builds no string, but
        only as it parses a JSON document: each line becomes an element of one array, `[[line],[line],…]`,
        which parses whenever every line holds at most one JSON value. A block with a malformed line (or
        bad UTF-8) is left to the slower loops, which say what is wrong with it.
        """
        ascii_text = text.isascii()
        if ascii_text:
            continuation, c1 = 0, False
        else:
            try:
                self._utf8_check.parse(b"".join((b"[[", text.replace(b"\n", b"],["), b"]]")))
            except (ValueError, RuntimeError):  # RuntimeError: nested too deeply
                return None
            continuation = _continuation_bytes(text)
            # C1 is C2 then 80-9F: as signed bytes, -62 then below -96 (in valid UTF-8 the byte after C2
            # continues its character, so ASCII, which is not negative, cannot follow it).
            signed = np.frombuffer(text, np.int8)
            c1 = bool(np.any((signed[:-1] == -62) & (signed[1:] < -96)))
        escapes = _escapes(text) if _BACKSLASH in text else _NO_ESCAPES
        if self._style is None and (not ascii_text or escapes.unicode):
            self._style = _UTF8_STYLE if not ascii_text else _ASCII_STYLE
        in_style = escapes.ascii_style and ascii_text if self._style is _ASCII_STYLE else escapes.utf8_style
        return _TextFacts(continuation, c1 or 0x7F in text, escapes.saved if in_style else None)

    def _key(self, value: str) -> bytes:
        """The duplicate key of a value (see `_Style`); lone surrogates, which only the exact rules accept,
        are encoded as such (in the UTF-8 style, bytes never found in valid UTF-8: they match nothing)."""
        if self._style is None:
            self._style = _UTF8_STYLE
        return self._style(value).encode("utf-8", "surrogatepass")

    def _check_plain_rows(self, lines: list[bytes], facts: _TextFacts) -> None:
        """The fast loop: counts the common valid row from its values' bytes as written.

        `lines` are valid UTF-8, each at most 1 MiB, its LF removed (a CR may remain: JSON whitespace to the
        decoder). A row whose values are strings, not empty, and written in the file's style (every row,
        where all of the block is; else those without an escape, and in the ASCII style, without a
        non-ASCII byte) is counted here from its values' bytes: everything else in it is ASCII without
        escapes, so their characters are the block's, less those of the lines not counted here. Lines that
        may hold a raw control character, and anything else the loop does not take, go to `_check_decoded`,
        so the loops never disagree on what is valid: this one only decides faster.
        """
        continuation, raw_controls, saved = facts
        ascii_style = self._style is _ASCII_STYLE
        decode = _decode_raw_row
        remember = self._digests.append
        quote, backslash = _QUOTE, _BACKSLASH
        line_no = self._line_no
        valid = value_bytes = 0
        for line in lines:
            line_no += 1
            try:
                if raw_controls and _may_hold_raw_control_characters(line):
                    raise ValueError("the exact rules look for control characters")
                row = decode(line)
            except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
                pass
            else:
                text_in = bytes(row.input)
                text_out = bytes(row.output)
                # Strings (JSON writes one from its quote), not empty, and their bytes are their keys.
                if (
                    text_in[0] == quote == text_out[0]
                    and len(text_in) > 2
                    and len(text_out) > 2
                    and (saved is not None or (backslash not in line and (line.isascii() or not ascii_style)))
                ):
                    valid += 1
                    value_bytes += len(text_in) + len(text_out)
                    remember(hash((text_in, text_out)))
                    continue
            continuation -= _continuation_bytes(line)
            if saved is not None and backslash in line:
                saved -= _escapes(line).saved
            self._line_no = line_no
            self._check_decoded(line)
        self._line_no = line_no
        self._rows += valid
        self._valid_rows += valid
        self._chars += value_bytes - 4 * valid - continuation - (saved or 0)

    def _check_decoded(self, line: bytes) -> None:
        """Checks line `self._line_no` by decoding it: msgspec decodes a row into its two strings in one C
        pass (checking UTF-8 too), which are then counted; anything else goes to the exact rules. For the
        rows that the fast loop cannot count from their bytes: written otherwise than in the file's style,
        with a raw DEL or C1 character somewhere, or in a block with a malformed line."""
        try:
            row = _decode_row(line)
        except (ValueError, RecursionError):  # msgspec.DecodeError, UnicodeDecodeError
            self._check_line(line)
            return
        text_in, text_out = row.input, row.output
        if not text_in or not text_out or _CONTROL.search(text_in) or _CONTROL.search(text_out):
            self._check_line(line)
            return
        self._rows += 1
        self._valid_rows += 1
        self._chars += len(text_in) + len(text_out)
        self._digests.append(hash((self._key(text_in), self._key(text_out))))

    # -- the rules of one line -------------------------------------------------------------------------
    # Issues past the first 20 are only counted, so messages are passed as callables and built only for
    # the issues kept: a file of millions of bad lines must still finish well within the function's
    # timeout.

    def _check_line(self, raw: bytes) -> None:
        """Applies every rule to line `self._line_no`, given as bytes without its LF."""
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_LINE_BYTES:
            self._rows += 1
            self._line_too_long(len(raw))
            return
        try:
            text = raw.decode()
        except UnicodeDecodeError as exc:
            line, start = self._line_no, exc.start
            self._rows += 1  # not blank: blank lines are ASCII
            self._add(
                None,
                "invalid_utf8",
                lambda: (
                    f"Line {line} is not valid UTF-8 (byte 0x{raw[start]:02X} at byte offset {start}). "
                    "Save the file as UTF-8."
                ),
            )
            return
        self._check_text(text)

    def _check_text(self, text: str) -> None:
        """Applies the rules after UTF-8 to line `self._line_no`, decoded and within the length limit."""
        body = text.strip(_JSON_SPACE)
        if not body:
            return  # blank
        self._rows += 1
        row = self._parse(text, body)
        if row is _MISSING:
            return
        line = self._line_no
        if type(row) is not dict:
            kind = _KINDS.get(type(row), "not an object")
            self._add(
                None,
                "not_an_object",
                lambda: f"Line {line} is {kind}, not a JSON object; write each row as {_ROW_EXAMPLE}.",
            )
            return
        errors_before = self._error_count
        for name in FIELDS:
            self._check_field(name, row.get(name, _MISSING))
        for key in row:
            if key not in FIELDS:
                self._unknown_field(key)
        if self._error_count == errors_before:
            self._valid_rows += 1
            self._chars += len(row["input"]) + len(row["output"])
            self._digests.append(hash((self._key(row["input"]), self._key(row["output"]))))

    def _parse(self, text: str, body: str) -> Any:
        """The JSON value of `body` (the line without surrounding whitespace) as json.loads reads it,
        or _MISSING once an invalid_json issue is recorded."""
        position: int | None
        advice = "Each line must hold one complete JSON object."
        try:
            value, end = _scan(body, 0)
        except StopIteration:
            position, reason = 0, "expecting value"
        except RecursionError:
            position, reason = None, "it is nested too deeply"
        except json.JSONDecodeError as exc:
            value = self._with_raw_control_characters(body, exc.msg)
            if value is not _MISSING:
                return value
            position, reason = exc.pos, exc.msg[:1].lower() + exc.msg[1:].removesuffix(" at")
            if reason.startswith("invalid control character"):
                reason = f"raw control character U+{ord(body[position]):04X} inside a string"
                advice = "Write it escaped (\\t for a tab) or remove it."
        except ValueError:  # int() refuses numbers of more than 4,300 digits
            position, reason = None, "it holds a number with too many digits"
        else:
            if end == len(body):
                return value
            position, reason = len(body) - len(body[end:].lstrip(_JSON_SPACE)), "extra data"
        if body.startswith("\ufeff"):
            position, reason = None, "it starts with a byte order mark (U+FEFF)"
            advice = "Only the start of the file may hold one."
        line = self._line_no

        def message() -> str:
            where = ""
            if position is not None:
                column = len(text) - len(text.lstrip(_JSON_SPACE)) + position + 1
                where = f" at column {column}"
            return f"Line {line} is not valid JSON: {reason}{where}. {advice}"

        self._add(None, "invalid_json", message)
        return _MISSING

    @staticmethod
    def _with_raw_control_characters(body: str, error: str) -> Any:
        """The value when raw control characters in `input`/`output` are the line's only JSON fault.

        Strict JSON refuses raw control characters inside strings; telling the user which field holds
        which character (`control_character`) helps more than a column number. Raw tabs or CRs inside a
        string stay `invalid_json`: they are allowed characters, but only escaped.
        """
        if not error.startswith("Invalid control character"):
            return _MISSING
        try:
            row, end = _lenient_scan(body, 0)
        except (ValueError, StopIteration, RecursionError):
            return _MISSING
        if (
            end == len(body)
            and type(row) is dict
            and any(type(row.get(name)) is str and _CONTROL.search(row[name]) for name in FIELDS)
        ):
            return row
        return _MISSING

    def _check_field(self, name: str, value: Any) -> None:
        line = self._line_no
        if value is _MISSING:
            self._add(
                name,
                "missing_field",
                lambda: (
                    f"Line {line}: field '{name}' is missing; every row needs non-empty strings "
                    "'input' and 'output'."
                ),
            )
        elif type(value) is not str:
            kind = _KINDS.get(type(value), "not a string")
            self._add(
                name,
                "wrong_type",
                lambda: f"Line {line}: field '{name}' must be a non-empty string, not {kind}.",
            )
        elif not value:
            self._add(
                name,
                "empty_field",
                lambda: f"Line {line}: field '{name}' must be a non-empty string; it is empty.",
            )
        elif (found := _CONTROL.search(value)) is not None:
            self._add(
                name,
                "control_character",
                lambda: (
                    f"Line {line}: field '{name}' holds control character U+{ord(found.group()):04X} "
                    f"at offset {found.start()}; remove it (tab, line feed and carriage return are the only "
                    "ones allowed)."
                ),
            )

    def _unknown_field(self, key: str) -> None:
        line, shown = self._line_no, _shown(key)
        self._add(
            shown,
            "unknown_field",
            lambda: f"Line {line}: unknown field '{shown}'; a row may hold only 'input' and 'output'.",
        )

    def _line_too_long(self, length: int) -> None:
        line = self._line_no
        self._add(
            None,
            "line_too_long",
            lambda: (
                f"Line {line} is {length:,} bytes long; a line may hold at most {MAX_LINE_BYTES:,} bytes "
                "(1 MiB)."
            ),
        )

    def _add(self, field: str | None, code: str, message: Callable[[], str]) -> None:
        """Counts an issue of line `self._line_no`; keeps it, with its message, while fewer than 20 are."""
        self._error_count += 1
        if len(self._issues) < MAX_REPORTED_ISSUES:
            self._issues.append(
                ValidationIssue(line=self._line_no, field=field, code=code, message=message())
            )

    def _end(self, code: str, message: str) -> ValidationReport:
        """Ends validation with one whole-file issue and lets go of everything held."""
        self._report = ValidationReport.whole_file(code, message, self._size)
        self._digests = array("q")
        self._pending = bytearray()
        self._issues = []
        return self._report


def validate_stream(
    chunks: Iterable[bytes], *, declared_size: int | None = None, max_bytes: int = MAX_DATASET_BYTES
) -> ValidationReport:
    """Validates a file given as chunks; stops reading as soon as a size rule ends validation."""
    validator = RowValidator(declared_size=declared_size, max_bytes=max_bytes)
    for chunk in chunks:
        validator.feed(chunk)
        if validator.done:
            break
    return validator.finish()


def check_size(
    size: int, *, declared_size: int | None = None, max_bytes: int = MAX_DATASET_BYTES
) -> ValidationReport | None:
    """The report when a file's size, known before reading it, already ends validation; else None."""
    if size > max_bytes:
        return ValidationReport.whole_file("file_too_large", _too_large_message(size, max_bytes), size)
    if declared_size is not None and size != declared_size:
        return ValidationReport.whole_file("size_mismatch", _mismatch_message(size, declared_size), size)
    return None


def validate_file(
    path: str | os.PathLike[str], *, declared_size: int | None = None, max_bytes: int = MAX_DATASET_BYTES
) -> ValidationReport:
    """Validates a local file in 1 MiB chunks (the CLI's check before an upload)."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        # A regular file's size is known up front: the size rules need not read a byte, and can name it.
        if stat.S_ISREG(info.st_mode):
            report = check_size(info.st_size, declared_size=declared_size, max_bytes=max_bytes)
            if report is not None:
                return report
        return validate_stream(
            iter(lambda: handle.read(CHUNK_BYTES), b""), declared_size=declared_size, max_bytes=max_bytes
        )
