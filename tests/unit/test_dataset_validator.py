"""The streaming dataset validator (PRODUCT.md §8): every rule, line numbers, chunking, limits."""

from __future__ import annotations

import json
import random
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tt_core.datasets import validator
from tt_core.datasets.validator import MAX_LINE_BYTES, RowValidator, validate_file, validate_stream
from tt_core.models.datasets import MAX_DATASET_BYTES, ValidationReport

MiB = 1024 * 1024
BOM = b"\xef\xbb\xbf"
GOOD = b'{"input": "What is 2+2?", "output": "4"}'


def row(text_in: object = "in", text_out: object = "out", **extra: object) -> bytes:
    return json.dumps({"input": text_in, "output": text_out, **extra}, ensure_ascii=False).encode()


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def issues(report: ValidationReport) -> list[tuple[int | None, str | None, str]]:
    return [(issue.line, issue.field, issue.code) for issue in report.errors]


def padded_row(length: int) -> bytes:
    """A valid row of exactly `length` bytes."""
    skeleton = len(row("", "b"))
    return row("a" * (length - skeleton), "b")


# -- bad files: each gives exactly these issues ------------------------------------------------------------

BAD = {
    "truncated JSON": (GOOD + b'\n{"input": "a", "out', [(2, None, "invalid_json")]),
    "trailing garbage": (GOOD + b" x", [(1, None, "invalid_json")]),
    "two objects on a line": (GOOD + GOOD, [(1, None, "invalid_json")]),
    "single quotes": (b"{'input': 'a', 'output': 'b'}", [(1, None, "invalid_json")]),
    "a JSON array line": (GOOD + b'\n["a", "b"]', [(2, None, "not_an_object")]),
    "a JSON string line": (b'"input"', [(1, None, "not_an_object")]),
    "a number line": (b"42", [(1, None, "not_an_object")]),
    "a null line": (b"null", [(1, None, "not_an_object")]),
    "input a number": (row(1), [(1, "input", "wrong_type")]),
    "output null": (row("a", None), [(1, "output", "wrong_type")]),
    "output a list": (row("a", ["b"]), [(1, "output", "wrong_type")]),
    "input an object": (row({"text": "a"}), [(1, "input", "wrong_type")]),
    "output a boolean": (row("a", True), [(1, "output", "wrong_type")]),
    "input NaN": (b'{"input": NaN, "output": "b"}', [(1, "input", "wrong_type")]),
    "input missing": (b'{"output": "b"}', [(1, "input", "missing_field")]),
    "both missing": (b"{}", [(1, "input", "missing_field"), (1, "output", "missing_field")]),
    "an extra key": (row(id=3), [(1, "id", "unknown_field")]),
    "a misspelt key and an extra one": (
        b'{"prompt": "a", "output": "b", "id": 1}',
        [(1, "input", "missing_field"), (1, "prompt", "unknown_field"), (1, "id", "unknown_field")],
    ),
    "empty input": (row(""), [(1, "input", "empty_field")]),
    "both empty": (row("", ""), [(1, "input", "empty_field"), (1, "output", "empty_field")]),
    "wrong type and empty": (row(0, ""), [(1, "input", "wrong_type"), (1, "output", "empty_field")]),
    "invalid UTF-8 byte": (GOOD + b'\n{"input": "caf\xe9", "output": "b"}', [(2, None, "invalid_utf8")]),
    "UTF-8 surrogate": (b'{"input": "\xed\xa0\x80", "output": "b"}', [(1, None, "invalid_utf8")]),
    "overlong UTF-8": (b'{"input": "\xc0\xaf", "output": "b"}', [(1, None, "invalid_utf8")]),
    "UTF-8 cut at the end": (GOOD + b'\n{"input": "\xe6\x97', [(2, None, "invalid_utf8")]),
    "UTF-16 file": ('{"input": "a", "output": "b"}'.encode("utf-16"), [(1, None, "invalid_utf8")]),
    "a BOM on line 2": (GOOD + b"\n" + BOM + GOOD, [(2, None, "invalid_json")]),
    "two leading BOMs": (BOM + BOM + GOOD, [(1, None, "invalid_json")]),
    "only part of a BOM": (BOM[:2], [(1, None, "invalid_utf8")]),
    "a duplicate key does not hide an unknown one": (b'{"input": "a", "output": "b", "input": "c", "n": 1}',
                                                     [(1, "n", "unknown_field")]),
    "raw NUL in input": (b'{"input": "a\x00b", "output": "c"}', [(1, "input", "control_character")]),
    "raw BEL in output": (b'{"input": "a", "output": "\x07"}', [(1, "output", "control_character")]),
    "escaped NUL": (b'{"input": "ab\\u0000", "output": "c"}', [(1, "input", "control_character")]),
    "escaped BEL": (b'{"input": "a", "output": "x\\u0007"}', [(1, "output", "control_character")]),
    "escaped ESC, upper case": (b'{"input": "\\u001B[0m", "output": "c"}',
                                [(1, "input", "control_character")]),
    "backspace escape": (b'{"input": "a\\bc", "output": "c"}', [(1, "input", "control_character")]),
    "form feed escape": (b'{"input": "a", "output": "\\f"}', [(1, "output", "control_character")]),
    "escaped DEL": (b'{"input": "a\\u007f", "output": "c"}', [(1, "input", "control_character")]),
    "raw DEL": (b'{"input": "a\x7f", "output": "c"}', [(1, "input", "control_character")]),
    "escaped C1": (b'{"input": "a", "output": "\\u0085"}', [(1, "output", "control_character")]),
    "raw C1": ('{"input": "a\u009f", "output": "c"}'.encode(), [(1, "input", "control_character")]),
    "control in both": (b'{"input": "\\u0001", "output": "\x02"}', [(1, "input", "control_character"),
                                                                      (1, "output", "control_character")]),
    "raw tab inside a string": (b'{"input": "a\tb", "output": "c"}', [(1, None, "invalid_json")]),
    "raw control in an unknown field": (b'{"input": "a", "output": "b", "x": "\x07"}',
                                        [(1, None, "invalid_json")]),
    "escaped control in an unknown field": (row(x="\x07"), [(1, "x", "unknown_field")]),
    "a 2 MiB line": (GOOD + b"\n" + padded_row(2 * MiB) + b"\n" + GOOD, [(2, None, "line_too_long")]),
    "a 2 MiB line of spaces": (b" " * (2 * MiB), [(1, None, "line_too_long")]),
    "one byte over the line limit": (padded_row(MAX_LINE_BYTES + 1), [(1, None, "line_too_long")]),
    "nested too deeply": (b"[" * 100_000, [(1, None, "invalid_json")]),
    "a field nested too deeply": (b'{"input": ' + b"[" * 5_000 + b"]" * 5_000 + b', "output": "b"}',
                                  [(1, None, "invalid_json")]),
    "an integer past Python's digit limit": (b'{"input": ' + b"1" * 5_000 + b', "output": "b"}',
                                             [(1, None, "invalid_json")]),
    "blank lines counted in line numbers": (b"\n \n\t\r\n" + row(1) + b"\n", [(4, "input", "wrong_type")]),
    "errors on several lines": (
        b"\n".join([GOOD, b"[]", GOOD, row(""), b"", row(x=1)]),
        [(2, None, "not_an_object"), (4, "input", "empty_field"), (6, "x", "unknown_field")],
    ),
}  # fmt: skip


