"""`tt runs report ID --html FILE`: one self-contained page (PRODUCT.md §10.5, §14.4).

No network and no external assets: the CSS is inline and the loss curve is an inline SVG, so the
file opens anywhere, offline, and can be attached to a ticket as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from tt_cli.eval_text import (
    delta_text,
    interval_text,
    pass_interval,
    report_scoring,
    verdict_text,
    with_interval,
)

# Loss chart geometry (SVG user units).
CHART_WIDTH, CHART_HEIGHT = 640, 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 16, 36
CHANGE = 0.1  # a regression / improvement: the tuned score moved this much from the base's (§10.5)
_TOLERANCE = 1e-9

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;
background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}.muted{color:#667085}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #e2e5ea;border-radius:8px;
padding:10px 14px;min-width:150px}.card .label{font-size:12px;color:#667085;text-transform:uppercase}
.card .value{font-size:22px;font-weight:600}.card .base,.card .ci{font-size:12px;color:#667085}
.up{color:#067647}.down{color:#b42318}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #e2e5ea;padding:6px 8px;vertical-align:top;text-align:left}
th{background:#eef0f3;font-weight:600}td:first-child{width:1%;white-space:nowrap}td.text{white-space:pre-wrap;word-break:break-word;max-width:360px}
tr.regression td{background:#fef3f2}tr.improvement td{background:#ecfdf3}
tr.failure td.tuned{outline:2px solid #fda29b}
.tag{display:inline-block;font-size:11px;border-radius:4px;padding:0 6px;margin:0 4px 2px 0;color:#fff}
.tag.regression{background:#d92d20}.tag.improvement{background:#079455}.tag.failure{background:#b54708}
svg{background:#fff;border:1px solid #e2e5ea;border-radius:8px}.reason{font-size:12px;color:#475467}
"""


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _percent(value: Any) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, int | float) else "–"


def _delta(new: Any, old: Any, *, rate: bool) -> str:
    if not isinstance(new, int | float) or not isinstance(old, int | float):
        return ""
    diff = new - old
    text = f"{diff * 100:+.1f} pp" if rate else f"{diff:+.4f}"
    kind = "up" if diff > 0 else "down" if diff < 0 else "muted"
    return f'<span class="{kind}">{escape(text)}</span>'


def _points(samples: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    return [
        (float(s["epoch"]), float(s[key]))
        for s in samples
        if isinstance(s.get("epoch"), int | float) and isinstance(s.get(key), int | float)
    ]


def loss_curve_svg(samples: Sequence[Mapping[str, Any]]) -> str:
    """The training loss and, at each epoch's end, the validation loss by epoch as one inline SVG (a note
    when there is no log yet)."""
    points, checks = _points(samples, "loss"), _points(samples, "valid_loss")
    if not points:
        return '<p class="muted">No training loss was logged.</p>'
    epochs = [p[0] for p in points + checks]
    losses = [p[1] for p in points + checks]
    x0, x1 = min(0.0, min(epochs)), max(epochs)
    y0, y1 = min(0.0, min(losses)), max(losses)
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    height = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(value: float) -> float:
        return MARGIN_LEFT + (value - x0) / span_x * width

    def y(value: float) -> float:
        return MARGIN_TOP + (1 - (value - y0) / span_y) * height

    def line(series: list[tuple[float, float]]) -> str:
        return " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in series)

    bottom, right = MARGIN_TOP + height, MARGIN_LEFT + width
    ticks = []
    for fraction in (0.0, 0.5, 1.0):
        value = y0 + fraction * span_y
        ticks.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{value:.2f}</text>"
        )
    title = f"Training loss by epoch: {points[0][1]:.4f} → {points[-1][1]:.4f}"
    validation = ""
    if checks:
        title += f"; validation loss {checks[0][1]:.4f} → {checks[-1][1]:.4f}"
        validation = (
            f'<polyline class="valid-loss" fill="none" stroke="#d92d20" stroke-width="2" '
            f'stroke-dasharray="5 3" points="{line(checks)}"/>'
            + "".join(f'<circle cx="{x(e):.1f}" cy="{y(v):.1f}" r="3" fill="#d92d20"/>' for e, v in checks)
            + f'<text x="{right}" y="{MARGIN_TOP - 4}" font-size="11" text-anchor="end" fill="#d92d20">'
            "- - validation</text>"
        )
    return (
        f'<svg role="img" aria-label="Training and validation loss by epoch" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}">'
        f"<title>{escape(title)}</title>"
        f'<line x1="{MARGIN_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#98a2b3"/>'
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{bottom}" stroke="#98a2b3"/>'
        + "".join(ticks)
        + f'<text x="{MARGIN_LEFT}" y="{bottom + 16}" font-size="11">epoch {x0:g}</text>'
        f'<text x="{right}" y="{bottom + 16}" font-size="11" text-anchor="end">epoch {x1:g}</text>'
        f'<text x="{MARGIN_LEFT + width / 2:.0f}" y="{bottom + 30}" font-size="11" text-anchor="middle">'
        f"loss by epoch</text>"
        f'<text x="{MARGIN_LEFT + 4}" y="{MARGIN_TOP - 4}" font-size="11" fill="#1570ef">— training</text>'
        f'<polyline class="loss" fill="none" stroke="#1570ef" stroke-width="2" points="{line(points)}"/>'
        + validation
        + "</svg>"
    )


