"""`tt local up` and `tt local status` (PRODUCT.md §14.5)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8787
DEFAULT_DATA_DIR = ".tt-local"


def register(subparsers: Any) -> None:
    local = subparsers.add_parser("local", help="Run the whole product on this machine.")
    commands = local.add_subparsers(dest="local_command", required=True)
    up_parser = commands.add_parser("up", help="Start the local stack in the foreground (Ctrl-C stops it).")
    up_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    up_parser.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR))
    up_parser.add_argument(
        "--no-configure", action="store_true", help="Do not save the URL and key in the CLI config."
    )
    up_parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="Print the stack's log lines here instead of <data-dir>/stack.log.",
    )
    up_parser.set_defaults(handler=up)
    status_parser = commands.add_parser("status", help="Is the local stack running?")
    status_parser.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR))
    status_parser.set_defaults(handler=status)


# How often the main thread wakes while it waits to be stopped (see wait_for).
STOP_POLL_S = 0.2


def stop_signals() -> threading.Event:
    """An event that SIGINT (Ctrl-C) and SIGTERM set."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    return stopping


def wait_for(stopping: threading.Event) -> None:
    """Waits for `stopping`, waking often: the kernel may hand a signal to any of the stack's threads, and
    then Python's handler only runs once the main thread wakes; a wait without a timeout never does."""
    while not stopping.wait(STOP_POLL_S):
        pass


def up(args: argparse.Namespace) -> int:
    from tt_local.stack import LocalStack, PortInUseError

    stack = LocalStack(args.data_dir, port=args.port, verbose=args.verbose)
    stopping = stop_signals()
    try:
        info = stack.start()
    except PortInUseError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    if not args.no_configure:
        from tt_cli.config import save_config

        save_config(base_url=info.base_url, api_key=info.api_key)
    print(f"Tuned Tensor local stack ready at {info.base_url}", flush=True)
    # The key rides in the fragment, which the browser never sends to a server; the page stores it in
    # sessionStorage and removes it from the address bar.
    print(f"Dashboard (signed in with this stack's key): {info.base_url}/#key={info.api_key}", flush=True)
    print(f"API key and URL written to {args.data_dir / 'local.json'}; press Ctrl-C to stop.", flush=True)
    try:
        wait_for(stopping)
    finally:
        print("Stopping the local stack…", flush=True)
        stack.stop()
    return 0


def status(args: argparse.Namespace) -> int:
    import requests

    from tt_local.stack import read_local_info

    info = read_local_info(args.data_dir)
    result: dict[str, Any] = {
        "running": False,
        "base_url": info.base_url if info else None,
        "data_dir": str(args.data_dir.resolve()),
        "version": None,
    }
    if info is not None:
        try:
            response = requests.get(f"{info.base_url}/api/v1/version", timeout=3)
            result["running"] = response.ok
            result["version"] = response.json()["data"]["version"] if response.ok else None
        except (requests.RequestException, ValueError, KeyError):
            pass
    print(json.dumps(result, indent=2))
    return 0 if result["running"] else 1
