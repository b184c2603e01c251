"""`tt auth login|logout|status` (PRODUCT.md §14.3)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from tt_cli import config
from tt_cli.client import ApiClient
from tt_cli.context import Context
from tt_cli.errors import CliError

VERIFY_PATH = "/api-keys"
VERIFY_PARAMS = {"per_page": 1}


def register(subparsers: Any) -> None:
    auth = subparsers.add_parser("auth", help="log in, log out, show the configured credentials")
    commands = auth.add_subparsers(dest="auth_command", metavar="COMMAND", required=True)
    login = commands.add_parser("login", help="verify an API key and save it (with -u, the base URL too)")
    login.add_argument(
        "key", nargs="?", metavar="KEY", help="the API key; prompted for (hidden) when omitted"
    )
    login.set_defaults(func=login_command)
    logout = commands.add_parser("logout", help="remove the saved API key")
    logout.set_defaults(func=logout_command)
    status = commands.add_parser("status", help="show whether the configured key works")
    status.set_defaults(func=status_command)


def _read_key() -> str:
    # A hidden prompt on a terminal; piped input (`echo $KEY | tt auth login`) is read as is.
    if sys.stdin.isatty():
        return getpass.getpass("API key: ")
    return sys.stdin.readline()


def _status(authenticated: bool, key: str | None, base_url: str, source: str | None) -> dict[str, Any]:
    return {
        "authenticated": authenticated,
        "key_prefix": key[:8] if key else None,
        "base_url": base_url,
        "key_source": source,
    }


def login_command(ctx: Context) -> int:
    args: argparse.Namespace = ctx.args
    key = (args.key or getattr(args, "api_key", None) or _read_key()).strip()
    if not key:
        raise CliError.local("No API key given")
    config.check_api_key(key)
    base_url = ctx.settings.base_url
    ApiClient(base_url, key).get(VERIFY_PATH, params=VERIFY_PARAMS)
    flag_url = getattr(args, "base_url", None)
    path = config.save_config(base_url=flag_url, api_key=key)
    if ctx.json_mode:
        ctx.out.json(_status(True, key, base_url, "config"))
    else:
        ctx.out.success(f"Logged in to {base_url} with key {key[:8]}… (saved in {path})")
    return 0


def logout_command(ctx: Context) -> int:
    removed = config.forget_api_key()
    path = str(config.config_path())
    if ctx.json_mode:
        ctx.out.json({"logged_out": removed, "config_path": path})
    elif removed:
        ctx.out.success(f"Removed the API key from {path}")
    else:
        ctx.out.line(f"No API key saved in {path}")
    if config.ENV_API_KEY in os.environ and not ctx.json_mode:
        ctx.out.warning(f"{config.ENV_API_KEY} is still set: commands keep using it")
    return 0


def status_command(ctx: Context) -> int:
    settings = ctx.settings
    error: CliError | None = None
    if settings.api_key is None:
        authenticated = False
    else:
        try:
            ctx.client.get(VERIFY_PATH, params=VERIFY_PARAMS)
            authenticated = True
        except CliError as failure:
            if failure.status not in (401, 403):
                raise  # unreachable server, bad response: an error, not an answer about the key
            authenticated, error = False, failure
    status = _status(authenticated, settings.api_key, settings.base_url, settings.key_source)
    if ctx.json_mode:
        ctx.out.json(status)
    else:
        (ctx.out.success if authenticated else ctx.out.failure)(
            f"{'Authenticated' if authenticated else 'Not authenticated'} to {settings.base_url}"
        )
        ctx.out.fields(
            [
                ("Key prefix", status["key_prefix"]),
                ("Key source", settings.key_source),
                ("Base URL", f"{settings.base_url} ({settings.url_source})"),
            ]
        )
        if error is not None:
            ctx.out.line(f"  [{error.status}] {error.code}: {error.message}")
        elif settings.api_key is None:
            ctx.out.line("  Run `tt auth login` to save a key.")
    return 0 if authenticated else 1