def _card(
    label: str,
    tuned: str,
    base: str | None = None,
    delta: str = "",
    *,
    note: str | None = None,
    ci: str | None = None,
) -> str:
    base_line = f'<div class="base">base {escape(base)} {delta}</div>' if base is not None else ""
    if note is not None:
        base_line = f'<div class="base">{escape(note)}</div>'
    ci_line = f'<div class="ci">{escape(ci)}</div>' if ci else ""
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(tuned)}</div>{base_line}{ci_line}</div>'
    )


def _pass_rate_ci(tuned: Mapping[str, Any], base: Mapping[str, Any]) -> str | None:
    """`95% CI [30.1%, 95.4%] · base [4.6%, 69.9%]`: each pass rate's Wilson interval (§10.3)."""
    tuned_ci = interval_text(pass_interval(tuned), rate=True)
    base_ci = interval_text(pass_interval(base), rate=True)
    if tuned_ci is None:
        return None
    return f"95% CI {tuned_ci}" + (f" · base {base_ci}" if base_ci else "")


def _verdict_card(comparison: Mapping[str, Any]) -> str:
    """The verdict (§10.3) with the score delta and its interval; nothing for a report without one."""
    verdict = comparison.get("verdict")
    if not verdict:
        return ""
    detail = delta_text(comparison.get("avg_score_delta"), comparison.get("avg_score_delta_ci95"))
    return _card("Verdict", str(verdict), note=detail)


def _cards(report: Mapping[str, Any], diagnostics: Mapping[str, Any] | None) -> str:
    base, tuned = report.get("baseline") or {}, report.get("candidate") or {}
    outputs = (diagnostics or {}).get("output_diagnostics") or {}
    tuned_out, base_out = outputs.get("candidate") or {}, outputs.get("baseline") or {}
    previous = report.get("previous_run")
    comparison = report.get("comparison") or {}
    delta_ci = interval_text(comparison.get("avg_score_delta_ci95"), rate=False, signed=True)
    cards = [
        _verdict_card(comparison),
        _card("Avg score", _number(tuned.get("avg_score")), _number(base.get("avg_score")),
              _delta(tuned.get("avg_score"), base.get("avg_score"), rate=False),
              ci=f"Δ 95% CI {delta_ci}" if delta_ci else None),
        _card("Pass rate", _percent(tuned.get("pass_rate")), _percent(base.get("pass_rate")),
              _delta(tuned.get("pass_rate"), base.get("pass_rate"), rate=True),
              ci=_pass_rate_ci(tuned, base)),
        _card("Exact match", _percent(tuned.get("exact_match_rate")), _percent(base.get("exact_match_rate")),
              _delta(tuned.get("exact_match_rate"), base.get("exact_match_rate"), rate=True)),
        _card("Finished", _percent(tuned_out.get("finished_rate")), _percent(base_out.get("finished_rate")),
              _delta(tuned_out.get("finished_rate"), base_out.get("finished_rate"), rate=True)),
        _card("Base vs tuned", f"{comparison.get('improvements', 0)} better",
              note=f"{comparison.get('regressions', 0)} worse, by ≥ {CHANGE} on a row"),
    ]  # fmt: skip
    if previous:
        cards.append(
            _card(
                f"vs run #{previous.get('run_number')}",
                f"{previous.get('improvements', 0)} better",
                note=f"{previous.get('regressions', 0)} worse than that run",
            )
        )
    return f'<div class="cards">{"".join(cards)}</div>'


