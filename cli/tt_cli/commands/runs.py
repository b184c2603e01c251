"""`tt runs list|get|estimate|start|watch|cancel|checkpoints|diagnose|report` (PRODUCT.md §9, §10, §14.3,
§14.4)."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tt_cli.client import ApiResponse
from tt_cli.commands import datasets, specs, tuned_models
from tt_cli.commands.resources import id_argument, list_page, paging_options
from tt_cli.context import Context
from tt_cli.errors import CliError
from tt_cli.eval_text import pass_interval, report_scoring, scoring_text, verdict_text, with_interval
from tt_cli.output import render_table

RUNS_PATH = "/runs"
NOUN = "run"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
DEFAULT_INTERVAL_MS = 5000
REPORT_SPLITS = ("primary", "test", "all")
REPORT_MODES = ("regressions", "failures")
DEFAULT_REPORT_LIMIT = 5
DEFAULT_SPLIT_SHARE = 0.1  # validation and test when only some ratio flags are given (§14.3)
BAR_WIDTH = 20
CLEAR_LINE = "\r\033[K"

# (flag, hyperparameters field, type, help); only the flags given are sent (§14.3), the server
# applies its defaults (§9.1) to the rest.
HYPERPARAMETER_FLAGS: list[tuple[str, str, type, str]] = [
    ("--epochs", "n_epochs", int, "training epochs, 1–20 (default 3)"),
    ("--lr", "learning_rate", float, "learning rate (default 2e-4)"),
    ("--batch-size", "batch_size", int, "effective batch size (default 8)"),
    ("--lora-rank", "lora_rank", int, "LoRA rank (default 16; the parent's with --parent-model)"),
    ("--lora-alpha", "lora_alpha", int, "LoRA alpha (default 32; the parent's with --parent-model)"),
    ("--lora-dropout", "lora_dropout", float, "LoRA dropout, 0 ≤ x < 1 (default 0.05)"),
    ("--max-seq-length", "max_seq_length", int, "tokens per training row (default 2048)"),
    ("--max-eval-examples", "max_eval_examples", int, "cap on primary eval rows (default 50)"),
    ("--max-test-eval-examples", "max_test_eval_examples", int, "cap on test-split rows (default 50)"),
    ("--max-output-tokens", "max_output_tokens", int, "eval generation budget per row (default 256)"),
    (
        "--eval-reserved-output-tokens",
        "eval_reserved_output_tokens",
        int,
        "output tokens always left free per eval row (default 64)",
    ),
]
LONG_EXAMPLES = ("error", "truncate", "skip")
RATIO_DEFAULTS = {
    "train": "default: 1 − validation − test",
    "validation": "default 0.1 when a ratio is given",
    "test": "default 0.1 when a ratio is given",
}


def _sleep(seconds: float) -> None:
    """Indirection so tests can skip the waits between polls."""
    time.sleep(seconds)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def register(subparsers: Any) -> None:
    runs = subparsers.add_parser("runs", help="start, follow and inspect fine-tuning runs")
    commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list runs, newest first")
    listing.add_argument("-s", "--spec", metavar="ID", help="only this behaviour spec's runs")
    paging_options(listing)
    listing.add_argument("--summary", action="store_true", help="ask for the light summary rows")
    listing.set_defaults(func=list_command)

    get = commands.add_parser("get", help="show one run: status, settings, events, evaluation")
    id_argument(get, NOUN)
    get.set_defaults(func=get_command)

    estimate = commands.add_parser("estimate", help="estimate rows, tokens, duration and cost of a run")
    estimate.add_argument("spec", metavar="SPEC", help="behaviour spec id or a unique prefix")
    run_options(estimate)
    estimate.set_defaults(func=estimate_command)

    start = commands.add_parser("start", help="start a run of a behaviour spec")
    start.add_argument("spec", metavar="SPEC", help="behaviour spec id or a unique prefix")
    run_options(start)
    start.add_argument("-w", "--watch", action="store_true", help="follow the run until it ends")
    _interval_option(start)
    start.set_defaults(func=start_command)

    watch = commands.add_parser("watch", help="follow a run until it ends; exit 1 unless it completes")
    id_argument(watch, NOUN)
    _interval_option(watch)
    watch.set_defaults(func=watch_command)

    cancel = commands.add_parser("cancel", help="cancel an active run")
    id_argument(cancel, NOUN)
    cancel.set_defaults(func=cancel_command)

    checkpoints = commands.add_parser("checkpoints", help="a run's kept epoch checkpoints, newest first")
    id_argument(checkpoints, NOUN)
    checkpoints.set_defaults(func=checkpoints_command)

    diagnose = commands.add_parser("diagnose", help="training curve, insights and output diagnostics")
    id_argument(diagnose, NOUN)
    diagnose.set_defaults(func=diagnose_command)

    report = commands.add_parser("report", help="base vs tuned model: scores, deltas and rows side by side")
    id_argument(report, NOUN)
    report.add_argument("--split", choices=REPORT_SPLITS, default="primary", help="split (default: primary)")
    report.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_REPORT_LIMIT,
        metavar="N",
        help="rows shown (default: 5)",
    )
    report.add_argument(
        "--mode",
        choices=REPORT_MODES,
        default="regressions",
        help="regressed examples, worst first, or failing tuned rows, lowest first (default: regressions)",
    )
    report.add_argument("--html", metavar="FILE", help="also write the whole report as one HTML page")
    report.set_defaults(func=report_command)


def _interval_option(parser: Any) -> None:
    parser.add_argument(
        "--interval",
        type=_positive_int,
        default=DEFAULT_INTERVAL_MS,
        metavar="MS",
        help="milliseconds between polls (default: %(default)s)",
    )


def run_options(parser: Any) -> None:
    """The run flags of `start` and `estimate`; each defaults to None, meaning "not sent"."""
    parser.add_argument(
        "--no-augment", dest="augment", action="store_false", default=None, help="no generated rows"
    )
    parser.add_argument(
        "--no-llm-judge",
        dest="use_llm_judge",
        action="store_false",
        default=None,
        help="score by similarity instead of the LLM judge",
    )
    parser.add_argument("--dataset", metavar="ID", help="train on this uploaded dataset")
    parser.add_argument("--parent-model", metavar="ID", help="continue training this model's adapter")
    for share, default in RATIO_DEFAULTS.items():
        parser.add_argument(
            f"--{share}-ratio", type=float, metavar="R", help=f"{share} share of --dataset's rows ({default})"
        )
    for flag, field, kind, text in HYPERPARAMETER_FLAGS:
        parser.add_argument(flag, dest=field, type=kind, metavar="N" if kind is int else "X", help=text)
    parser.add_argument(
        "--long-examples", choices=LONG_EXAMPLES, help="rows over --max-seq-length (default truncate)"
    )


def _split_ratios(args: argparse.Namespace) -> dict[str, float] | None:
    """None without ratio flags; else validation and test default to 0.1, train to the rest."""
    given = (args.train_ratio, args.validation_ratio, args.test_ratio)
    if all(value is None for value in given):
        return None
    validation = DEFAULT_SPLIT_SHARE if args.validation_ratio is None else args.validation_ratio
    test = DEFAULT_SPLIT_SHARE if args.test_ratio is None else args.test_ratio
    # Rounded so that 1 − 0.15 − 0.05 is sent as 0.8, not 0.7999999999999999.
    train = round(1 - validation - test, 10) if args.train_ratio is None else args.train_ratio
    return {"train": train, "validation": validation, "test": test}


def run_body(ctx: Context) -> dict[str, Any]:
    """The start / estimate body from the run flags: only what was given (§9.1 defaults the rest)."""
    args = ctx.args
    body: dict[str, Any] = {}
    if args.augment is not None:
        body["augment"] = args.augment
    if args.use_llm_judge is not None:
        body["use_llm_judge"] = args.use_llm_judge
    if args.dataset is not None:
        body["dataset_id"] = datasets.resolve(ctx, args.dataset)
    if args.parent_model is not None:
        body["parent_model_id"] = tuned_models.resolve(ctx, args.parent_model)
    ratios = _split_ratios(args)
    if ratios is not None:
        body["split_ratios"] = ratios
    hyperparameters = {
        field: getattr(args, field)
        for _, field, _, _ in HYPERPARAMETER_FLAGS
        if getattr(args, field) is not None
    }
    if args.long_examples is not None:
        hyperparameters["long_examples"] = args.long_examples
    if hyperparameters:
        body["hyperparameters"] = hyperparameters
    return body


def _run_label(item: Mapping[str, Any]) -> str:
    return f"{item.get('_spec_name')} #{item.get('run_number')}"


def resolve(ctx: Context, value: str) -> str:
    return ctx.client.resolve_id(RUNS_PATH, value, NOUN, params={"view": "summary"}, label=_run_label)


# -- formatting ------------------------------------------------------------------------------------------


def _score(value: Any) -> str | None:
    return f"{value:.4f}" if isinstance(value, int | float) else None


def _rate(value: Any) -> str | None:
    return f"{value * 100:.1f}%" if isinstance(value, int | float) else None


def _number(value: Any) -> str | None:
    """`2`, `1.25`, `12,345`: epochs and counts without trailing zeros."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value:,}" if isinstance(value, int) else f"{round(value, 2):g}"


