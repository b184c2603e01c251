"""Bytecode for the Lambda layers, compiled by an interpreter of the runtime's own Python version.

Lambda mounts a layer read-only at /opt, so a module without a matching .pyc is compiled again on every
cold start (about 1.3 s for the API handler's imports). A .pyc is only used by the interpreter version that
wrote it, and CDK zips assets with every file dated 1980, so timestamp-checked .pyc files would never match
their sources: the layers carry `unchecked-hash` bytecode (PEP 552), valid because a layer never changes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

# Where Lambda puts a layer's `python/` directory and the function's own code: the paths tracebacks name.
LAYER_PYTHON_PATH = "/opt/python"
FUNCTION_CODE_PATH = "/var/task"
COMPILEALL_OPTIONS = ("-q", "-j", "0", "--invalidation-mode", "unchecked-hash")


def runtime_version(runtime_name: str) -> str:
    """`python3.13` → `3.13`."""
    if not runtime_name.startswith("python"):
        raise ValueError(f"not a Python Lambda runtime: {runtime_name}")
    return runtime_name.removeprefix("python")


def _version_of(python: str) -> str | None:
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _uv_python(version: str) -> str | None:
    """An interpreter `uv python install <version>` put on this machine, if uv is here."""
    uv = shutil.which("uv")
    if uv is None:
        return None
    result = subprocess.run([uv, "python", "find", version], capture_output=True, text=True, timeout=60)
    found = result.stdout.strip() if result.returncode == 0 else ""
    return found or None


def find_runtime_python(version: str) -> str | None:
    """A local interpreter of exactly `version` (this one, `python<version>` on PATH, or uv's), else None."""
    for candidate in (sys.executable, shutil.which(f"python{version}"), _uv_python(version)):
        if candidate and _version_of(candidate) == version:
            return candidate
    return None


def compile_command(python: str, directory: str, deployed_as: str = LAYER_PYTHON_PATH) -> list[str]:
    """compileall over a directory, naming its files by the path they have once deployed."""
    return [python, "-m", "compileall", *COMPILEALL_OPTIONS, "-s", directory, "-p", deployed_as, directory]


def shell_compile_command(directory: str, deployed_as: str = LAYER_PYTHON_PATH) -> str:
    """The same compile in the runtime's bundling image, whose `python` is the runtime's."""
    options = " ".join(COMPILEALL_OPTIONS)
    return f"python -m compileall {options} -s {directory} -p {deployed_as} {directory}"


def docker_engine_available() -> bool:
    """Whether CDK's Docker bundling could run here (a client alone is not enough)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def bundling_compiler(version: str) -> str | Literal[False] | None:
    """The interpreter that compiles bundled code here; False = let CDK bundle in Docker; None = no bytecode.

    Only the runtime's own Python version can write bytecode the runtime reads. Without such an interpreter
    the runtime's bundling image has one (a machine that deploys has Docker for the trainer image anyway);
    with neither, synth still works but warns: that machine's bundles would compile on every cold start.
    """
    python = find_runtime_python(version)
    if python is not None:
        return python
    if docker_engine_available():
        return False
    print(
        f"warning: no Python {version} and no Docker engine here: Lambda code is bundled without bytecode "
        f"(install python{version}, `uv python install {version}` or a Docker engine before deploying)",
        file=sys.stderr,
    )
    return None


def compile_tree(python: str | None, directory: Path, deployed_as: str = LAYER_PYTHON_PATH) -> None:
    """Compile directory with python (see bundling_compiler); None leaves it without bytecode."""
    if python is not None:
        subprocess.run(compile_command(python, str(directory), deployed_as), check=True)