@pytest.mark.parametrize("data, expected", list(BAD.values()), ids=list(BAD))
def test_bad_files(data: bytes, expected: list[tuple[int | None, str | None, str]]) -> None:
    report = validate_stream([data])
    assert report.valid is False
    assert issues(report) == expected
    assert report.error_count == len(expected)
    assert report.file_size_bytes == len(data)


@pytest.mark.parametrize("chunk_size", [1, 7])
def test_bad_files_the_same_in_small_chunks(chunk_size: int) -> None:
    for name, (data, expected) in BAD.items():
        if len(data) > 64 * 1024:
            continue  # byte-at-a-time over megabytes adds nothing but time; see the chunking tests
        assert issues(validate_stream(chunked(data, chunk_size))) == expected, name


@pytest.mark.parametrize("data", [b"", b"\n", b"\n \n\t\r\n  ", BOM, BOM + b"\r\n\r\n"], ids=repr)
def test_no_non_blank_line_is_an_empty_file(data: bytes) -> None:
    report = validate_stream([data])
    assert report.valid is False
    assert issues(report) == [(None, None, "empty_file")]
    assert report.row_count == 0 and report.file_size_bytes == len(data)


# -- messages ----------------------------------------------------------------------------------------------


def test_messages_say_what_to_fix() -> None:
    data = b"\n".join(
        [GOOD] * 6
        + [
            row("a", ""),
            row(5),
            b'{"input": "ab\\u0007", "output": "c"}',
            row(note="x"),
            b"[1]",
            b"{",
            b"\xff",
        ]
    )
    messages = [issue.message for issue in validate_stream([data]).errors]
    assert messages == [
        "Line 7: field 'output' must be a non-empty string; it is empty.",
        "Line 8: field 'input' must be a non-empty string, not a number.",
        "Line 9: field 'input' holds control character U+0007 at offset 2; remove it (tab, line feed and "
        "carriage return are the only ones allowed).",
        "Line 10: unknown field 'note'; a row may hold only 'input' and 'output'.",
        'Line 11 is a JSON array, not a JSON object; write each row as {"input": "…", "output": "…"}.',
        "Line 12 is not valid JSON: expecting property name enclosed in double quotes at column 2. Each line "
        "must hold one complete JSON object.",
        "Line 13 is not valid UTF-8 (byte 0xFF at byte offset 0). Save the file as UTF-8.",
    ]