def _delta(tuned: Any, base: Any, *, rate: bool) -> str | None:
    if not isinstance(tuned, int | float) or not isinstance(base, int | float):
        return None
    diff = tuned - base
    return f"{diff * 100:+.1f} pp" if rate else f"{diff:+.4f}"


def _spec_of(run: Mapping[str, Any]) -> str | None:
    name, spec_id = run.get("_spec_name"), run.get("behavior_spec_id")
    return f"{name} ({spec_id})" if name and spec_id else (name or spec_id)


def _row_counts(counts: Mapping[str, Any] | None) -> str | None:
    if not counts:
        return None
    return (
        f"training {_number(counts.get('training')) or '-'} "
        f"({_number(counts.get('augmented')) or 0} generated), "
        f"evaluation {_number(counts.get('evaluation')) or '-'}, test {_number(counts.get('test')) or '-'}"
    )


def _ratios(ratios: Mapping[str, Any] | None) -> str | None:
    if not ratios:
        return None
    return " / ".join(f"{key} {ratios.get(key)}" for key in ("train", "validation", "test"))


# -- list, get ---------------------------------------------------------------------------------------


def list_command(ctx: Context) -> int:
    path = f"{specs.SPECS_PATH}/{specs.resolve(ctx, ctx.args.spec)}/runs" if ctx.args.spec else RUNS_PATH
    response = list_page(ctx, path, **({"view": "summary"} if ctx.args.summary else {}))

    def render(response: ApiResponse) -> None:
        rows = [
            [
                item["id"],
                item.get("_spec_name"),
                item.get("run_number"),
                item.get("status"),
                f"{item.get('progress_pct', 0)}%",
                _score((item.get("eval_summary") or {}).get("avg_score")),
                item.get("model_id"),
                item.get("started_at"),
            ]
            for item in response.data or []
        ]
        headers = ["ID", "SPEC", "#", "STATUS", "PROGRESS", "SCORE", "MODEL", "STARTED"]
        ctx.out.page(rows, headers, response.meta, empty="No runs.")

    return ctx.emit(response, render)


