"""`tt models setup-runtime` (PRODUCT.md §15.1): a virtual environment with the inference packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tt_serve.targets import RUNTIME_DIR, venv_python

# The versions the project trains and tests with (pyproject's `trainer` extra), so a served model runs on
# the code that trained it. jinja2 renders the chat templates.
RUNTIME_PACKAGES = (
    "torch==2.13.0",
    "transformers==5.23.0",
    "peft==0.21.2",
    "accelerate==1.15.0",
    "safetensors==0.8.0",
    "pillow",
    "jinja2",
)
IMPORTS = ("torch", "transformers", "peft", "accelerate", "safetensors", "PIL")
CHECK_SCRIPT = "import " + ", ".join(IMPORTS)
CANDIDATES = ("python3.13", "python3.12", "python3.11", "python3.10", "python3")
SUPPORTED = ((3, 10), (3, 13))


class SetupError(Exception):
    pass


def imports_ok(python: str) -> bool:
    try:
        done = subprocess.run([python, "-c", CHECK_SCRIPT], capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def current_imports_ok() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in IMPORTS)


def python_version(python: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = done.stdout.split()
    return (int(parts[0]), int(parts[1])) if done.returncode == 0 and len(parts) == 2 else None


def supported(version: tuple[int, int] | None) -> bool:
    return version is not None and SUPPORTED[0] <= version <= SUPPORTED[1]


def find_python(explicit: str | None) -> str:
    """`--python` (must be 3.10–3.13), else the first of python3.13 … python3.10, python3 that is."""
    if explicit:
        version = python_version(explicit)
        if not supported(version):
            found = "not runnable" if version is None else f"Python {version[0]}.{version[1]}"
            raise SetupError(f"--python {explicit} is {found}; the runtime needs Python 3.10–3.13.")
        return explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path and supported(python_version(path)):
            return path
    raise SetupError("No Python 3.10–3.13 found on PATH: pass --python PATH.")


@dataclass(frozen=True)
class Plan:
    venv: Path
    commands: list[list[str]]


def plan(python: str, cache: Path) -> Plan:
    venv = cache / RUNTIME_DIR
    runtime = str(venv_python(venv))
    return Plan(
        venv,
        [
            [python, "-m", "venv", str(venv)],
            [runtime, "-m", "pip", "install", "--upgrade", "pip"],
            [runtime, "-m", "pip", "install", *RUNTIME_PACKAGES],
            [runtime, "-c", CHECK_SCRIPT],
        ],
    )


def execute(steps: Plan, *, force: bool) -> None:
    if force and steps.venv.exists():
        shutil.rmtree(steps.venv)
    steps.venv.parent.mkdir(parents=True, exist_ok=True)
    for command in steps.commands:
        print("$ " + " ".join(command), file=sys.stderr, flush=True)
        if subprocess.run(command).returncode != 0:
            raise SetupError(f"`{' '.join(command)}` failed; nothing else was run.")
