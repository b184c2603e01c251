"""Dataset validation throughput and peak memory: the streaming validator against a naive json.loads loop."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "layers" / "core" / "python"

MB = 1_000_000
RUNS = 5  # pairs of runs per file, the two validators interleaved; medians are reported
RSS_TARGET_MB = 150
LONG_LINE_TARGET_S = 2.0
SEED = 1
VALIDATORS = ("naive", "streaming")

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


@dataclass(frozen=True)
class Corpus:
    """A generated JSONL file: `words` is the range of words in an input and in an output; `escapes` writes
    them in lines of a few words with now and then one in quotes, text that JSON escapes (`\\n`, `\\"`)."""

    name: str
    size: int
    non_ascii: bool
    words: tuple[int, int] = (4, 80)
    escapes: bool = False
    ensure_ascii: bool = False  # written as json.dumps writes by default: non-ASCII characters as \\u escapes
    target: float = 2.0  # the speed-up this corpus must reach


CORPORA = (
    Corpus("10mb-ascii", 10 * MB, non_ascii=False),
    Corpus("10mb-non-ascii", 10 * MB, non_ascii=True),
    Corpus("100mb-ascii", 100 * MB, non_ascii=False),
    Corpus("100mb-non-ascii", 100 * MB, non_ascii=True),
    # 1,500-4,000 words a field: rows of ~17-45 KB, where per-row costs vanish and parsing is all.
    Corpus("100mb-long-rows", 100 * MB, non_ascii=True, words=(1_500, 4_000)),
    # 1-4 words a field: rows of 40-133 bytes, ~65 on average, 1.5 M of them, where per-row costs (and the
    # duplicate digests' memory) are all.
    Corpus("100mb-short-rows", 100 * MB, non_ascii=True, words=(1, 4)),
    # Multi-line answers with quotes, as chat data often has: every row holds escapes.
    Corpus("100mb-escapes", 100 * MB, non_ascii=True, escapes=True),
    # The non-ASCII text as json.dumps writes it by default, six bytes a character. Its rows are counted
    # from their bytes too, but every \\u escape is checked one by one (is it written as json.dumps would,
    # so that its bytes can serve as its duplicate key?); the target is not to be slower than the baseline.
    Corpus("100mb-ascii-escapes", 100 * MB, non_ascii=True, escapes=True, ensure_ascii=True, target=1.0),
)


def generate(path: Path, corpus: Corpus) -> int:
    """Writes unique {"input", "output"} rows up to `corpus.size` bytes; returns the row count."""
    rng = random.Random(SEED)
    words = ASCII_TEXT.split() + (OTHER_TEXT.split() * 3 if corpus.non_ascii else [])
    pool = [text(rng, rng.choices(words, k=rng.randint(*corpus.words)), corpus.escapes) for _ in range(2_000)]
    written = rows = 0
    with path.open("wb") as handle:
        while True:
            line = json.dumps(
                {"input": f"Q{rows}: {rng.choice(pool)}?", "output": rng.choice(pool)},
                ensure_ascii=corpus.ensure_ascii,
            )
            data = (line + "\n").encode()
            if written + len(data) > corpus.size:
                return rows
            handle.write(data)
            written += len(data)
            rows += 1


def text(rng: random.Random, words: list[str], escapes: bool) -> str:
    if not escapes:
        return " ".join(words)
    words = [f'"{word}"' if rng.random() < 0.05 else word for word in words]
    lines, start = [], 0
    while start < len(words):
        end = start + rng.randint(3, 12)
        lines.append(" ".join(words[start:end]))
        start = end
    return "\n".join(lines)


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


def peak_rss_mb() -> float:
    """This process's peak resident memory so far.

    Linux's VmHWM, the high-water mark of this process image: ru_maxrss also counts the image exec
    replaced, the benchmark's own process (fork or vfork shares it until exec), which holds the corpus
    generator's memory.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MB  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # KiB on Linux, bytes on macOS


def child(kind: str, path: str, warm_up: str, core: str) -> None:
    """One run in this fresh interpreter: prints seconds, peak RSS and what was found, as JSON.

    Both validators first check a one-row file, so one-time costs (pydantic building a model's schema on
    first use, regex compilation) are not counted as throughput. "cpu_seconds" is the process's CPU time
    over the same span: on a shared machine it moves less with the load than the wall time does.
    """
    if kind == "streaming":
        sys.path.insert(0, core)
        from tt_core.datasets.validator import validate_file

        validate_file(warm_up)
        start_rss = peak_rss_mb()
        started, cpu_started = time.perf_counter(), time.process_time()
        report = validate_file(path)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        found = {"rows": report.row_count or 0, "errors": report.error_count}
    else:
        naive(warm_up)
        start_rss = peak_rss_mb()
        started, cpu_started = time.perf_counter(), time.process_time()
        found = naive(path)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    rss = {"peak_rss_mb": peak_rss_mb(), "start_rss_mb": start_rss}
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, **rss, **found}))