def render_run(ctx: Context, run: Mapping[str, Any]) -> None:
    snapshot = run.get("spec_snapshot") or {}
    ctx.out.fields(
        [
            ("ID", run.get("id")),
            ("Spec", _spec_of(run)),
            ("Run number", run.get("run_number")),
            ("Status", run.get("status")),
            ("Stage", run.get("stage_label")),
            ("Progress", f"{run.get('progress_pct', 0)}%"),
            ("Message", run.get("status_message")),
            ("Base model", snapshot.get("base_model")),
            ("Augmentation", run.get("augmentation_method")),
            ("Rows", _row_counts(run.get("row_counts"))),
            ("Split ratios", _ratios(run.get("split_ratios"))),
            ("Dataset", run.get("dataset_id")),
            ("Parent model", run.get("parent_model_id")),
            ("Model", run.get("model_id")),
            ("Started", run.get("started_at")),
            ("Completed", run.get("completed_at")),
            ("Error", run.get("error")),
        ]
    )
    hyperparameters = run.get("hyperparameters") or {}
    if hyperparameters:
        ctx.out.line("Hyperparameters:")
        for key, value in hyperparameters.items():
            ctx.out.line(f"  {key}: {value if isinstance(value, str) else json.dumps(value)}")
    events = run.get("_events") or []
    if events:
        ctx.out.line()
        rows = [
            [e.get("occurred_at"), e.get("label") or e.get("stage"), e.get("status"), e.get("message")]
            for e in events
        ]
        ctx.out.table(rows, ["TIME", "STAGE", "STATUS", "MESSAGE"], uncut={"MESSAGE"})
    summary = run.get("eval_summary")
    if summary:
        ctx.out.line()
        ctx.out.line("Evaluation:")
        render_eval_summary(ctx, summary)


def get_command(ctx: Context) -> int:
    response = ctx.client.get(f"{RUNS_PATH}/{resolve(ctx, ctx.args.id)}")
    return ctx.emit(response, lambda r: render_run(ctx, r.data))


# -- evaluation summary --------------------------------------------------------------------------------