def test_json_messages_name_the_fault() -> None:
    data = b"\n".join([b'{"input": "a\tb", "output": "c"}', BOM + GOOD, b'{"input": "a"', b"{} {}"])
    assert [issue.message for issue in validate_stream([GOOD + b"\n" + data]).errors] == [
        "Line 2 is not valid JSON: raw control character U+0009 inside a string at column 13. "
        "Write it escaped (\\t for a tab) or remove it.",
        "Line 3 is not valid JSON: it starts with a byte order mark (U+FEFF). "
        "Only the start of the file may hold one.",
        "Line 4 is not valid JSON: expecting ',' delimiter at column 14. "
        "Each line must hold one complete JSON object.",
        "Line 5 is not valid JSON: extra data at column 4. Each line must hold one complete JSON object.",
    ]


def test_control_character_offsets_count_characters_not_bytes() -> None:
    report = validate_stream([row("a", "日本\x1b語")])
    assert "U+001B at offset 2" in report.errors[0].message


def test_json_error_columns_count_leading_whitespace() -> None:
    report = validate_stream([b'   {"input": "a",, "output": "b"}'])
    assert "at column 18" in report.errors[0].message


def test_line_too_long_gives_the_length() -> None:
    report = validate_stream([b"x" * (3 * MiB) + b"\r\n"])
    assert report.errors[0].message.startswith(
        "Line 1 is 3,145,728 bytes long; a line may hold at most 1,048,576"
    )


def test_a_long_unknown_key_is_cut_in_the_issue() -> None:
    key = "k" * 10_000
    issue = validate_stream([row(**{key: 1})]).errors[0]
    assert issue.code == "unknown_field" and issue.field == "k" * 100 + "…" and len(issue.message) < 300


def test_an_unprintable_unknown_key_is_escaped() -> None:
    issue = validate_stream([row(**{"a\nb": 1})]).errors[0]
    assert issue.field == "a\\nb"


# -- good files ------------------------------------------------------------------------------------------


