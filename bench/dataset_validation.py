"""Dataset validation throughput and peak memory: the streaming validator against a naive json.loads loop."""

from __future__ import annotations

import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "core" / "python")]

MB = 1_000_000
RUNS = {10 * MB: 5, 100 * MB: 3}  # fresh interpreters per file and validator; the median is reported
RSS_TARGET_MB = 150
LONG_LINE_TARGET_S = 2.0
SEED = 1

ASCII_TEXT = (
    "the of and to in is you that it was for on are as with they at be this from have or by one had not but "
    "what all were when we there can an your which their said if do will each about how up out them then she "
    "many some so these would other into has more her two like him see time could no make than first been "
    "its who now people my made over did down only way find use may water long little very after words "
    "called just where most know reset password invoice billing settings account dashboard security"
)
OTHER_TEXT = (  # accents, CJK, Hangul, Greek, Cyrillic, emoji, Latin-1 symbols
    "café naïve résumé straße façade Ünïcödé 東京 日本語 首都 데이터 서울 données Ελληνικά русский язык "
    "😀 🎉 ½ £ € © « » — “ ” …"
)


def generate(path: Path, size: int, *, non_ascii: bool) -> int:
    """Writes unique {"input", "output"} rows up to `size` bytes; returns the row count."""
    rng = random.Random(SEED)
    words = ASCII_TEXT.split() + (OTHER_TEXT.split() * 3 if non_ascii else [])
    pool = [" ".join(rng.choices(words, k=rng.randint(4, 80))) for _ in range(5_000)]
    written = rows = 0
    with path.open("wb") as handle:
        while True:
            line = json.dumps(
                {"input": f"Q{rows}: {rng.choice(pool)}?", "output": rng.choice(pool)}, ensure_ascii=False
            )
            data = (line + "\n").encode()
            if written + len(data) > size:
                return rows
            handle.write(data)
            written += len(data)
            rows += 1


def generate_long_line(path: Path, size: int) -> None:
    """One JSON row of `size` bytes with no newline: a line 100 times over the limit."""
    head, tail = b'{"input": "', b'", "output": "x"}'
    block = b"y" * (1 << 20)
    with path.open("wb") as handle:
        handle.write(head)
        remaining = size - len(head) - len(tail)
        while remaining > 0:
            handle.write(block[: min(remaining, len(block))])
            remaining -= len(block)
        handle.write(tail)


def naive(path: str) -> dict[str, int]:
    """The baseline: every line read whole, json.loads, then the dict checks."""
    rows = errors = 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            rows += 1
            try:
                row = json.loads(line)
            except ValueError:
                errors += 1
                continue
            if not isinstance(row, dict):
                errors += 1
                continue
            for name in ("input", "output"):
                value = row.get(name)
                if not isinstance(value, str) or not value:
                    errors += 1
            errors += sum(1 for key in row if key not in ("input", "output"))
    return {"rows": rows, "errors": errors}


def child(kind: str, path: str, warm_up: str) -> None:
    """One run in this fresh interpreter: prints seconds, peak RSS and what was found, as JSON.

    Both validators first check a one-row file, so one-time costs (pydantic building a model's schema on
    first use, regex compilation) are not counted as throughput.
    """
    if kind == "streaming":
        from tt_core.dataset_rows import validate_file

        validate_file(warm_up)
        base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        report = validate_file(path)
        seconds = time.perf_counter() - started
        found = {"rows": report.row_count or 0, "errors": report.error_count}
    else:
        naive(warm_up)
        base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        found = naive(path)
        seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    rss = {"peak_rss_mb": peak_kb * 1024 / MB, "start_rss_mb": base_kb * 1024 / MB}
    print(json.dumps({"seconds": seconds, **rss, **found}))


def run(kind: str, path: Path) -> dict[str, float]:
    warm_up = path.parent / "warm-up.jsonl"
    if not warm_up.exists():
        warm_up.write_text('{"input": "a", "output": "b"}\n')
    command = [sys.executable, __file__, "--child", kind, str(path), str(warm_up)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output)
    return result