def _eval_rows(summary: Mapping[str, Any]) -> str:
    used, total = summary.get("eval_examples_used", summary.get("total")), summary.get("eval_examples_total")
    text = f"{summary.get('eval_split') or '-'}, {_number(used) or '-'} rows"
    if summary.get("eval_truncated"):
        text += f" (of {_number(total) or '-'}; capped by max_eval_examples)"
    if summary.get("eval_overlaps_training"):
        text += " — overlaps the training rows"
    return text


def _comparison(rows: Sequence[tuple[str, Any, Any, bool, Any, Any, Any]]) -> str:
    """METRIC / TUNED / BASE / DELTA; rates as percentages, deltas in percentage points; each value
    followed by its 95% interval when the summary has one."""
    table = [
        [
            name,
            with_interval((_rate if rate else _score)(tuned), tuned_ci, rate=rate),
            with_interval((_rate if rate else _score)(base), base_ci, rate=rate),
            with_interval(_delta(tuned, base, rate=rate), delta_ci, rate=rate, signed=True),
        ]
        for name, tuned, base, rate, tuned_ci, base_ci, delta_ci in rows
    ]
    return render_table(table, ["METRIC", "TUNED", "BASE", "DELTA"])


def render_eval_summary(ctx: Context, summary: Mapping[str, Any], *, model_id: str | None = None) -> None:
    """Tuned vs base on the primary split (§10.3) with intervals and the verdict, then the comparison
    with the previous run. Summaries stored before intervals existed print without them."""
    diagnostics = summary.get("output_diagnostics") or {}
    candidate, baseline = diagnostics.get("candidate") or {}, diagnostics.get("baseline") or {}
    verdict = verdict_text(
        summary.get("verdict"), summary.get("avg_score_delta"), summary.get("avg_score_delta_ci95")
    )
    scoring = scoring_text(
        summary.get("scoring_method"),
        summary.get("judge_model"),
        summary.get("judge_fallback_rows"),
        summary.get("eval_examples_used", summary.get("total")),
    )
    ctx.out.fields(
        [
            *([("Model", model_id)] if model_id else []),
            ("Eval split", _eval_rows(summary)),
            ("Scoring", scoring),
            *([("Verdict", verdict)] if verdict else []),
        ]
    )
    ctx.out.line(
        _comparison(
            [
                ("Avg score", summary.get("avg_score"), summary.get("baseline_avg_score"), False,
                 None, None, summary.get("avg_score_delta_ci95")),
                ("Pass rate", summary.get("pass_rate"), summary.get("baseline_pass_rate"), True,
                 summary.get("pass_rate_ci95"), summary.get("baseline_pass_rate_ci95"), None),
                ("Exact match", summary.get("exact_match_rate"), None, True, None, None, None),
                ("Finished", candidate.get("finished_rate"), baseline.get("finished_rate"), True,
                 None, None, None),
            ]
        )
    )  # fmt: skip
    previous = summary.get("previous_run_id")
    against = f"vs run {previous}" if previous else "no previous completed run"
    ctx.out.line(
        f"Regressions: {summary.get('regressions', 0)}, improvements: {summary.get('improvements', 0)}"
        f" ({against})"
    )
    for insight in diagnostics.get("insights") or []:
        ctx.out.line(f"  - {insight}")


# -- estimate, start, cancel -----------------------------------------------------------------------------


def render_estimate(ctx: Context, estimate: Mapping[str, Any]) -> None:
    duration = estimate.get("duration") or {}
    span = duration.get("range_minutes") or {}
    samples = duration.get("sample_count")
    basis = f"basis {duration.get('basis')}, confidence {duration.get('confidence')}"
    if samples:
        basis += f", {samples} completed runs"
    cost = estimate.get("estimated_cost_usd")
    ctx.out.fields(
        [
            ("Rows", _number(estimate.get("estimated_rows"))),
            ("Training tokens", _number(estimate.get("estimated_training_tokens"))),
            ("Epochs", _number(estimate.get("estimated_epochs"))),
            (
                "Duration",
                f"about {_number(duration.get('estimated_minutes'))} minutes"
                f" ({_number(span.get('low'))}–{_number(span.get('high'))}; {basis})",
            ),
            ("Cost", f"${cost:,.2f}" if isinstance(cost, int | float) else None),
            ("Instance type", estimate.get("instance_type")),
        ]
    )
    render_spec_lint(ctx, estimate.get("spec_lint"))