def test_a_good_file() -> None:
    data = b"\n".join(row(f"question {i}", f"answer {i}") for i in range(50)) + b"\n"
    report = validate_stream([data])
    assert report.valid is True and report.errors == [] and report.error_count == 0
    assert report.row_count == 50 and report.duplicate_rows == 0 and report.file_size_bytes == len(data)


def test_bom_and_crlf_are_accepted() -> None:
    data = BOM + row("a", "b") + b"\r\n" + row("c", "d") + b"\r\n"
    report = validate_stream([data])
    assert report.valid is True and report.row_count == 2


def test_blank_lines_are_skipped_but_counted() -> None:
    data = b"\n" + row("a", "b") + b"\n\n   \n" + row("c", "d") + b"\n\t\n" + row(1, "e") + b"\n\n"
    report = validate_stream([data])
    assert report.row_count == 3
    assert issues(report) == [(7, "input", "wrong_type")]


def test_duplicates_compare_values_not_bytes() -> None:
    data = b"\n".join(
        [
            row("a", "b"),
            row("a", "c"),
            b'{"output": "b", "input": "a"}',  # same pair, other key order
            b'{"input":"\\u0061","output":"b"} ',  # same pair, escaped, trailing space
            row("a", "c"),
            row("b", "a"),
        ]
    )
    report = validate_stream([data])
    assert report.valid is True and report.row_count == 6 and report.duplicate_rows == 3


def test_estimated_tokens_count_characters_of_inputs_and_outputs() -> None:
    # 4 + 2 + 5 + 1 = 12 characters (not bytes) → 3 tokens; 13 characters → ⌈13 / 4⌉ = 4.
    assert validate_stream([row("abcd", "é😀") + b"\n" + row("12345", "x")]).estimated_tokens == 3
    assert validate_stream([row("abcd", "é😀") + b"\n" + row("123456", "x")]).estimated_tokens == 4


def test_non_ascii_text() -> None:
    rows = [("東京はどこ？", "日本の首都です。"), ("Ünïcödé façade", "naïve café"), ("😀🎉", "Ελληνικά")]
    data = b"\n".join(row(a, b) for a, b in rows) + b"\n" + b'{"input": "\\u00e9t\\u00e9", "output": "x"}'
    report = validate_stream([data])
    assert report.valid is True and report.row_count == 4
    assert report.estimated_tokens == -(-sum(len(a) + len(b) for a, b in [*rows, ("été", "x")]) // 4)


def test_allowed_whitespace_and_escapes() -> None:
    data = b"\n".join(
        [
            b'{"input":\t"a",\t"output": "b"}',  # raw tabs between tokens
            b'  {"input": "a\\tb\\nc\\rd", "output": "\\u0009\\u000a\\u000D"}  ',
            b'{"input": "C:\\\\bin\\\\file", "output": "\\\\u0007 is how you write BEL"}',
            '{"input": "\u00a0\u00a3\u00b0", "output": "x"}'.encode(),  # Latin-1 after C2, not C1
        ]
    )
    report = validate_stream([data])
    assert report.valid is True, report.errors
    assert report.row_count == 4


def test_line_exactly_at_the_limit() -> None:
    line = padded_row(MAX_LINE_BYTES)
    assert len(line) == MAX_LINE_BYTES
    for data in (line, line + b"\n", line + b"\r\n", BOM + line + b"\r\n" + GOOD):
        for size in (7, MiB - 1, MiB, len(data)):
            report = validate_stream(chunked(data, size))
            assert report.valid is True, (len(data), size, report.errors)


def test_lone_surrogate_escapes_do_not_break_validation() -> None:
    report = validate_stream([b'{"input": "\\ud800", "output": "b"}\n{"input": "\\ud800", "output": "b"}'])
    assert report.valid is True and report.duplicate_rows == 1


# -- errors: all counted, the first 20 kept ------------------------------------------------------------


def test_errors_are_capped_at_20_and_all_counted() -> None:
    data = b"\n".join([GOOD] + [b"{}"] * 15 + [row(1)] * 10)  # 30 + 10 errors
    report = validate_stream([data])
    assert report.error_count == 40 and len(report.errors) == 20
    assert issues(report)[:2] == [(2, "input", "missing_field"), (2, "output", "missing_field")]
    assert issues(report)[-1] == (11, "output", "missing_field")
    assert report.row_count == 26


# -- chunking: the same report wherever the chunks break ------------------------------------------------


MIXED = (
    BOM
    + b"\n".join(
        [
            row("first", "row"),
            b"",
            row("東京", "😀 façade") + b"\r",
            b"   ",
            row(1),
            b'{"input": "tab\\u0009ok", "output": "bel\\u0007"}',
            b'{"input": "raw\x00nul", "output": "x"}',
            b"[1, 2]",
            b'{"input": "caf\xe9", "output": "x"}',
            row("first", "row"),
            b'{"input": "a", "output": "b", "extra": true}',
            b'{"input": "trunc',
            row("last", "ünïcödé"),
        ]
    )
    + b"\r\n"
)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1000, MiB])
def test_chunk_boundaries_anywhere_give_the_same_report(chunk_size: int) -> None:
    whole = validate_stream([MIXED])
    assert issues(whole) == [
        (5, "input", "wrong_type"),
        (6, "output", "control_character"),
        (7, "input", "control_character"),
        (8, None, "not_an_object"),
        (9, None, "invalid_utf8"),
        (11, "extra", "unknown_field"),
        (12, None, "invalid_json"),
    ]
    assert whole.row_count == 11 and whole.duplicate_rows == 1
    assert validate_stream(chunked(MIXED, chunk_size)) == whole