DIAGNOSTIC_ROWS = (
    ("Outputs", "total", "count"),
    ("Finished (end-of-turn)", "finished_rate", "rate"),
    ("Mean output chars", "avg_output_chars", "number"),
    ("Starts with JSON", "starts_json_rate", "rate"),
    ("Valid JSON", "valid_json_rate", "rate"),
    ("Has the expected keys", "expected_schema_keys_rate", "rate"),
    ("Text before the JSON", "non_json_prefix_rate", "rate"),
    ("Visible reasoning prefix", "visible_reasoning_prefix_rate", "rate"),
)


def _insights(insights: Sequence[Any]) -> str:
    notes = "".join(f"<li>{escape(str(text))}</li>" for text in insights)
    return f"<ul>{notes}</ul>" if notes else ""


def _diagnostics_table(outputs: Mapping[str, Any], insights: Sequence[Any] = ()) -> str:
    """§10.4's blocks of one split, tuned beside base, and the insights under them."""
    base, tuned = outputs.get("baseline") or {}, outputs.get("candidate") or {}

    def cell(block: Mapping[str, Any], key: str, kind: str) -> str:
        value = block.get(key)
        if kind == "rate":
            return _percent(value)
        return _number(value, 1) if kind == "number" else str(value if value is not None else "–")

    rows = "".join(
        f"<tr><td>{escape(label)}</td><td>{escape(cell(tuned, key, kind))}</td>"
        f"<td>{escape(cell(base, key, kind))}</td></tr>"
        for label, key, kind in DIAGNOSTIC_ROWS
    )
    return f"<table><tr><th>Outputs</th><th>Tuned</th><th>Base</th></tr>{rows}</table>" + _insights(insights)


def row_status(base_score: float | None, tuned: Mapping[str, Any]) -> list[str]:
    """The marks of one row: regression / improvement (vs base) and failure (tuned did not pass)."""
    marks = []
    score = tuned.get("score")
    if isinstance(score, int | float) and base_score is not None:
        if score - base_score <= -CHANGE + _TOLERANCE:
            marks.append("regression")
        elif score - base_score >= CHANGE - _TOLERANCE:
            marks.append("improvement")
    if not tuned.get("passed"):
        marks.append("failure")
    return marks


def _output_cell(row: Mapping[str, Any] | None, css: str) -> str:
    if row is None:
        return f'<td class="text {css}">–</td>'
    reason = row.get("reasoning")
    reason_html = f'<div class="reason">{escape(str(reason))}</div>' if reason else ""
    return (
        f'<td class="text {css}">{escape(str(row.get("actual", "")))}'
        f'<div class="muted">score {_number(row.get("score"))} · {escape(str(row.get("scored_by", "")))}'
        f"</div>{reason_html}</td>"
    )


