"""Layer bytecode: written by the runtime's Python version as unchecked-hash .pyc, or by Docker bundling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bytecode
from infra.constructs import shared_layers

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
# PEP 552: the flags word after the magic number; 0b01 = hash-based, source not checked.
UNCHECKED_HASH = 0b01


def _layer_source(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    (source / "pkg" / "__pycache__").mkdir()
    (source / "pkg" / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"stale")
    return source


def test_the_runtime_version_comes_from_the_runtime_name() -> None:
    assert bytecode.runtime_version("python3.13") == "3.13"
    assert bytecode.runtime_version(shared_layers.RUNTIME.name) == shared_layers.PYTHON_VERSION
    with pytest.raises(ValueError):
        bytecode.runtime_version("nodejs22.x")


def test_an_interpreter_of_the_runtimes_version_compiles_unchecked_hash_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime version's interpreter writes .pyc files that stay valid in a zip dated 1980."""
    monkeypatch.setattr(shared_layers, "PYTHON_VERSION", HERE)
    output = tmp_path / "asset"
    assert shared_layers.CopyAndCompile(_layer_source(tmp_path)).try_bundle(str(output))
    tag = sys.implementation.cache_tag
    pyc = output / "python" / "pkg" / "__pycache__" / f"__init__.{tag}.pyc"
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == UNCHECKED_HASH
    assert not (output / "python" / "pkg" / "__pycache__" / "stale.cpython-311.pyc").exists()
    # Sources dated like CDK's asset zip (1980), and the source changed after compiling: the interpreter
    # still loads the bytecode (42), so it never compiles the layer again on a read-only /opt.
    (output / "python" / "pkg" / "__init__.py").write_text("VALUE = 7\n")
    for path in (output / "python").rglob("*"):
        os.utime(path, (315532800, 315532800))
    probe = "import pkg; print(pkg.__spec__.cached, pkg.VALUE)"
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True, text=True, check=True, cwd=output / "python",
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(output / "python")},
    )  # fmt: skip
    assert result.stdout.split()[1] == "42"
    # Tracebacks name the file where Lambda mounts the layer.
    code = pyc.read_bytes()[16:]
    assert b"/opt/python/pkg/__init__.py" in code


def test_without_such_an_interpreter_docker_bundling_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_layers, "PYTHON_VERSION", "3.99")
    monkeypatch.setattr(bytecode, "docker_engine_available", lambda: True)
    output = tmp_path / "asset"
    assert not shared_layers.CopyAndCompile(_layer_source(tmp_path)).try_bundle(str(output))
    assert not shared_layers.PipInstallForLambda(tmp_path).try_bundle(str(output))
    assert not output.exists()


def test_with_neither_the_layer_is_bundled_without_bytecode_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shared_layers, "PYTHON_VERSION", "3.99")
    monkeypatch.setattr(bytecode, "docker_engine_available", lambda: False)
    output = tmp_path / "asset"
    assert shared_layers.CopyAndCompile(_layer_source(tmp_path)).try_bundle(str(output))
    assert not list(output.rglob("*.pyc"))
    assert "without bytecode" in capsys.readouterr().err


def test_the_docker_fallback_compiles_the_same_way() -> None:
    command = bytecode.shell_compile_command("/asset-output/python")
    assert command.startswith("python -m compileall ")
    assert "--invalidation-mode unchecked-hash" in command
    assert "-s /asset-output/python -p /opt/python /asset-output/python" in command


def test_find_runtime_python_checks_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bytecode.find_runtime_python(HERE) == sys.executable
    monkeypatch.setattr(bytecode.shutil, "which", lambda name: None)
    assert bytecode.find_runtime_python("3.99") is None
