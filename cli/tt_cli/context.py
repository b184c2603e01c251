"""What a command handler receives: parsed arguments, the printer, settings and a lazy API client."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tt_cli import config
from tt_cli.client import ApiClient, ApiResponse
from tt_cli.output import Output


@dataclass
class Context:
    args: argparse.Namespace
    out: Output = field(init=False)

    def __post_init__(self) -> None:
        self.out = Output(json_mode=self.json_mode, no_color=bool(getattr(self.args, "no_color", False)))

    @property
    def json_mode(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @cached_property
    def settings(self) -> config.Settings:
        return config.resolve(getattr(self.args, "api_key", None), getattr(self.args, "base_url", None))

    @cached_property
    def client(self) -> ApiClient:
        return ApiClient(self.settings.base_url, self.settings.api_key)

    def emit(self, response: ApiResponse, render: Callable[[ApiResponse], Any]) -> int:
        """`--json`: the envelope exactly as received; text: the command's own rendering."""
        if self.json_mode:
            self.out.json(response.envelope)
        else:
            render(response)
        return 0

    def confirm(self, question: str) -> bool:
        """Ask on a terminal only (PRODUCT.md §14.2: deletes confirm on a TTY unless -y)."""
        if getattr(self.args, "yes", False) or not sys.stdin.isatty():
            return True
        print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")
