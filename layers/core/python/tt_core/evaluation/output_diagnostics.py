"""Shape of generated outputs (JSON, visible reasoning, finished) and insights on it (PRODUCT.md §10.4)."""

from __future__ import annotations

from collections.abc import Sequence

from tt_core.evaluation.scoring import first_json_value, parse_json
from tt_core.models.evaluation import DiagnosticsBlock

REASONING_PREFIXES = ("<think", "<reasoning", "thinking:", "reasoning:", "let me think", "let's think")
# A gap in finished rates smaller than this between base and tuned outputs is not worth a sentence.
FINISHED_GAP = 0.1


def _rate(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def diagnose(outputs: Sequence[tuple[str, str, bool]]) -> DiagnosticsBlock:
    """Table D over (actual output, expected output, finished) rows."""
    total = len(outputs)
    starts_json = valid_json = strict_json = 0
    expected_json = schema_keys = non_json_prefix = reasoning = finished = 0
    for actual, expected, ended in outputs:
        trimmed = actual.strip()
        starts = trimmed.startswith(("{", "["))
        valid, value = parse_json(trimmed)
        starts_json += starts
        valid_json += valid
        strict_json += valid and isinstance(value, dict | list)
        expected_ok, expected_value = parse_json(expected)
        if expected_ok and isinstance(expected_value, dict):
            expected_json += 1
            schema_keys += isinstance(value, dict) and all(key in value for key in expected_value)
        non_json_prefix += not starts and first_json_value(trimmed) is not None
        reasoning += trimmed.casefold().startswith(REASONING_PREFIXES)
        finished += ended
    lengths = [len(actual) for actual, _, _ in outputs]
    return DiagnosticsBlock(
        total=total,
        avg_output_chars=round(sum(lengths) / total, 2) if total else 0.0,
        max_output_chars=max(lengths, default=0),
        starts_json_count=starts_json,
        starts_json_rate=_rate(starts_json, total),
        valid_json_count=valid_json,
        valid_json_rate=_rate(valid_json, total),
        strict_json_count=strict_json,
        strict_json_rate=_rate(strict_json, total),
        expected_json_total=expected_json,
        expected_schema_keys_count=schema_keys,
        expected_schema_keys_rate=_rate(schema_keys, expected_json),
        non_json_prefix_count=non_json_prefix,
        non_json_prefix_rate=_rate(non_json_prefix, total),
        visible_reasoning_prefix_count=reasoning,
        visible_reasoning_prefix_rate=_rate(reasoning, total),
        finished_count=finished,
        finished_rate=_rate(finished, total),
    )


def _percent(count: int, total: int) -> str:
    """Whole percent, but never "0%" or "100%" for a share that is neither."""
    if 0 < count * 100 < total:
        return "<1%"
    if total * 99 < count * 100 < total * 100:
        return ">99%"
    return f"{round(count * 100 / total)}%"


def output_insights(
    baseline: DiagnosticsBlock, candidate: DiagnosticsBlock, *, max_output_tokens: int
) -> list[str]:
    """Plain sentences on what stands out in the tuned outputs; [] when nothing does."""
    total = candidate.total
    if not total:
        return []
    insights: list[str] = []
    unfinished = total - candidate.finished_count
    if unfinished:
        insights.append(
            f"{_percent(unfinished, total)} of tuned outputs hit max_output_tokens ({max_output_tokens})."
        )
    if baseline.total:
        tuned_finished = candidate.finished_count / total
        base_finished = baseline.finished_count / baseline.total
        if abs(tuned_finished - base_finished) >= FINISHED_GAP - 1e-9:
            insights.append(
                f"Tuned outputs finished within the token budget "
                f"{_percent(candidate.finished_count, total)} of the time, base outputs "
                f"{_percent(baseline.finished_count, baseline.total)}."
            )
    if candidate.visible_reasoning_prefix_count:
        share = _percent(candidate.visible_reasoning_prefix_count, total)
        insights.append(f"{share} of tuned outputs start with visible reasoning.")
    missing = candidate.expected_json_total - candidate.expected_schema_keys_count
    if missing:
        share = _percent(missing, candidate.expected_json_total)
        insights.append(
            f"{share} of tuned outputs where a JSON object was expected are not a JSON object "
            "with the expected keys."
        )
    if candidate.non_json_prefix_count:
        share = _percent(candidate.non_json_prefix_count, total)
        insights.append(f"{share} of tuned outputs put other text before their JSON.")
    return insights
