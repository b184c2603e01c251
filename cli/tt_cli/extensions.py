"""Commands that need an extra: `tt local`, `tt models serve|export|setup-runtime`, `tt admin`.

The client alone installs none of torch, moto or the CDK: each extension's commands are registered
from its package when the extra's packages are there, and otherwise answer with the one line that says
which extra to install (exit 2, a usage error: the command exists but this installation cannot run it).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tt_cli.context import Context

EXIT_MISSING_EXTRA = 2


@dataclass(frozen=True)
class Extension:
    extra: str  # pip install 'tuned-tensor[<extra>]'
    module: str  # its `register(subparsers)` adds the commands
    requires: tuple[str, ...]  # top-level modules the extra installs
    commands: tuple[str, ...]  # the names `register` adds
    parent: str  # the command they are added under: "tt", "tt models"

    def installed(self) -> bool:
        # find_spec looks without importing: building the parser stays as fast as before.
        return all(importlib.util.find_spec(name) is not None for name in self.requires)

    def register(self, subparsers: Any) -> None:
        if self.installed():
            importlib.import_module(self.module).register(subparsers)
            return
        for name in self.commands:
            hint = self._hint(name)
            parser = subparsers.add_parser(
                name,
                help=f"(needs the '{self.extra}' extra)",
                description=hint,
                formatter_class=argparse.RawDescriptionHelpFormatter,  # the pip command on one line
            )
            parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            parser.set_defaults(func=self._missing(hint))

    def _hint(self, name: str) -> str:
        return (
            f"`{self.parent} {name}` needs the '{self.extra}' extra: pip install 'tuned-tensor[{self.extra}]'"
        )

    @staticmethod
    def _missing(hint: str) -> Callable[[Context], int]:
        def command(_ctx: Context) -> int:
            print(f"tt: {hint}", file=sys.stderr)
            return EXIT_MISSING_EXTRA

        return command


LOCAL = Extension(
    extra="local",
    module="tt_local.command",
    requires=("moto", "aws_cdk", "aws_lambda_powertools", "torch"),
    commands=("local",),
    parent="tt",
)
SERVE = Extension(
    extra="serve",
    module="tt_serve.command",
    requires=("torch", "transformers", "peft"),
    commands=("setup-runtime", "serve", "export"),
    parent="tt models",
)
# The operator's path straight to AWS creates the account with the API's own service (boto3, Powertools).
ADMIN = Extension(
    extra="aws",
    module="tt_cli.commands.admin",
    requires=("boto3", "aws_lambda_powertools"),
    commands=("admin",),
    parent="tt",
)