def run(kind: str, path: Path, core: Path) -> dict[str, float]:
    warm_up = path.parent / "warm-up.jsonl"
    if not warm_up.exists():
        warm_up.write_text('{"input": "a", "output": "b"}\n')
    command = [sys.executable, __file__, "--child", kind, str(path), str(warm_up), str(core)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output)
    return result


def spread(values: list[float]) -> float:
    """(max - min) / median, as a fraction: how far apart the runs of one case were."""
    return (max(values) - min(values)) / statistics.median(values)


def measure_pairs(path: Path, runs: int, core: Path) -> dict[str, dict[str, Any]]:
    """`runs` rounds of one run of each validator, back to back, the order alternating round by round.

    On a shared machine the load drifts: a pair run within seconds sees the same load, so the ratio of
    its two times is a fairer sample of the speed-up than two medians taken minutes apart, and
    alternating the order keeps either validator from always running first (warm page cache, turbo).
    """
    samples: dict[str, list[dict[str, float]]] = {kind: [] for kind in VALIDATORS}
    ratios, cpu_ratios = [], []
    for round_no in range(runs):
        order = VALIDATORS if round_no % 2 == 0 else VALIDATORS[::-1]
        pair = {kind: run(kind, path, core) for kind in order}
        for kind in VALIDATORS:
            samples[kind].append(pair[kind])
        ratios.append(pair["naive"]["seconds"] / pair["streaming"]["seconds"])
        cpu_ratios.append(pair["naive"]["cpu_seconds"] / pair["streaming"]["cpu_seconds"])
    size = path.stat().st_size
    results: dict[str, dict[str, Any]] = {}
    for kind, kind_samples in samples.items():
        seconds = [sample["seconds"] for sample in kind_samples]
        cpu_seconds = [sample["cpu_seconds"] for sample in kind_samples]
        results[kind] = {
            "seconds": statistics.median(seconds),
            "seconds_all": seconds,
            "spread": spread(seconds),
            "cpu_seconds": statistics.median(cpu_seconds),
            "cpu_seconds_all": cpu_seconds,
            "cpu_spread": spread(cpu_seconds),
            "mb_per_s": size / MB / statistics.median(seconds),
            "peak_rss_mb": max(sample["peak_rss_mb"] for sample in kind_samples),
            "start_rss_mb": max(sample["start_rss_mb"] for sample in kind_samples),
            "rows": kind_samples[0]["rows"],
            "errors": kind_samples[0]["errors"],
        }
    results["speedup"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    results["cpu_speedup"] = {
        "median": statistics.median(cpu_ratios),
        "min": min(cpu_ratios),
        "max": max(cpu_ratios),
    }
    return results


def main() -> None:
    """Runs every case and writes the results.

    Generates the corpora (10 MB and 100 MB of ASCII and of non-ASCII text, 100 MB each of long rows, short
    rows, multi-line rows with quotes, and those written with \\u escapes) and a file that is one 100 MB line
    in a temporary directory, then validates each with the streaming validator
    (`tt_core.datasets.validator.validate_file`, 1 MiB chunks) and with the baseline (read line by line,
    `json.loads` each, check the dict), in interleaved pairs (`measure_pairs`), each run in a fresh
    interpreter so that its peak RSS (`peak_rss_mb`) is its own; "start" is the peak RSS after imports and
    a warm-up. Throughput counts only the validation, not interpreter start-up or imports.
    Prints a table (medians, each case's spread: (max - min) / median, and the 1-minute load average when
    the case started) and writes bench/results/dataset_validation.json.

    Targets: the speed-up (median of the pairs' wall-time ratios) ≥ 2× on every corpus, and in its slowest
    pair too (≥ 1× for the text written with \\u escapes: see CORPORA); peak RSS ≤ 150 MB on the 100 MB
    files; the single 100 MB line rejected in < 2 s.
    The CPU-time speed-up is printed beside it as a cross-check that moves less with the machine's load.
    """
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0] if main.__doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"pairs of runs per file (default {RUNS})")
    parser.add_argument("--only", nargs="*", default=None, help="corpus names to run (default: all)")
    parser.add_argument(
        "--core",
        type=Path,
        default=CORE,
        help="the folder holding the tt_core to measure (another checkout's)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dataset_validation.json")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    started = time.perf_counter()
    load_before = os.getloadavg()
    cases: dict[str, dict[str, Any]] = {}
    print(
        f"load average before: {load_before[0]:.2f} (1 min), {os.cpu_count()} CPUs, "
        f"{args.runs} pairs a file, tt_core from {args.core}"
    )
    print(
        f"{'file':<20} {'validator':<10} {'MB/s':>7} {'s median':>9} {'spread':>7} {'CPU s':>7} "
        f"{'spread':>7} {'RSS start':>9} {'peak':>6} {'rows':>8} {'errors':>6} {'load':>5}"
    )
    with tempfile.TemporaryDirectory(prefix="tt-bench-") as tmp:
        files = [(corpus.name, Path(tmp) / f"{corpus.name}.jsonl", corpus) for corpus in CORPORA]
        files = [entry for entry in files if args.only is None or entry[0] in args.only]
        for name, path, corpus in files:
            rows = generate(path, corpus)
            cases[name] = {"size_bytes": path.stat().st_size, "generated_rows": rows}
            cases[name]["load_1min"] = os.getloadavg()[0]
            cases[name].update(measure_pairs(path, args.runs, args.core))
            print_case(name, cases[name])
            path.unlink()  # the disk holds one corpus at a time
        long_line = Path(tmp) / "one-100mb-line.jsonl"
        if args.only is None or long_line.stem in args.only:
            generate_long_line(long_line, 100 * MB)
            cases[long_line.stem] = {"size_bytes": long_line.stat().st_size}
            cases[long_line.stem]["load_1min"] = os.getloadavg()[0]
            cases[long_line.stem].update(measure_pairs(long_line, args.runs, args.core))
            print_case(long_line.stem, cases[long_line.stem])
    load_after = os.getloadavg()

    corpora = [name for name in cases if name != long_line.stem]
    target = {corpus.name: corpus.target for corpus in CORPORA}
    targets: dict[str, bool] = {}
    print()
    print(
        f"{'speed-up, naive / streaming':<28} {'wall: median':>12} {'slowest':>8} {'fastest':>8} "
        f"{'CPU: median':>12} {'target':>7}"
    )
    for name in corpora:
        wall, cpu = cases[name]["speedup"], cases[name]["cpu_speedup"]
        cases[name]["speedup_target"] = target[name]
        print(
            f"{name:<28} {wall['median']:>11.2f}x {wall['min']:>7.2f}x {wall['max']:>7.2f}x "
            f"{cpu['median']:>11.2f}x {target[name]:>6.1f}x"
        )
    if corpora:
        targets["speedup_target_met_every_corpus"] = all(
            cases[name]["speedup"]["median"] >= target[name] for name in corpora
        )
        targets["speedup_target_met_every_pair"] = all(
            cases[name]["speedup"]["min"] >= target[name] for name in corpora
        )
    big = [name for name in corpora if cases[name]["size_bytes"] > 50 * MB]
    rss_100 = max((cases[name]["streaming"]["peak_rss_mb"] for name in big), default=None)
    if rss_100 is not None:
        print(f"{'streaming peak RSS, 100 MB files':<40} {rss_100:>6.1f} MB (target ≤ {RSS_TARGET_MB})")
        targets["peak_rss_100mb_at_most_150mb"] = rss_100 <= RSS_TARGET_MB
    long_line_s = cases.get(long_line.stem, {}).get("streaming", {}).get("seconds")
    if long_line_s is not None:
        print(f"{'single 100 MB line rejected in':<40} {long_line_s:>6.3f} s (target < {LONG_LINE_TARGET_S})")
        targets["single_100mb_line_rejected_under_2s"] = long_line_s < LONG_LINE_TARGET_S
    for name, met in targets.items():
        print(f"{name:<40} {'met' if met else 'MISSED':>6}")
    total = time.perf_counter() - started
    print(f"load average after: {load_after[0]:.2f} (1 min); bench wall time {total:.1f} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "pairs_per_file": args.runs,
        "cases": cases,
        "targets": targets,
        "wall_seconds": total,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


def print_case(name: str, case: dict[str, Any]) -> None:
    for kind in VALIDATORS:
        result = case[kind]
        print(
            f"{name:<20} {kind:<10} {result['mb_per_s']:>7.1f} {result['seconds']:>9.3f} "
            f"{result['spread']:>6.0%} {result['cpu_seconds']:>7.3f} {result['cpu_spread']:>6.0%} "
            f"{result['start_rss_mb']:>9.1f} {result['peak_rss_mb']:>6.1f} {int(result['rows']):>8} "
            f"{int(result['errors']):>6} {case['load_1min']:>5.1f}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        main()
