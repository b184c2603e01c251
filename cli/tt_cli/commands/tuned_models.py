"""`tt models list|get` (PRODUCT.md §11, §14.3); the group other `models` subcommands join."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tt_cli.client import ApiResponse
from tt_cli.commands.resources import id_argument, list_page, paging_options
from tt_cli.context import Context

MODELS_PATH = "/models"
NOUN = "model"


def register(subparsers: Any) -> Any:
    """Adds the `models` group and returns its subparsers, so more subcommands can be added to it."""
    models = subparsers.add_parser("models", help="fine-tuned models")
    commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list fine-tuned models, newest first")
    paging_options(listing)
    listing.set_defaults(func=list_command)

    get = commands.add_parser("get", help="show one fine-tuned model")
    id_argument(get, NOUN)
    get.set_defaults(func=get_command)
    return commands


def resolve(ctx: Context, value: str) -> str:
    return ctx.client.resolve_id(MODELS_PATH, value, NOUN)


def list_command(ctx: Context) -> int:
    response = list_page(ctx, MODELS_PATH)

    def render(response: ApiResponse) -> None:
        rows = [
            [item["id"], item.get("name"), item.get("base_model"), item.get("run_id"), item.get("created_at")]
            for item in response.data or []
        ]
        headers = ["ID", "NAME", "BASE MODEL", "RUN", "CREATED"]
        ctx.out.page(rows, headers, response.meta, empty="No models.")

    return ctx.emit(response, render)


def render_model(ctx: Context, model: Mapping[str, Any]) -> None:
    ctx.out.fields(
        [
            ("ID", model.get("id")),
            ("Name", model.get("name")),
            ("Description", model.get("description")),
            ("Base model", model.get("base_model")),
            ("Run", model.get("run_id")),
            ("Spec", model.get("behavior_spec_id")),
            ("Training job", model.get("fine_tune_job_id")),
            ("Provider", model.get("provider")),
            ("Artifact", model.get("provider_model_id")),
            ("Created", model.get("created_at")),
        ]
    )


def get_command(ctx: Context) -> int:
    response = ctx.client.get(f"{MODELS_PATH}/{resolve(ctx, ctx.args.id)}")
    return ctx.emit(response, lambda r: render_model(ctx, r.data))
