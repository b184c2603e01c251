"""`tt specs list|get|create|update|delete` (PRODUCT.md §6, §14.3)."""

from __future__ import annotations

from typing import Any

from tt_cli import spec_file
from tt_cli.client import ApiResponse
from tt_cli.commands.resources import delete_confirmed, delete_parser, id_argument, list_page, paging_options
from tt_cli.context import Context
from tt_cli.errors import CliError

SPECS_PATH = "/behavior-specs"
NOUN = "behaviour spec"
PROMPT_PREVIEW = 80


def register(subparsers: Any) -> None:
    specs = subparsers.add_parser("specs", help="manage behaviour specs")
    commands = specs.add_subparsers(dest="specs_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list behaviour specs, newest first")
    paging_options(listing)
    listing.set_defaults(func=list_command)

    get = commands.add_parser("get", help="show one behaviour spec and its recent runs")
    id_argument(get, "spec")
    get.set_defaults(func=get_command)

    create = commands.add_parser("create", help="create a behaviour spec from a JSON file")
    create.add_argument(
        "-f", "--file", required=True, metavar="FILE", help="spec JSON (tunedtensor.json format)"
    )
    _override_options(create)
    create.set_defaults(func=create_command)

    update = commands.add_parser("update", help="change a behaviour spec (only the given fields change)")
    id_argument(update, "spec")
    update.add_argument("-f", "--file", metavar="FILE", help="spec JSON whose fields replace the spec's")
    _override_options(update)
    update.set_defaults(func=update_command, usage_error=update.error)

    delete_parser(commands, "behaviour spec", "and all its runs").set_defaults(func=delete_command)


def _override_options(parser: Any) -> None:
    parser.add_argument("-n", "--name", help="spec name (overrides the file)")
    parser.add_argument("--model", help="base model id or alias (overrides the file)")


def resolve(ctx: Context, value: str) -> str:
    return ctx.client.resolve_id(SPECS_PATH, value, NOUN)


def _latest(item: dict[str, Any]) -> str:
    status, score = item.get("_latest_run_status"), item.get("_latest_run_score")
    if status is None:
        return "-"
    return f"{status} ({score:.2f})" if isinstance(score, int | float) else str(status)


def list_command(ctx: Context) -> int:
    response = list_page(ctx, SPECS_PATH)

    def render(response: ApiResponse) -> None:
        rows = [
            [
                item["id"],
                item.get("name"),
                item.get("base_model"),
                item.get("_example_count", len(item.get("examples") or [])),
                item.get("_run_count"),
                _latest(item),
                item.get("updated_at"),
            ]
            for item in response.data or []
        ]
        headers = ["ID", "NAME", "BASE MODEL", "EXAMPLES", "RUNS", "LATEST RUN", "UPDATED"]
        ctx.out.page(rows, headers, response.meta, empty="No behaviour specs.")

    return ctx.emit(response, render)


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PROMPT_PREVIEW else text[: PROMPT_PREVIEW - 1] + "…"


def render_spec(ctx: Context, spec: dict[str, Any]) -> None:
    ctx.out.fields(
        [
            ("ID", spec.get("id")),
            ("Name", spec.get("name")),
            ("Description", _preview(spec.get("description") or "")),
            ("Base model", spec.get("base_model")),
            ("System prompt", _preview(spec.get("system_prompt") or "")),
            ("Examples", len(spec.get("examples") or [])),
            ("Eval cases", len(spec.get("eval_cases") or [])),
            ("Runs", spec.get("_run_count", 0)),
            ("Created", spec.get("created_at")),
            ("Updated", spec.get("updated_at")),
        ]
    )
    for title in ("guidelines", "constraints"):
        items = spec.get(title) or []
        if items:
            ctx.out.line(f"{title.capitalize()}:")
            for item in items:
                ctx.out.line(f"  - {item}")
    runs = spec.get("_runs") or []
    if runs:
        ctx.out.line()
        rows = [
            [
                f"#{run.get('run_number')}",
                run.get("id"),
                run.get("status"),
                f"{run.get('progress_pct', 0)}%",
                (run.get("eval_summary") or {}).get("avg_score"),
                run.get("started_at"),
            ]
            for run in runs
        ]
        ctx.out.table(rows, ["RUN", "ID", "STATUS", "PROGRESS", "SCORE", "STARTED"])


def get_command(ctx: Context) -> int:
    response = ctx.client.get(f"{SPECS_PATH}/{resolve(ctx, ctx.args.id)}")
    return ctx.emit(response, lambda r: render_spec(ctx, r.data))


def _body(ctx: Context) -> dict[str, Any]:
    """The file's writable fields (when -f is given) with -n / --model applied on top."""
    body = spec_file.spec_body(spec_file.read_object(ctx.args.file)) if ctx.args.file else {}
    if ctx.args.name is not None:
        body["name"] = ctx.args.name
    if ctx.args.model is not None:
        body["base_model"] = spec_file.canonical_or_same(ctx.args.model)
    return body


def create_command(ctx: Context) -> int:
    response = ctx.client.post(SPECS_PATH, _body(ctx), idempotent=True)
    spec = response.data
    return ctx.emit(
        response, lambda _: ctx.out.success(f"Created behaviour spec {spec['id']} ({spec['name']})")
    )


def update_command(ctx: Context) -> int:
    if ctx.args.file is None and ctx.args.name is None and ctx.args.model is None:
        ctx.args.usage_error("give at least one of -f/--file, -n/--name, --model")
    body = _body(ctx)
    if not body:
        raise CliError.local(f"{ctx.args.file} has no spec fields to update")
    response = ctx.client.put(f"{SPECS_PATH}/{resolve(ctx, ctx.args.id)}", body)
    spec = response.data
    return ctx.emit(
        response, lambda _: ctx.out.success(f"Updated behaviour spec {spec['id']} ({spec['name']})")
    )


def delete_command(ctx: Context) -> int:
    return delete_confirmed(ctx, SPECS_PATH, resolve(ctx, ctx.args.id), NOUN, "and all its runs")
