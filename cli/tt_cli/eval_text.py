"""Evaluation figures as text for the CLI and the HTML report: intervals, verdict, scoring (§10.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def interval_text(interval: Any, *, rate: bool, signed: bool = False) -> str | None:
    """`[49.0%, 94.3%]` or `[+0.3012, +0.5100]`; None for a summary stored without intervals."""
    if not isinstance(interval, list | tuple) or len(interval) != 2:
        return None
    if not all(isinstance(value, int | float) for value in interval):
        return None
    sign = "+" if signed else ""
    low, high = (f"{value * 100:{sign}.1f}%" if rate else f"{value:{sign}.4f}" for value in interval)
    return f"[{low}, {high}]"


def with_interval(value: str | None, interval: Any, *, rate: bool, signed: bool = False) -> str | None:
    """The value followed by its interval, or the value alone."""
    shown = interval_text(interval, rate=rate, signed=signed)
    return f"{value} {shown}" if value is not None and shown else value


def delta_text(delta: Any, interval: Any) -> str | None:
    """`avg score delta +0.4023, 95% CI [+0.3012, +0.5100]`; None without both."""
    shown = interval_text(interval, rate=False, signed=True)
    if not isinstance(delta, int | float) or shown is None:
        return None
    return f"avg score delta {delta:+.4f}, 95% CI {shown}"


def verdict_text(verdict: Any, delta: Any, interval: Any) -> str | None:
    """`better (avg score delta +0.4023, 95% CI [+0.3012, +0.5100])`; None when there is no verdict."""
    if not verdict:
        return None
    detail = delta_text(delta, interval)
    return f"{verdict} ({detail})" if detail else str(verdict)


def scoring_text(method: Any, judge: Any, fallback_rows: Any, rows: Any) -> str:
    """The scoring method, its judge, and how many rows fell back to similarity."""
    method = method or "-"
    fell_back = fallback_rows if isinstance(fallback_rows, int) and fallback_rows > 0 else 0
    if method == "similarity" and fell_back:
        total = rows if isinstance(rows, int) and rows > 0 else fell_back
        return f"{method} (the judge failed on all {total} rows)"
    notes = [str(judge)] if judge else []
    if fell_back:
        notes.append(f"{fell_back} row{'s' if fell_back != 1 else ''} fell back to similarity")
    return f"{method} ({'; '.join(notes)})" if notes else str(method)


def pass_interval(block: Mapping[str, Any]) -> list[float] | None:
    """The Wilson 95% interval of a report block's pass rate, from its rows: the report shows it next
    to the rate (§10.3), and the block itself carries only the rate (§10.5)."""
    from tt_core.evaluation.uncertainty import wilson_interval  # loads numpy: only when a report is shown

    results = block.get("results")
    if not isinstance(results, list):
        return None
    interval = wilson_interval(sum(bool(row.get("passed")) for row in results), len(results))
    return list(interval) if interval else None


def report_scoring(report: Mapping[str, Any]) -> str:
    """scoring_text for a report: the rows that fell back are counted on the primary split's tuned rows."""
    results = (report.get("candidate") or {}).get("results") or []
    fell_back = sum(row.get("scored_by") == "similarity_fallback" for row in results)
    return scoring_text(report.get("scoring_method"), report.get("judge_model"), fell_back, len(results))