def test_random_chunk_boundaries_give_the_same_report() -> None:
    rng = random.Random(7)
    whole = validate_stream([MIXED])
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(MIXED)), 6))
        pieces = [MIXED[a:b] for a, b in zip([0, *cuts], [*cuts, len(MIXED)], strict=True)]
        assert validate_stream(pieces) == whole


def test_long_lines_across_chunks_give_the_same_report() -> None:
    data = b"\n".join(
        [
            GOOD,
            padded_row(2 * MiB),
            row(1),
            padded_row(MAX_LINE_BYTES),
            b"y" * (MAX_LINE_BYTES + 1) + b"\r",
            GOOD,
        ]
    )
    whole = validate_stream([data])
    assert issues(whole) == [
        (2, None, "line_too_long"),
        (3, "input", "wrong_type"),
        (5, None, "line_too_long"),
    ]
    assert "Line 5 is 1,048,577 bytes long" in whole.errors[2].message
    for size in (7, 4096, MiB - 1, MiB, MiB + 1, 3 * MiB):
        assert validate_stream(chunked(data, size)) == whole, size


def test_a_long_line_is_never_held_whole() -> None:
    chunk = b"x" * MiB
    tracemalloc.start()
    try:
        validator = RowValidator()
        for _ in range(40):
            validator.feed(chunk)
        validator.feed(b"\n" + GOOD)
        report = validator.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert issues(report) == [(1, None, "line_too_long")] and report.row_count == 2
    assert peak < 4 * MiB  # one chunk-sized line buffer and slices, not the 40 MiB line


# -- size rules: they end validation at once ------------------------------------------------------------


def test_a_file_over_100_mb_is_refused_without_reading_further() -> None:
    chunk = (padded_row(64 * 1024 - 1) + b"\n") * 16  # valid rows: the first 100 MB are all checked
    assert len(chunk) == MiB
    pulled = 0

    def chunks() -> Iterator[bytes]:  # 150 MiB, never in memory at once
        nonlocal pulled
        for _ in range(150):
            pulled += 1
            yield chunk

    report = validate_stream(chunks())
    assert pulled == MAX_DATASET_BYTES // MiB + 1  # stopped at the chunk that passed the limit
    assert issues(report) == [(None, None, "file_too_large")]
    assert report.row_count is None and report.error_count == 1


