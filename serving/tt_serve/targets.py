"""Where local serving finds things: the cache, model directories and archives, the spec, the runtime."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tt_serve.archive import extract_archive

ADAPTER_CONFIG = "adapter_config.json"
SPEC_FILE = "tunedtensor.json"
RUNTIME_DIR = "_runtime"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def cache_root(explicit: Path | None = None) -> Path:
    """`--cache-dir`, else `$XDG_CACHE_HOME/tuned-tensor/models`, else `~/.cache/tuned-tensor/models`."""
    if explicit is not None:
        return explicit.expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "tuned-tensor" / "models"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def runtime_python(cache: Path) -> Path:
    return venv_python(cache / RUNTIME_DIR)


def pick_python(explicit: str | None, cache: Path) -> str:
    """`--python`, else the managed runtime when set up, else this interpreter (§15.2)."""
    if explicit:
        return explicit
    managed = runtime_python(cache)
    return str(managed) if managed.exists() else sys.executable


def is_current_interpreter(python: str) -> bool:
    # Not resolved: a virtual environment's python is a symlink to the same binary as the system one.
    return os.path.abspath(python) == os.path.abspath(sys.executable)


def source_roots() -> list[str]:
    """The directories holding tt_serve, tt_core and tt_trainer: the runtime's PYTHONPATH."""
    import tt_core
    import tt_serve
    import tt_trainer

    roots: list[str] = []
    for package in (tt_serve, tt_core, tt_trainer):
        root = str(Path(next(iter(package.__path__))).resolve().parent)
        if root not in roots:
            roots.append(root)
    return roots


def runtime_environment(python: str) -> dict[str, str]:
    """The environment of a runtime process: this one's, plus our packages on its path when it is
    another interpreter (the managed runtime has only torch and friends installed)."""
    env = dict(os.environ)
    if not is_current_interpreter(python):
        paths = [*source_roots(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def find_model_dir(path: Path) -> Path | None:
    """The artifact directory: `path` itself or its `model/` subdirectory (the one with the adapter)."""
    for candidate in (path, path / "model"):
        if (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    return None


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ModelTarget:
    model_dir: Path
    name: str
    kind: str  # directory | archive | model | checkpoint
    model_id: str | None = None
    archive: Path | None = None


def archive_target_dir(archive: Path, cache: Path) -> Path:
    """`<cache>/local-<name>-<first 12 hex of sha256(absolute path)>/model` (§15.2)."""
    digest = hashlib.sha256(str(archive.absolute()).encode()).hexdigest()[:12]
    return cache / f"local-{archive_stem(archive)}-{digest}" / "model"


def extracted_model(archive: Path, target: Path, *, force: bool) -> Path:
    """The artifact inside `target`, extracting the archive first unless it already is (or `force`)."""
    found = None if force else find_model_dir(target)
    if found is None:
        extract_archive(archive, target)
        found = find_model_dir(target)
    if found is None:
        raise FileNotFoundError(f"{archive} holds no {ADAPTER_CONFIG}: it is not a model artifact.")
    return found


def resolve_spec(spec: Path | None, no_spec_prompt: bool, model_dir: Path | None) -> Path | None:
    """`--spec`, else the artifact's tunedtensor.json, else ./tunedtensor.json; none with --no-spec-prompt."""
    if no_spec_prompt:
        return None
    if spec is not None:
        if not spec.is_file():
            raise FileNotFoundError(f"--spec {spec}: no such file.")
        return spec.absolute()
    for candidate in ([model_dir / SPEC_FILE] if model_dir is not None else []) + [Path.cwd() / SPEC_FILE]:
        if candidate.is_file():
            return candidate.absolute()
    return None
