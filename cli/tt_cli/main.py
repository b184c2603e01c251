"""Entry point of the `tt` console script: argument parsing, dispatch, errors and exit codes (§14).

Each leaf parser sets either `func=handler`, a handler taking a `tt_cli.context.Context` (`ctx.args`
is the argparse namespace), or `handler=handler`, one taking the namespace itself (the local
commands); both return an exit code. Raising `tt_cli.errors.CliError` prints the error and exits 1;
argparse usage errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from tt_cli import __version__, extensions
from tt_cli.commands import auth, datasets, project, runs, specs, tuned_models
from tt_cli.context import Context
from tt_cli.errors import CliError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The global options; on subcommands their default is SUPPRESS so they never reset a value
    given before the subcommand (`tt --json specs list` and `tt specs list --json` both work)."""
    taken = parser._option_string_actions  # options a subcommand defines itself win
    options: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("-k", "--api-key"), {"metavar": "KEY", "help": "API key (else TUNED_TENSOR_API_KEY, else config)"}),
        (("-u", "--base-url"), {"metavar": "URL", "help": "API host (else TUNED_TENSOR_URL, else config)"}),
        (("--json",), {"action": "store_true", "help": "print the JSON response envelope"}),
        (("--no-color",), {"action": "store_true", "help": "no colours (also NO_COLOR)"}),
    ]
    for names, kwargs in options:
        free = [name for name in names if name not in taken]
        if free:
            default = argparse.SUPPRESS if suppress else (False if kwargs.get("action") else None)
            parser.add_argument(*free, default=default, **kwargs)


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share one parser
                yield child
                yield from _subparsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tt",
        description="Tuned Tensor: turn a behaviour spec into a fine-tuned small language model.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"tt {__version__}")
    _add_global_options(parser, suppress=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    auth.register(subparsers)
    project.register(subparsers)
    specs.register(subparsers)
    runs.register(subparsers)
    datasets.register(subparsers)
    extensions.SERVE.register(tuned_models.register(subparsers))
    extensions.ADMIN.register(subparsers)
    extensions.LOCAL.register(subparsers)
    for child in _subparsers(parser):
        _add_global_options(child, suppress=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # -h, -V (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    ctx = Context(args)
    try:
        code = args.func(ctx) if hasattr(args, "func") else args.handler(args)
    except CliError as error:
        ctx.out.error(error)
        return EXIT_ERROR
    except SystemExit as exit_:  # a handler's own usage error (parser.error)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