def test_exactly_100_mb_is_accepted() -> None:
    chunk = b"x" * MiB  # one long line: cheap to check, and the size is what matters here
    report = validate_stream(chunk for _ in range(MAX_DATASET_BYTES // MiB))
    assert [issue.code for issue in report.errors] == ["line_too_long"]


def test_the_limit_is_a_parameter() -> None:
    data = b"\n".join([row(f"q{i}", "a") for i in range(100)])
    assert issues(validate_stream(chunked(data, 100), max_bytes=1000)) == [(None, None, "file_too_large")]


def test_size_mismatch_smaller_than_declared() -> None:
    data = GOOD + b"\n[]\n"  # a line error too: the size rule replaces it
    report = validate_stream([data], declared_size=len(data) + 1)
    assert issues(report) == [(None, None, "size_mismatch")] and report.error_count == 1
    assert report.file_size_bytes == len(data) and report.row_count is None
    assert f"The stored file is {len(data)} bytes but the upload declared {len(data) + 1} bytes" in (
        report.errors[0].message
    )


def test_size_mismatch_larger_than_declared_stops_reading() -> None:
    pulled = 0

    def chunks() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(10):
            pulled += 1
            yield GOOD + b"\n"

    report = validate_stream(chunks(), declared_size=len(GOOD) * 2)
    assert issues(report) == [(None, None, "size_mismatch")] and pulled == 2


def test_size_mismatch_wins_over_empty_file() -> None:
    assert issues(validate_stream([b""], declared_size=10)) == [(None, None, "size_mismatch")]


def test_declared_size_that_matches() -> None:
    data = GOOD + b"\n"
    assert validate_stream(chunked(data, 3), declared_size=len(data)).valid is True


# -- the validator object and the file helper ---------------------------------------------------------


def test_after_a_size_rule_further_chunks_are_ignored() -> None:
    validator = RowValidator(max_bytes=10)
    validator.feed(b"x" * 11)
    assert validator.done
    validator.feed(b"more")
    report = validator.finish()
    assert report.file_size_bytes == 11 and validator.finish() is report


def test_validate_file(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(MIXED)
    assert validate_file(path) == validate_stream([MIXED])
    assert validate_file(str(path), declared_size=len(MIXED)) == validate_stream([MIXED])
    assert issues(validate_file(path, declared_size=1)) == [(None, None, "size_mismatch")]


def test_validate_file_refuses_a_large_file_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        handle.truncate(MAX_DATASET_BYTES + 1)  # sparse: nothing is written
    report = validate_file(path)
    assert issues(report) == [(None, None, "file_too_large")]
    assert report.file_size_bytes == MAX_DATASET_BYTES + 1
    assert "104,857,601 bytes" in report.errors[0].message


# -- the fast loop (msgspec) and the exact rules (json) always agree ---------------------------------------


def exact_rules_only(data: bytes, monkeypatch: pytest.MonkeyPatch) -> ValidationReport:
    """The report when the fast loop accepts nothing, so that every line goes through the exact rules."""

    def refuse(raw: bytes) -> object:
        raise ValueError("exact rules only")

    with monkeypatch.context() as patch:
        patch.setattr(validator, "_decode_raw_row", refuse)
        return validate_stream([data])


def lines_leaving_the_fast_loop(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts the lines that the fast loop hands on (to `_check_decoded`, and from there the exact rules)."""
    handed_on = 0
    check_decoded = RowValidator._check_decoded

    def counting(self: RowValidator, raw: bytes) -> None:
        nonlocal handed_on
        handed_on += 1
        check_decoded(self, raw)

    monkeypatch.setattr(RowValidator, "_check_decoded", counting)
    return lambda: handed_on


def test_the_fast_loop_takes_the_common_row(monkeypatch: pytest.MonkeyPatch) -> None:
    handed_on = lines_leaving_the_fast_loop(monkeypatch)
    data = b"".join(row(f"question {i} 東京 😀", "answer\u00e9") + b"\r\n" for i in range(2_000))
    report = validate_stream(chunked(data, 64 * 1024))
    assert report.valid is True and report.row_count == 2_000
    assert handed_on() == 0


def test_the_fast_loop_takes_common_rows_of_either_style(monkeypatch: pytest.MonkeyPatch) -> None:
    handed_on = lines_leaving_the_fast_loop(monkeypatch)
    values = [(f'q{i}: "東京"\tnaïve\n😀 C:\\bin', f"line one\r\nline {i} “€”") for i in range(2_000)]
    for ensure_ascii in (False, True):
        data = b"\n".join(
            json.dumps({"input": a, "output": b}, ensure_ascii=ensure_ascii).encode() for a, b in values
        )
        report = validate_stream(chunked(data, 64 * 1024))
        assert report.valid is True and report.row_count == 2_000 and report.duplicate_rows == 0
        assert report.estimated_tokens == -(-sum(len(a) + len(b) for a, b in values) // 4)
    # The lines cut by a chunk boundary are checked alone, in the fast loop too.
    assert handed_on() == 0


def written(values: list[tuple[str, str]], rng: random.Random) -> bytes:
    """Rows of `values`, each written by json.dumps in either style, or with every character escaped."""

    def escaped(text: str) -> str:
        units = text.encode("utf-16-be")
        return '"' + "".join(f"\\u{units[i]:02X}{units[i + 1]:02X}" for i in range(0, len(units), 2)) + '"'

    lines = []
    for text_in, text_out in values:
        style = rng.choice(["utf8", "ascii", "escaped"])
        if style == "escaped":
            lines.append(f'{{"input": {escaped(text_in)}, "output": {escaped(text_out)}}}'.encode())
        else:
            pair = {"input": text_in, "output": text_out}
            lines.append(json.dumps(pair, ensure_ascii=style == "ascii").encode())
    return b"\n".join(lines)


@pytest.mark.parametrize("seed", range(6))
def test_rows_written_in_any_style_are_counted_as_the_exact_rules_count_them(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    alphabet = ["a", "b", " ", '"', "\\", "\n", "\t", "\r", "/", "é", "東", "😀", "\u00a0", "\u2028", "\\u"]
    pool = ["".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(8)]
    values = [(rng.choice(pool), rng.choice(pool)) for _ in range(300)]
    data = written(values, rng)
    report = validate_stream(chunked(data, rng.choice([64, 1000, MiB])))
    assert report == exact_rules_only(data, monkeypatch)
    assert report.valid is True
    assert report.duplicate_rows == len(values) - len(set(values))
    assert report.estimated_tokens == -(-sum(len(a) + len(b) for a, b in values) // 4)


@pytest.mark.parametrize("data", [data for data, _ in BAD.values()] + [MIXED], ids=[*BAD, "mixed"])
def test_the_fast_loop_agrees_with_the_exact_rules(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert validate_stream([data]) == exact_rules_only(data, monkeypatch)


# Pieces of JSON strings (as bytes) where a fast decoder could read a line otherwise than json.loads does.
STRING_PIECES = [
    b"a", b"a", b"b", "é".encode(), "東京".encode(), "😀".encode(), b"\\n", b"\\t", b"\\\\", b'\\"', b"\\/",
    b"\\u0041", b"\\u00e9", b"\\ud83d\\ude00", b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"\\u0000",
    b"\\u001b", b"\\b", b"\\f", b"\\u007F", b"\\u0085", b"\\u009f", b"\\u00a0", b"\\\\b", b"\\x", b"\\u12",
    b"\x7f", b"\xc2\x85", b"\xc2\xa0", b"\t", b"\x01", b"\r", b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", BOM,
]  # fmt: skip
KEYS = [b'"input"', b'"input"', b'"output"', b'"output"', b'"in\\u0070ut"', b'"x"', b'""', b"input"]
OTHER_VALUES = [b'""', b"1", b"-0.5e3", b"null", b"true", b"[]", b'["a"]', b'{"a": "b"}', b"NaN", b"'a'"]
SPACES = [b"", b"", b" ", b"  ", b"\t", b"\r", b"\x0c"]


def random_line(rng: random.Random, *, wild: bool) -> bytes:
    """A line that may break any rule (`wild`), or a valid row, often written differently from an earlier
    one with the same values (escapes, key order, whitespace), so that duplicates are counted too."""
    if wild and rng.random() < 0.05:
        return rng.choice([b"", b" ", b"\t\r", b"[]", b"{}", b"{", b'"a"'])
    pieces = STRING_PIECES if wild else STRING_PIECES[:13]  # the valid ones, escaped or not
    spaces = SPACES if wild else SPACES[:-1]

    def value() -> bytes:
        if wild and rng.random() < 0.2:
            return rng.choice(OTHER_VALUES)
        return (
            b'"' + b"".join(rng.choices(pieces[:6] * 8 + pieces, k=rng.randint(1, 4 if wild else 2))) + b'"'
        )

    def space() -> bytes:
        return rng.choice(spaces)

    keys = rng.sample([b'"input"', b'"output"'], 2)
    if wild and rng.random() < 0.4:
        keys = rng.choices(KEYS, k=rng.randint(0, 4))
    members = [space() + key + space() + b":" + space() + value() + space() for key in keys]
    line = space() + b"{" + b",".join(members) + b"}" + space()
    if wild and rng.random() < 0.1:
        line = rng.choice(
            [line + b",", line[:-1], BOM + line, line + line, line + b" x", line.replace(b",", b",,")]
        )
    return line


def test_the_fast_loop_agrees_with_the_exact_rules_on_random_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(12)
    outcomes: set[str] = set()
    for attempt in range(600):
        lines = (random_line(rng, wild=attempt % 2 == 0) for _ in range(rng.randint(1, 30)))
        data = b"\n".join(lines)
        report = validate_stream([data])
        assert report == exact_rules_only(data, monkeypatch), data
        # Fed a line at a time, every line meets the fast loop alone: a malformed line elsewhere in a block
        # (which leaves the whole block to the exact rules) hides none of them.
        *lines_but_last, last = data.split(b"\n")
        assert validate_stream([*(line + b"\n" for line in lines_but_last), last]) == report, data
        outcomes.update(issue.code for issue in report.errors)
        outcomes.add("valid" if report.valid else "invalid")
        outcomes.add("duplicates" if report.duplicate_rows else "no duplicates")
    # The random lines reach every rule of a line that fits in 1 MiB, and valid files with duplicates.
    assert outcomes >= {"valid", "invalid", "duplicates", "no duplicates", "invalid_utf8", "invalid_json",
                        "not_an_object", "missing_field", "wrong_type", "empty_field", "unknown_field",
                        "control_character"}  # fmt: skip


# -- memory and duplicates on many rows ------------------------------------------------------------------


def test_many_rows_count_duplicates_exactly() -> None:
    data = b"\n".join(row(f"q{i % 2_500}", "a" if i % 5000 < 2500 else "b") for i in range(10_000))
    report = validate_stream(chunked(data, MiB))
    assert report.valid is True and report.row_count == 10_000 and report.duplicate_rows == 10_000 - 5_000


def test_duplicate_digests_take_a_few_bytes_a_row() -> None:
    rows = 100_000
    lines = [b'{"input":"q%d","output":"a"}\n' % i for i in range(rows)]
    chunks = [b"".join(lines[start : start + 10_000]) for start in range(0, rows, 10_000)]
    validator = RowValidator()
    tracemalloc.start()
    try:
        for chunk in chunks:
            validator.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert validator.finish().duplicate_rows == 0
    # Digests kept in a set, an int object and a slot each, took 9.8 MiB here; 8-byte digests take 0.8 MB.
    assert peak < 3 * MiB, peak