def render_spec_lint(ctx: Context, lint: Mapping[str, Any] | None) -> None:
    """The gaps the server's spec lint found: broken constraints, rules no example exercises."""
    if not lint:
        return
    broken = [c for c in lint.get("constraints") or [] if not c.get("passed")]
    uncovered = [item for item in lint.get("coverage") or [] if not item.get("examples")]
    if not broken and not uncovered:
        ctx.out.success("Spec lint: every constraint holds and every rule has an example")
        return
    for constraint in broken:
        ctx.out.failure(f"constraints.{constraint.get('index')}: {constraint.get('message')}")
    for item in uncovered:
        ctx.out.warning(
            f"{item.get('kind')}s.{item.get('index')}: no example exercises '{item.get('text')}'", err=False
        )


def estimate_command(ctx: Context) -> int:
    spec_id = specs.resolve(ctx, ctx.args.spec)
    response = ctx.client.post(f"{specs.SPECS_PATH}/{spec_id}/runs/estimate", run_body(ctx))
    return ctx.emit(response, lambda r: render_estimate(ctx, r.data))


def start_command(ctx: Context) -> int:
    spec_id = specs.resolve(ctx, ctx.args.spec)
    # One Idempotency-Key per invocation, reused by the client's retries: never two runs (§2.5).
    response = ctx.client.post(f"{specs.SPECS_PATH}/{spec_id}/runs", run_body(ctx), idempotent=True)
    run = response.data
    started = f"Started run {run['id']} (#{run.get('run_number')}, {run.get('status')})"
    if ctx.args.watch:
        if not ctx.json_mode:  # --json --watch prints the final run only
            ctx.out.success(started)
        return watch(ctx, run["id"], ctx.args.interval / 1000)
    return ctx.emit(response, lambda _: ctx.out.success(started))


def cancel_command(ctx: Context) -> int:
    response = ctx.client.post(f"{RUNS_PATH}/{resolve(ctx, ctx.args.id)}/cancel")
    run = response.data
    return ctx.emit(response, lambda _: ctx.out.success(f"Run {run['id']} is {run.get('status')}"))


# -- watch -----------------------------------------------------------------------------------------------


def progress_text(run: Mapping[str, Any], curve: Mapping[str, Any] | None) -> str:
    """`42%  Training model · epoch 1.25/3 · loss 0.8412` (the epoch part only while training)."""
    text = f"{run.get('progress_pct', 0):>3}%  {run.get('stage_label') or run.get('status')}"
    if run.get("status") == "training" and curve:
        epoch = curve.get("latest_epoch")
        target = curve.get("target_epochs") or (run.get("hyperparameters") or {}).get("n_epochs")
        if epoch is not None:
            text += f" · epoch {_number(epoch)}/{_number(target) or '?'}"
        loss = curve.get("latest_loss")
        if isinstance(loss, int | float):
            text += f" · loss {loss:.4f}"
    return text


def progress_bar(pct: Any) -> str:
    fraction = min(max(float(pct or 0), 0.0), 100.0) / 100
    filled = round(BAR_WIDTH * fraction)
    return "[" + "█" * filled + "░" * (BAR_WIDTH - filled) + "]"


