"""`tt models base|list|get|download|delete` (PRODUCT.md §11, §14.3); tt_serve adds the serving commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from tt_cli.client import TIMEOUT, ApiResponse, _reason
from tt_cli.commands.datasets import ByteProgress, _storage_error, human_bytes
from tt_cli.commands.resources import delete_confirmed, delete_parser, id_argument, list_page, paging_options
from tt_cli.context import Context
from tt_cli.errors import CONNECTION_ERROR, CliError

MODELS_PATH = "/models"
NOUN = "model"
DOWNLOAD_CHUNK = 1024 * 1024


def register(subparsers: Any) -> Any:
    """Adds the `models` group and returns its subparsers: tt_serve adds its commands to them."""
    models = subparsers.add_parser("models", help="base and fine-tuned models; local serving")
    commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)

    base = commands.add_parser("base", help="list the base models runs can fine-tune")
    base.set_defaults(func=base_command)

    listing = commands.add_parser("list", help="list fine-tuned models, newest first")
    paging_options(listing)
    listing.set_defaults(func=list_command)

    get = commands.add_parser("get", help="show one fine-tuned model")
    id_argument(get, NOUN)
    get.set_defaults(func=get_command)

    delete_parser(commands, NOUN, "and its artifact").set_defaults(func=delete_command)

    download = commands.add_parser(
        "download", help="download a model's artifact (model.tar.gz), or a run's epoch checkpoint"
    )
    id_argument(download, NOUN)
    epoch_option(download)
    download.add_argument("-o", "--output", type=Path, help="file or directory (default: ./<name>.tar.gz)")
    download.add_argument("-f", "--force", action="store_true", help="overwrite an existing file")
    download.set_defaults(func=download_command)

    return commands


def resolve(ctx: Context, value: str) -> str:
    return ctx.client.resolve_id(MODELS_PATH, value, NOUN)


def epoch_option(parser: Any) -> None:
    parser.add_argument(
        "--epoch",
        type=int,
        metavar="N",
        help="the id names a run: its kept checkpoint of epoch N instead (tt runs checkpoints RUN)",
    )


def checkpoint_download(ctx: Context, run_value: str, epoch: int) -> tuple[str, dict[str, Any]]:
    """The run's id and the signed download of its epoch's checkpoint (404 when the epoch is not kept)."""
    from tt_cli.commands import runs

    run_id = runs.resolve(ctx, run_value)
    return run_id, ctx.client.get(f"{runs.RUNS_PATH}/{run_id}/checkpoints/{epoch}/download").data


# -- catalogue, list, get, delete ---------------------------------------------------------------------
def base_command(ctx: Context) -> int:
    from tt_core.models.base_models import CATALOGUE
    from tt_core.schema import LOCAL_DEFAULT_BASE_MODEL

    if ctx.json_mode:
        models = [
            {"id": m.id, "name": m.name, "type": "base", "context_length": m.context_length}
            for m in CATALOGUE
        ]
        ctx.out.json({"data": models})
        return 0
    notes = {LOCAL_DEFAULT_BASE_MODEL: "built locally; local-stack default"}
    rows = [[m.id, f"{m.context_length:,}", notes.get(m.id, "")] for m in CATALOGUE]
    ctx.out.table(rows, ["ID", "CONTEXT", "NOTES"])
    return 0


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


def delete_command(ctx: Context) -> int:
    return delete_confirmed(ctx, MODELS_PATH, resolve(ctx, ctx.args.id), NOUN, "and its artifact")


# -- download -----------------------------------------------------------------------------------------
def model_download(ctx: Context, model_id: str) -> dict[str, Any]:
    data: dict[str, Any] = ctx.client.get(f"{MODELS_PATH}/{model_id}/download").data
    return data


def fetch_artifact(ctx: Context, url: str, dest: Path) -> int:
    """Streams a signed artifact URL to `dest` (through `<dest>.part`); a byte bar on a terminal."""
    show_bar = not ctx.json_mode and bool(getattr(sys.stderr, "isatty", lambda: False)())
    partial = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                raise CliError.local(f"Storage refused the download ({_storage_error(response)})")
            total = int(response.headers.get("Content-Length") or 0)
            bar = ByteProgress(sys.stderr, total, f"Downloading {dest.name}") if show_bar else None
            try:
                with partial.open("wb") as out:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                        if bar:
                            bar.advance(len(chunk))
            finally:
                if bar:
                    bar.close()
        os.replace(partial, dest)
    except (requests.ConnectionError, requests.Timeout) as failure:
        raise CliError(
            0, CONNECTION_ERROR, f"Cannot reach storage to download the model: {_reason(failure)}"
        ) from None
    except OSError as failure:
        raise CliError.local(f"Cannot write {dest}: {failure.strerror or failure}") from None
    finally:
        partial.unlink(missing_ok=True)
    return written


def download_command(ctx: Context) -> int:
    if ctx.args.epoch is not None:
        item_id, download = checkpoint_download(ctx, ctx.args.id, ctx.args.epoch)
        filename, what = str(download["filename"]), f"run {item_id}'s epoch {ctx.args.epoch} checkpoint"
    else:
        item_id = resolve(ctx, ctx.args.id)
        model = ctx.client.get(f"{MODELS_PATH}/{item_id}").data
        filename, what = f"{model.get('name') or item_id}.tar.gz", f"model {item_id}"
        download = model_download(ctx, item_id)
    output: Path | None = ctx.args.output
    dest = Path(filename) if output is None else output / filename if output.is_dir() else output
    if dest.exists() and not ctx.args.force:
        raise CliError.local(f"{dest} already exists", hint="Pass -f/--force to overwrite it.")
    size = fetch_artifact(ctx, download["url"], dest)
    if ctx.json_mode:
        ctx.out.json({"data": {"id": item_id, "path": str(dest.absolute()), "bytes": size}})
    else:
        ctx.out.success(f"Downloaded {what} to {dest} ({human_bytes(size)})")
    return 0