def _rows_table(block: Mapping[str, Any]) -> str:
    """Every row: input, reference, base and tuned outputs side by side, joined by prompt."""
    base_by_prompt: dict[str, Mapping[str, Any]] = {}
    for row in (block.get("baseline") or {}).get("results") or []:
        base_by_prompt.setdefault(row["prompt"], row)
    lines = []
    for index, tuned in enumerate((block.get("candidate") or {}).get("results") or [], start=1):
        base = base_by_prompt.get(tuned["prompt"])
        marks = row_status(base.get("score") if base else None, tuned)
        tags = "".join(f'<span class="tag {mark}">{mark}</span>' for mark in marks)
        lines.append(
            f'<tr class="{" ".join(marks)}"><td>{index}<br>{tags}</td>'
            f'<td class="text">{escape(str(tuned["prompt"]))}</td>'
            f'<td class="text">{escape(str(tuned.get("expected", "")))}</td>'
            f"{_output_cell(base, 'base')}{_output_cell(tuned, 'tuned')}"
            f"<td>{_delta(tuned.get('score'), base.get('score') if base else None, rate=False)}</td></tr>"
        )
    if not lines:
        return '<p class="muted">No rows were evaluated.</p>'
    header = "<tr><th>#</th><th>Input</th><th>Reference</th><th>Base</th><th>Tuned</th><th>Δ</th></tr>"
    return f"<table>{header}{''.join(lines)}</table>"


def _split_line(title: str, block: Mapping[str, Any]) -> str:
    """One line for a block without cards: its verdict and both pass rates with their intervals."""
    base, tuned = block.get("baseline") or {}, block.get("candidate") or {}
    comparison = block.get("comparison") or {}
    verdict = verdict_text(
        comparison.get("verdict"), comparison.get("avg_score_delta"), comparison.get("avg_score_delta_ci95")
    )
    tuned_rate = with_interval(_percent(tuned.get("pass_rate")), pass_interval(tuned), rate=True)
    base_rate = with_interval(_percent(base.get("pass_rate")), pass_interval(base), rate=True)
    text = f"{title}: {verdict} · " if verdict else f"{title}: "
    return f"<p>{escape(f'{text}pass rate {tuned_rate} vs base {base_rate}')}</p>"


def render_report_html(
    report: Mapping[str, Any], diagnostics: Mapping[str, Any] | None, run: Mapping[str, Any] | None
) -> str:
    """The whole page; every value from the API is escaped."""
    run = run or {}
    title = f"{run.get('_spec_name') or 'Run'} #{run.get('run_number', '?')}"
    scoring = report_scoring(report) if report.get("scoring_method") else "–"
    samples = ((diagnostics or {}).get("training") or {}).get("curve", {}).get("samples") or []
    outputs = (diagnostics or {}).get("output_diagnostics") or {}
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">Run {escape(str(report.get("run_id")))} · {escape(str(report.get("status")))}'
        f" · eval split {escape(str(report.get('eval_split') or '–'))} · scoring {escape(scoring)}"
        f" · model {escape(str((report.get('candidate') or {}).get('model') or '–'))}</p>",
    ]
    if report.get("candidate") is None:
        parts.append(
            f"<p>The run is {escape(str(report.get('status')))}: its report is ready once it completes.</p>"
        )
    else:
        parts += [
            _cards(report, diagnostics),
            "<h2>Training</h2>",
            loss_curve_svg(samples),
            # The run's insights about training; the outputs' own come under their table.
            _insights(
                [i for i in (diagnostics or {}).get("insights") or [] if i not in outputs.get("insights", [])]
            ),
            "<h2>Output diagnostics (primary split)</h2>",
            _diagnostics_table(outputs, outputs.get("insights") or []),
            "<h2>Rows (primary split)</h2>",
            _rows_table(report),
        ]
        if report.get("test"):
            if outputs.get("test"):
                parts += ["<h2>Output diagnostics (test split)</h2>", _diagnostics_table(outputs["test"])]
            parts += [_split_line("Test split", report["test"]), "<h2>Rows (test split)</h2>"]
            parts.append(_rows_table(report["test"]))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} report</title><style>{STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