class WatchDisplay:
    """On a terminal one line redrawn in place; elsewhere one line per change; nothing for --json."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        stream = ctx.out.stdout
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last: str | None = None
        self._drawn = False

    def show(self, run: Mapping[str, Any], curve: Mapping[str, Any] | None) -> None:
        if self._ctx.json_mode:
            return
        text = progress_text(run, curve)
        if text == self._last:
            return
        self._last = text
        stream = self._ctx.out.stdout
        if self._tty:
            line = f"{progress_bar(run.get('progress_pct'))} {text}"
            width = shutil.get_terminal_size().columns - 1  # a wrapped line could not be redrawn with \r
            stream.write(CLEAR_LINE + line[: max(width, 20)])
            stream.flush()
            self._drawn = True
        else:
            self._ctx.out.line(text)

    def close(self) -> None:
        if self._drawn:
            self._ctx.out.stdout.write("\n")
            self._ctx.out.stdout.flush()


def _curve(ctx: Context, run_id: str) -> Mapping[str, Any] | None:
    """The training curve, or None when diagnostics cannot be read: they only decorate the watch."""
    with contextlib.suppress(CliError):
        diagnostics = ctx.client.get(f"{RUNS_PATH}/{run_id}/diagnostics").data or {}
        curve: Mapping[str, Any] | None = (diagnostics.get("training") or {}).get("curve")
        return curve
    return None


def watch(ctx: Context, run_id: str, interval_s: float) -> int:
    """Polls the run (and its diagnostics while training) until a terminal status (§14.4)."""
    display = WatchDisplay(ctx)
    try:
        while True:
            response = ctx.client.get(f"{RUNS_PATH}/{run_id}")
            run = response.data
            curve = _curve(ctx, run_id) if run.get("status") == "training" and not ctx.json_mode else None
            display.show(run, curve)
            if run.get("status") in TERMINAL:
                break
            _sleep(interval_s)
    finally:
        display.close()
    return report_outcome(ctx, response)


def report_outcome(ctx: Context, response: ApiResponse) -> int:
    """The eval summary of a completed run (exit 0), or the error of a failed / cancelled one (exit 1)."""
    run = response.data
    status = run.get("status")
    code = 0 if status == "completed" else 1
    if ctx.json_mode:
        ctx.out.json(response.envelope)
        return code
    label = f"Run {run.get('id')} (#{run.get('run_number')})"
    if status == "completed":
        ctx.out.success(f"{label} completed")
        if run.get("eval_summary"):
            render_eval_summary(ctx, run["eval_summary"], model_id=run.get("model_id"))
        else:
            ctx.out.fields([("Model", run.get("model_id"))])
    else:
        ctx.out.failure(f"{label} {status}")
        reason = run.get("error")
        ctx.out.fields([("Error", reason)] if reason else [("Message", run.get("status_message"))])
    return code


def watch_command(ctx: Context) -> int:
    return watch(ctx, resolve(ctx, ctx.args.id), ctx.args.interval / 1000)


# -- checkpoints -----------------------------------------------------------------------------------------


def checkpoints_command(ctx: Context) -> int:
    run_id = resolve(ctx, ctx.args.id)

    def render(response: ApiResponse) -> None:
        rows = [
            [
                c.get("epoch"),
                c.get("step"),
                _score((c.get("metrics") or {}).get("train_loss")),
                _score((c.get("metrics") or {}).get("valid_loss")),
                _rate((c.get("metrics") or {}).get("valid_token_accuracy")),
                "yes" if c.get("is_registered_model") else "",
                c.get("created_at"),
            ]
            for c in response.data
        ]
        if not rows:
            ctx.out.dim("No checkpoints yet: one is kept at the end of each epoch (the last 3).")
            return
        ctx.out.table(rows, ["EPOCH", "STEP", "TRAIN LOSS", "VALID LOSS", "VALID ACC", "MODEL", "CREATED"])
        ctx.out.dim(f"Serve one with: tt models serve {run_id} --epoch N")

    return ctx.emit(ctx.client.get(f"{RUNS_PATH}/{run_id}/checkpoints"), render)


# -- diagnose --------------------------------------------------------------------------------------------


def _curve_text(curve: Mapping[str, Any]) -> str | None:
    parts = []
    if curve.get("latest_epoch") is not None:
        parts.append(f"epoch {_number(curve['latest_epoch'])}/{_number(curve.get('target_epochs')) or '?'}")
    if isinstance(curve.get("latest_loss"), int | float):
        loss = f"loss {curve['latest_loss']:.4f}"
        if isinstance(curve.get("previous_loss"), int | float):
            loss += f" (previous {curve['previous_loss']:.4f})"
        parts.append(loss)
    if isinstance(curve.get("latest_valid_loss"), int | float):
        parts.append(f"validation loss {curve['latest_valid_loss']:.4f}")
    if isinstance(curve.get("epoch_rate_per_minute"), int | float):
        parts.append(f"{curve['epoch_rate_per_minute']:.3g} epochs/min")
    if isinstance(curve.get("estimated_minutes_remaining"), int | float):
        parts.append(f"about {_number(curve['estimated_minutes_remaining'])} min remaining")
    return " · ".join(parts) or None


def render_epochs(ctx: Context, samples: Sequence[Mapping[str, Any]]) -> None:
    """Training and validation side by side at each epoch's end (PRODUCT.md §9.9): where they part, the
    model starts learning its training rows rather than the task."""
    ends = [s for s in samples if isinstance(s.get("valid_loss"), int | float)]
    if not ends:
        return
    rows = [
        [
            _number(s.get("epoch")),
            _score(s.get("loss")),
            _rate(s.get("token_accuracy")),
            _score(s.get("valid_loss")),
            _rate(s.get("valid_token_accuracy")),
        ]
        for s in ends
    ]
    ctx.out.table(rows, ["EPOCH", "TRAIN LOSS", "TRAIN ACC", "VALID LOSS", "VALID ACC"])


def render_diagnostics(ctx: Context, diagnostics: Mapping[str, Any]) -> None:
    training = diagnostics.get("training") or {}
    curve = training.get("curve") or {}
    samples = curve.get("samples", training.get("samples")) or []
    phase = training.get("phase")
    ctx.out.fields(
        [
            ("Run", diagnostics.get("run_id")),
            (
                "Status",
                f"{diagnostics.get('status')} ({diagnostics.get('stage_label')}, "
                f"{diagnostics.get('progress_pct', 0)}%)",
            ),
            ("Message", diagnostics.get("status_message")),
            ("Summary", diagnostics.get("summary")),
            ("Training", f"{training.get('state')} ({phase})" if phase else training.get("state")),
            ("Curve", _curve_text(curve)),
            ("Loss samples", len(samples)),
            ("Last log", curve.get("latest_log_at")),
        ]
    )
    render_epochs(ctx, samples)
    insights = diagnostics.get("insights") or []
    if insights:
        ctx.out.line("Insights:")
        for insight in insights:
            ctx.out.line(f"  - {insight}")
    outputs = diagnostics.get("output_diagnostics") or {}
    baseline, candidate = outputs.get("baseline") or {}, outputs.get("candidate") or {}
    ctx.out.line()
    rows = [
        ["Total", _number(candidate.get("total")), _number(baseline.get("total"))],
        ["Finished", _rate(candidate.get("finished_rate")), _rate(baseline.get("finished_rate"))],
        ["Valid JSON", _rate(candidate.get("valid_json_rate")), _rate(baseline.get("valid_json_rate"))],
    ]
    ctx.out.table(rows, ["OUTPUTS", "TUNED", "BASE"])
    for insight in outputs.get("insights") or []:
        ctx.out.line(f"  - {insight}")


def diagnose_command(ctx: Context) -> int:
    response = ctx.client.get(f"{RUNS_PATH}/{resolve(ctx, ctx.args.id)}/diagnostics")
    return ctx.emit(response, lambda r: render_diagnostics(ctx, r.data))


# -- report ----------------------------------------------------------------------------------------------


def _by_prompt(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        found.setdefault(str(row.get("prompt")), row)
    return found


def _selected_rows(block: Mapping[str, Any], mode: str, limit: int) -> list[list[Any]]:
    """`regressions`: regressed examples, worst first; `failures`: tuned rows that did not pass or
    scored below 1, lowest first."""
    base = _by_prompt((block.get("baseline") or {}).get("results") or [])
    tuned = _by_prompt((block.get("candidate") or {}).get("results") or [])
    if mode == "regressions":
        prompts = [
            str(e.get("prompt")) for e in (block.get("comparison") or {}).get("regressed_examples") or []
        ]
    else:
        failing = [row for row in tuned.values() if not row.get("passed") or (row.get("score") or 0) < 1]
        prompts = [str(row.get("prompt")) for row in sorted(failing, key=lambda row: row.get("score") or 0)]
    rows = []
    for prompt in prompts[:limit]:
        old, new = base.get(prompt) or {}, tuned.get(prompt) or {}
        rows.append(
            [
                prompt,
                new.get("expected"),
                old.get("actual"),
                _score(old.get("score")),
                new.get("actual"),
                _score(new.get("score")),
                _delta(new.get("score"), old.get("score"), rate=False),
            ]
        )
    return rows


def render_report_block(ctx: Context, name: str, block: Mapping[str, Any], mode: str, limit: int) -> None:
    """Base vs tuned vs delta on one split, then up to `limit` rows side by side (§14.4)."""
    base, tuned = block.get("baseline") or {}, block.get("candidate") or {}
    comparison = block.get("comparison") or {}
    used, total = tuned.get("eval_examples_used"), tuned.get("eval_examples_total")
    rows_text = f"{_number(used) or '-'} rows" + (
        f" (of {_number(total)})" if tuned.get("eval_truncated") else ""
    )
    ctx.out.line(
        f"{name.capitalize()} split ({rows_text}): base {base.get('model')} vs tuned {tuned.get('model')}"
    )
    # Each value with its 95% interval where §10.3 gives one: the score delta's, the pass rates'.
    intervals: dict[str, tuple[Any, Any, Any]] = {
        "avg_score": (None, None, comparison.get("avg_score_delta_ci95")),
        "pass_rate": (pass_interval(base), pass_interval(tuned), None),
        "exact_match_rate": (None, None, None),
    }
    table: list[list[str | None]] = []
    for label, key, rate in (
        ("Avg score", "avg_score", False),
        ("Pass rate", "pass_rate", True),
        ("Exact match", "exact_match_rate", True),
    ):
        shown = _rate if rate else _score
        base_ci, tuned_ci, delta_ci = intervals[key]
        table.append(
            [
                label,
                with_interval(shown(base.get(key)), base_ci, rate=rate),
                with_interval(shown(tuned.get(key)), tuned_ci, rate=rate),
                with_interval(
                    _delta(tuned.get(key), base.get(key), rate=rate), delta_ci, rate=rate, signed=True
                ),
            ]
        )
    latency = [_number(base.get("avg_latency_ms")), _number(tuned.get("avg_latency_ms"))]
    table.append(["Avg latency ms", *latency, None])
    ctx.out.line(render_table(table, ["METRIC", "BASE", "TUNED", "DELTA"]))
    verdict = verdict_text(
        comparison.get("verdict"), comparison.get("avg_score_delta"), comparison.get("avg_score_delta_ci95")
    )
    if verdict:
        ctx.out.line(f"Verdict: {verdict}")
    ctx.out.line(
        f"Tuned vs base: {comparison.get('regressions', 0)} regressions, "
        f"{comparison.get('improvements', 0)} improvements"
    )
    selected = _selected_rows(block, mode, limit)
    title = (
        "Regressed examples (worst first)" if mode == "regressions" else "Failing tuned rows (lowest first)"
    )
    ctx.out.line()
    if not selected:
        ctx.out.dim(f"{title}: none.")
        return
    ctx.out.line(f"{title}:")
    ctx.out.table(selected, ["INPUT", "EXPECTED", "BASE OUTPUT", "BASE", "TUNED OUTPUT", "TUNED", "DELTA"])


def render_training(ctx: Context, diagnostics: Mapping[str, Any]) -> None:
    """The report's training block: the epochs' losses and the insights about them."""
    training = diagnostics.get("training") or {}
    curve = training.get("curve") or {}
    ctx.out.line()
    ctx.out.line(f"Training: {_curve_text(curve) or training.get('state') or '-'}")
    render_epochs(ctx, curve.get("samples") or [])
    for insight in diagnostics.get("insights") or []:
        ctx.out.line(f"  - {insight}")


def render_report(ctx: Context, report: Mapping[str, Any], split: str, mode: str, limit: int) -> None:
    ctx.out.fields(
        [
            ("Run", report.get("run_id")),
            ("Status", report.get("status")),
            ("Model", report.get("fine_tuned_model_id")),
            ("Eval split", report.get("eval_split")),
            ("Scoring", report_scoring(report)),
        ]
    )
    if report.get("candidate") is None:
        ctx.out.line(f"No report yet: the run is {report.get('status')} (reports come with completed runs).")
        return
    previous = report.get("previous_run")
    if previous:
        ctx.out.line(
            f"Since run #{previous.get('run_number')} ({previous.get('run_id')}): "
            f"{previous.get('regressions', 0)} regressions, {previous.get('improvements', 0)} improvements"
        )
    blocks: list[tuple[str, Mapping[str, Any]]] = []
    if split in ("primary", "all"):
        blocks.append(("primary", report))
    if split in ("test", "all"):
        if report.get("test"):
            blocks.append(("test", report["test"]))
        else:
            ctx.out.dim("This run has no test split.")
    for name, block in blocks:
        ctx.out.line()
        render_report_block(ctx, name, block, mode, limit)


def report_command(ctx: Context) -> int:
    from pathlib import Path

    from tt_cli.report_html import render_report_html

    run_id = resolve(ctx, ctx.args.id)
    response = ctx.client.get(f"{RUNS_PATH}/{run_id}/report")
    args = ctx.args
    # The training curve and its insights: for the HTML page and under the text report.
    wanted = args.html or not ctx.json_mode
    diagnostics = ctx.client.get(f"{RUNS_PATH}/{run_id}/diagnostics").data if wanted else None
    if args.html:
        run = ctx.client.get(f"{RUNS_PATH}/{run_id}").data
        path = Path(args.html)
        try:
            path.write_text(render_report_html(response.data, diagnostics, run), encoding="utf-8")
        except OSError as error:
            raise CliError.local(f"cannot write {path}: {error.strerror or error}") from None
        if not ctx.json_mode:
            ctx.out.success(f"Wrote {path}")

    def render(data: Mapping[str, Any]) -> None:
        render_report(ctx, data, args.split, args.mode, args.limit)
        if diagnostics is not None and data.get("candidate") is not None:
            render_training(ctx, diagnostics)

    return ctx.emit(response, lambda r: render(r.data))