def measure(kind: str, path: Path, runs: int) -> dict[str, float]:
    samples = [run(kind, path) for _ in range(runs)]
    seconds = statistics.median(sample["seconds"] for sample in samples)
    size = path.stat().st_size
    return {
        "seconds": seconds,
        "mb_per_s": size / MB / seconds,
        "peak_rss_mb": max(sample["peak_rss_mb"] for sample in samples),
        "start_rss_mb": max(sample["start_rss_mb"] for sample in samples),
        "rows": samples[0]["rows"],
        "errors": samples[0]["errors"],
    }


def main() -> None:
    """Runs every case and writes the results.

    Generates 10 MB and 100 MB JSONL files (ASCII and non-ASCII text) and a file that is one 100 MB line
    in a temporary directory, then validates each with the streaming validator
    (`tt_core.dataset_rows.validate_file`, 1 MiB chunks) and with the baseline (read line by line,
    `json.loads` each, check the dict), each run in a fresh interpreter so that its peak RSS (ru_maxrss) is
    its own; "start" is the RSS after imports and a warm-up. Throughput counts only the validation, not
    interpreter start-up or imports. Prints a table and writes bench/results/dataset_validation.json.

    Targets: throughput ≥ the baseline's on every file; peak RSS ≤ 150 MB on the 100 MB files; the single
    100 MB line rejected in < 2 s.
    """
    started = time.perf_counter()
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tt-bench-") as tmp:
        files = []
        for size, runs in RUNS.items():
            for non_ascii in (False, True):
                path = Path(tmp) / f"{size // MB}mb-{'non-ascii' if non_ascii else 'ascii'}.jsonl"
                generate(path, size, non_ascii=non_ascii)
                files.append((path, runs))
        long_line = Path(tmp) / "one-100mb-line.jsonl"
        generate_long_line(long_line, 100 * MB)
        files.append((long_line, RUNS[100 * MB]))

        header = f"{'file':<24} {'validator':<10} {'MB/s':>8} {'s':>7} {'RSS MB start':>12} {'peak':>6}"
        print(f"{header} {'rows':>7} {'errors':>6}")
        for path, runs in files:
            for kind in ("naive", "streaming"):
                result = measure(kind, path, runs)
                cases.append(
                    {"file": path.stem, "size_bytes": path.stat().st_size, "validator": kind, **result}
                )
                print(
                    f"{path.stem:<24} {kind:<10} {result['mb_per_s']:>8.1f} {result['seconds']:>7.3f} "
                    f"{result['start_rss_mb']:>12.1f} {result['peak_rss_mb']:>6.1f} {int(result['rows']):>7} "
                    f"{int(result['errors']):>6}"
                )

    def pick(file: str, kind: str) -> dict[str, Any]:
        return next(case for case in cases if case["file"] == file and case["validator"] == kind)

    jsonl_files = sorted({str(case["file"]) for case in cases if case["file"] != long_line.stem})
    speedups = {
        file: pick(file, "streaming")["mb_per_s"] / pick(file, "naive")["mb_per_s"] for file in jsonl_files
    }
    rss_100 = max(pick(file, "streaming")["peak_rss_mb"] for file in jsonl_files if file.startswith("100"))
    long_line_s = pick(long_line.stem, "streaming")["seconds"]
    targets = {
        "throughput_at_least_baseline": all(value >= 1.0 for value in speedups.values()),
        "peak_rss_100mb_at_most_150mb": rss_100 <= RSS_TARGET_MB,
        "single_100mb_line_rejected_under_2s": long_line_s < LONG_LINE_TARGET_S,
    }
    print()
    for file, value in speedups.items():
        print(f"{'speed-up ' + file:<40} {value:>6.2f}x")
    print(f"{'streaming peak RSS, 100 MB files':<40} {rss_100:>6.1f} MB (target ≤ {RSS_TARGET_MB})")
    print(f"{'single 100 MB line rejected in':<40} {long_line_s:>6.3f} s (target < {LONG_LINE_TARGET_S})")
    for name, met in targets.items():
        print(f"{name:<40} {'met' if met else 'MISSED':>6}")
    total = time.perf_counter() - started
    print(f"{'bench wall time':<40} {total:>6.1f} s")

    out = ROOT / "bench" / "results" / "dataset_validation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "runs_per_case": {f"{size // MB}mb": runs for size, runs in RUNS.items()},
                "cases": cases,
                "speedup_vs_naive": speedups,
                "streaming_peak_rss_mb_100mb": rss_100,
                "single_100mb_line_seconds": long_line_s,
                "targets": targets,
                "wall_seconds": total,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
