"""What every resource command shares: paging options, ID arguments, list pages and confirmed deletes."""

from __future__ import annotations

from typing import Any

from tt_cli.client import ApiResponse
from tt_cli.context import Context
from tt_cli.errors import CliError


def paging_options(parser: Any) -> None:
    parser.add_argument("-p", "--page", type=int, default=1, help="page number (default: %(default)s)")
    parser.add_argument(
        "--per-page", type=int, default=20, help="items per page, 1–100 (default: %(default)s)"
    )


def id_argument(parser: Any, noun: str) -> None:
    parser.add_argument("id", metavar="ID", help=f"{noun} id or a unique prefix (≥ 4 characters)")


def delete_parser(commands: Any, noun: str, consequence: str) -> Any:
    """`delete ID [-y]`; the caller sets its handler."""
    delete = commands.add_parser("delete", help=f"delete a {noun} {consequence}")
    id_argument(delete, noun)
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return delete


def list_page(ctx: Context, path: str, **params: Any) -> ApiResponse:
    """One page as the paging options ask; `params` are extra query parameters (`view`)."""
    return ctx.client.get(path, params={"page": ctx.args.page, "per_page": ctx.args.per_page, **params})


def delete_confirmed(ctx: Context, path: str, resource_id: str, noun: str, consequence: str) -> int:
    """Deletes after a confirmation on a terminal (unless -y); declining deletes nothing and exits 1."""
    if not ctx.confirm(f"Delete {noun} {resource_id} {consequence}?"):
        raise CliError.local("Cancelled; nothing was deleted")
    response = ctx.client.delete(f"{path}/{resource_id}")
    return ctx.emit(response, lambda _: ctx.out.success(f"Deleted {noun} {resource_id}"))
