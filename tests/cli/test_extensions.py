"""The light client: commands of a missing extra answer with the one line naming it; the client imports
none of torch, transformers, moto, the CDK or the AWS SDK."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tt_cli import extensions

HEAVY = ("torch", "transformers", "peft", "moto", "aws_cdk", "boto3", "botocore", "anthropic")


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Makes find_spec report these modules as not installed."""

    def hide(*names: str) -> None:
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a)
        )

    return hide


@pytest.mark.parametrize(
    ("missing", "argv", "line"),
    [
        ("moto", ["local", "up", "--port", "9"], "`tt local` needs the 'local' extra"),
        ("torch", ["models", "serve", "abc", "--managed"], "`tt models serve` needs the 'serve' extra"),
        (
            "peft",
            ["models", "export", "abc", "--merged", "out"],
            "`tt models export` needs the 'serve' extra",
        ),
        ("transformers", ["models", "setup-runtime"], "`tt models setup-runtime` needs the 'serve' extra"),
        ("boto3", ["admin", "create-account", "--name", "x"], "`tt admin` needs the 'aws' extra"),
    ],
)
def test_a_command_of_a_missing_extra_names_it_and_exits_2(
    run: Any, without: Any, missing: str, argv: list[str], line: str
) -> None:
    without(missing)
    extra = line.split("'")[1]
    hint = f"{line}: pip install 'tuned-tensor[{extra}]'"
    result = run(*argv)
    assert (result.code, result.out, result.err) == (2, "", f"tt: {hint}\n")
    command = argv[:2] if argv[0] == "models" else argv[:1]
    assert hint in run(*command, "--help").out.splitlines()  # its help says so too


def test_the_commands_of_an_installed_extra_are_registered(run: Any) -> None:
    assert all(extension.installed() for extension in (extensions.LOCAL, extensions.SERVE, extensions.ADMIN))
    assert "needs the" not in run("--help").out + run("models", "--help").out
    assert "--data-dir" in run("local", "up", "--help").out
    assert "--managed" in run("models", "serve", "--help").out


def test_the_client_imports_no_heavy_package() -> None:
    """Building every parser and linting a spec (spec lint, models, the schema) loads no extra's package."""
    spec = Path(__file__).resolve().parents[2] / "examples" / "customer-support" / "tunedtensor.json"
    script = (
        "import sys\n"
        "from tt_cli.main import main\n"
        f"assert main(['eval', '--file', {str(spec)!r}]) == 0\n"
        f"heavy = [name for name in {HEAVY!r} if name in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
