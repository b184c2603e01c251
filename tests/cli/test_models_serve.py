"""`tt models base|download|delete|setup-runtime|serve|export` against a scripted fake API and storage."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_models_cli import MODEL_IDS, MODELS
from tests.cli.test_runs import FakeApi, page, serve_fake

MODEL = MODELS[0]  # id 7e570000-…, name Llama-3.2-3B-Instruct-ft-7e570000


def _artifact_bytes(*extra: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [("adapter_config.json", b'{"base_model_name_or_path": "tunedtensor/tiny-chat"}'),
                           ("tunedtensor.json", b'{"system_prompt": "Be kind."}'), *extra]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Storage:
    """Serves one object at /object (what a signed URL points at); counts the downloads."""

    def __init__(self) -> None:
        self.body = _artifact_bytes()
        self.status = 200
        self.downloads = 0
        self.url = ""


@pytest.fixture
def storage() -> Iterator[Storage]:
    state = Storage()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.downloads += 1
            body = state.body if state.status == 200 else b"<Error><Code>AccessDenied</Code></Error>"
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/object?X-Amz-Signature=abc"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, storage: Storage) -> Iterator[FakeApi]:
    with serve_fake(monkeypatch) as api:
        api.on("GET", "/models", page(MODELS, per_page=100))
        api.on("GET", f"/models/{MODEL['id']}", {"data": MODEL})
        download = {"url": storage.url, "filename": "model.tar.gz", "expires_at": "2026-03-06T09:17:10.000Z"}
        api.on("GET", f"/models/{MODEL['id']}/download", {"data": download})
        yield api


def test_base_lists_the_catalogue_without_the_api(run: Any) -> None:
    result = run("models", "base")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "CONTEXT", "NOTES"] and len(lines) == 10
    assert lines[1].split() == ["google/gemma-4-E2B-it", "128,000"]
    assert lines[-1].split()[:2] == ["tunedtensor/tiny-chat", "2,048"] and "local-stack default" in lines[-1]
    models = run("models", "base", "--json").json["data"]
    assert models[3] == {
        "id": "Qwen/Qwen3.5-4B",
        "name": "Qwen3.5-4B",
        "type": "base",
        "context_length": 262_144,
    }


def test_download_writes_the_archive_and_never_overwrites_without_force(
    run: Any, fake: FakeApi, storage: Storage, tmp_path: Path
) -> None:
    result = run("models", "download", "7e57")
    assert result.code == 0, result.err
    target = tmp_path / f"{MODEL['name']}.tar.gz"  # the tests run in tmp_path
    assert target.read_bytes() == storage.body and "Downloaded model" in result.out
    assert not list(tmp_path.glob("*.part"))

    refused = run("models", "download", MODEL["id"])
    assert refused.code == 1 and "already exists" in refused.err and "-f/--force" in refused.err
    assert storage.downloads == 1
    storage.body = _artifact_bytes(("extra", b"new"))
    assert run("models", "download", MODEL["id"], "-f").code == 0
    assert target.read_bytes() == storage.body

    folder = tmp_path / "models"
    folder.mkdir()
    as_json = run("--json", "models", "download", MODEL["id"], "-o", str(folder))
    assert as_json.json == {"data": {"id": MODEL["id"], "path": str(folder / target.name),
                                     "bytes": len(storage.body)}}  # fmt: skip
    named = run("models", "download", MODEL["id"], "-o", str(tmp_path / "mine.tgz"))
    assert named.code == 0 and (tmp_path / "mine.tgz").is_file()


def test_download_reports_a_storage_refusal(
    run: Any, fake: FakeApi, storage: Storage, tmp_path: Path
) -> None:
    storage.status = 403
    result = run("models", "download", MODEL["id"])
    assert result.code == 1 and "HTTP 403 AccessDenied" in result.err
    assert not list(tmp_path.glob("*.tar.gz*"))


def test_download_shows_a_byte_progress_bar_on_a_terminal(
    run: Any, fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert run("models", "download", MODEL["id"]).code == 0
    assert "Downloading" in terminal.getvalue() and "100%" in terminal.getvalue()


def test_delete_confirms_then_deletes(run: Any, fake: FakeApi) -> None:
    fake.on("DELETE", f"/models/{MODEL['id']}", (204, None))
    result = run("models", "delete", "7e57", "-y")
    assert result.code == 0 and f"Deleted model {MODEL['id']}" in result.out
    assert len(fake.seen("DELETE", f"/models/{MODEL['id']}")) == 1
    fake.on(
        "DELETE", f"/models/{MODEL_IDS[1]}", (409, {"error": {"code": "model_in_use", "message": "busy"}})
    )
    refused = run("models", "delete", MODEL_IDS[1], "-y")
    assert refused.code == 1 and "[409] model_in_use" in refused.err


# -- serve --------------------------------------------------------------------------------------------
def _printed(run: Any, *argv: str) -> dict[str, Any]:
    result = run("--json", "models", "serve", *argv, "--print-command")
    assert result.code == 0, result.err + result.out
    return dict(result.json)


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_serve_a_directory_finds_the_artifact_and_its_spec(run: Any, tmp_path: Path) -> None:
    model = tmp_path / "support" / "model"
    model.mkdir(parents=True)
    (model / "adapter_config.json").write_text("{}")
    (model / "tunedtensor.json").write_text('{"system_prompt": "Be kind."}')
    printed = _printed(run, str(tmp_path / "support"), "--port", "9001", "--temperature", "0")
    args = printed["args"]
    assert printed["python"] == sys.executable and args[:2] == ["-m", "tt_serve.server"]
    assert _flag(args, "--model-dir") == str(model) and _flag(args, "--name") == "support"
    assert _flag(args, "--spec") == str(model / "tunedtensor.json")
    assert (_flag(args, "--port"), _flag(args, "--temperature"), _flag(args, "--max-tokens")) == (
        "9001",
        "0.0",
        "512",
    )
    assert printed["settings"]["json_repair_attempts"] == 1 and printed["settings"]["managed"] is False
    assert printed["pythonpath"] is None  # this interpreter imports our packages already

    assert _flag(_printed(run, str(model), "--no-spec-prompt")["args"], "--spec") is None
    (model / "tunedtensor.json").unlink()
    (tmp_path / "tunedtensor.json").write_text('{"system_prompt": "From the working directory."}')
    assert _flag(_printed(run, str(model))["args"], "--spec") == str(tmp_path / "tunedtensor.json")
    other = tmp_path / "other.json"
    other.write_text("{}")
    assert _flag(_printed(run, str(model), "--spec", str(other))["args"], "--spec") == str(other)

    text = run("models", "serve", str(model), "--print-command")
    assert text.code == 0 and "Interpreter:" in text.out and "tt_serve.server" in text.out
    assert "spec:" in text.out and "port: 8000" in text.out


def test_serve_an_archive_names_its_cache_directory(run: Any, tmp_path: Path) -> None:
    archive = tmp_path / "bot.tar.gz"
    archive.write_bytes(_artifact_bytes())
    cache = tmp_path / "cache"
    printed = _printed(run, str(archive), "--cache-dir", str(cache))
    digest = hashlib.sha256(str(archive.absolute()).encode()).hexdigest()[:12]
    assert _flag(printed["args"], "--model-dir") == str(cache / f"local-bot-{digest}" / "model")
    assert _flag(printed["args"], "--name") == "bot"
    assert not cache.exists()  # --print-command does nothing


def test_serve_a_model_id_uses_the_models_cache_directory(run: Any, fake: FakeApi, tmp_path: Path) -> None:
    printed = _printed(
        run, "7e57", "--cache-dir", str(tmp_path / "c"), "--managed", "--python", "/opt/py/bin/python"
    )
    assert printed["python"] == "/opt/py/bin/python"
    assert _flag(printed["args"], "--model-dir") == str(tmp_path / "c" / MODEL["id"] / "model")
    assert _flag(printed["args"], "--name") == MODEL["name"]
    assert "--port" not in printed["args"]  # managed: the model server gets a random loopback port
    assert printed["pythonpath"] and "serving" in printed["pythonpath"]  # another interpreter needs our code
    assert printed["settings"]["managed"] is True and printed["settings"]["idle_timeout"] == 300


def test_serve_downloads_and_extracts_a_model_id_then_reuses_it(
    run: Any, fake: FakeApi, storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[list[str]] = []
    monkeypatch.setattr(
        "tt_serve.command._run_module", lambda python, module, args: launched.append(args) or 0
    )
    cache = tmp_path / "cache"
    assert run("models", "serve", MODEL["id"], "--cache-dir", str(cache)).code == 0
    model_dir = cache / MODEL["id"] / "model"
    assert (model_dir / "adapter_config.json").is_file() and (cache / MODEL["id"] / "model.tar.gz").is_file()
    assert _flag(launched[0], "--spec") == str(model_dir / "tunedtensor.json")
    assert json.loads((cache / MODEL["id"] / "model.json").read_text())["name"] == MODEL["name"]
    seen = len(fake.requests)
    assert run("models", "serve", MODEL["id"], "--cache-dir", str(cache)).code == 0
    assert storage.downloads == 1 and len(fake.requests) == seen  # in the cache: no API call, works offline
    assert _flag(launched[1], "--name") == MODEL["name"]
    assert run("models", "serve", "7e57", "--cache-dir", str(cache)).code == 0  # a prefix asks the API
    assert storage.downloads == 1 and len(fake.requests) > seen
    assert run("models", "serve", MODEL["id"], "--cache-dir", str(cache), "--force-download").code == 0
    assert storage.downloads == 2


def test_serve_refuses_unsafe_archives_and_bad_targets_and_flags(run: Any, tmp_path: Path) -> None:
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        tar.addfile(info, io.BytesIO(b""))
    (tmp_path / "evil.tgz").write_bytes(evil.getvalue())
    refused = run("models", "serve", str(tmp_path / "evil.tgz"), "--cache-dir", str(tmp_path / "cache"))
    assert refused.code == 1 and "escapes the target" in refused.err
    assert not (tmp_path / "escape.txt").exists()

    (tmp_path / "empty").mkdir()
    assert "holds no adapter_config.json" in run("models", "serve", str(tmp_path / "empty")).err
    assert "neither a model directory" in run("models", "serve", "./missing.tar.gz").err
    model = tmp_path / "m"
    model.mkdir()
    (model / "adapter_config.json").write_text("{}")
    for flags, message in [
        (["--temperature", "3"], "--temperature"),
        (["--max-tokens", "0"], "--max-tokens"),
        (["--json-repair-attempts", "-1"], "--json-repair-attempts"),
        (["--json-schema", str(tmp_path / "nope.json")], "--json-schema"),
        (["--spec", str(tmp_path / "nope.json")], "--spec"),
    ]:
        result = run("models", "serve", str(model), *flags, "--print-command")
        assert result.code == 1 and message in result.err, (flags, result.err)
    assert run("models", "serve", str(model), "--spec", "a.json", "--no-spec-prompt").code == 2


# -- setup-runtime and export -------------------------------------------------------------------------
def test_setup_runtime_reuses_a_ready_interpreter_or_plans_a_venv(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_serve import setup_runtime

    monkeypatch.setattr(setup_runtime, "current_imports_ok", lambda: True)
    reused = run("--json", "models", "setup-runtime", "--cache-dir", str(tmp_path))
    assert reused.json == {"python": sys.executable, "created": False, "reused": True}

    flags = ["--cache-dir", str(tmp_path), "--python", sys.executable, "--print-command"]
    planned = run("--json", "models", "setup-runtime", *flags)
    assert planned.code == 0, planned.err
    venv = tmp_path / "_runtime"
    commands = planned.json["commands"]
    assert planned.json["venv"] == str(venv) and commands[0] == [sys.executable, "-m", "venv", str(venv)]
    assert commands[2][:4] == [str(venv / "bin" / "python"), "-m", "pip", "install"]
    assert {"torch==2.13.0", "transformers==5.23.0", "peft==0.21.2", "pillow"} <= set(commands[2])
    assert commands[-1][-1] == "import torch, transformers, peft, accelerate, safetensors, PIL"
    assert not venv.exists()

    too_old = tmp_path / "python2"
    too_old.write_text("#!/bin/sh\necho 2 7\n")
    too_old.chmod(0o755)
    refused = run("models", "setup-runtime", "--python", str(too_old), "--cache-dir", str(tmp_path))
    assert refused.code == 1 and "Python 2.7" in refused.err and "3.10–3.13" in refused.err


def test_the_runtime_pins_are_the_trainers() -> None:
    import tomllib

    from tt_serve.setup_runtime import RUNTIME_PACKAGES

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    trainer = set(pyproject["project"]["optional-dependencies"]["trainer"])
    pinned = {p for p in RUNTIME_PACKAGES if "==" in p}
    assert pinned <= trainer


def test_export_refuses_a_non_empty_directory_without_force(run: Any, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run("models", "export", str(tmp_path), "--merged", str(out))
    assert result.code == 1 and "not empty" in result.err and (out / "keep.txt").read_text() == "mine"


def test_the_models_group_lists_every_command(run: Any) -> None:
    result = run("models", "--help")
    assert result.code == 0
    for command in ("base", "list", "get", "delete", "download", "setup-runtime", "serve", "export"):
        assert command in result.out
    assert json.loads(json.dumps(MODELS))  # the shared canned objects stay JSON


# -- a run's epoch checkpoints (§9.10) ----------------------------------------------------------------
RUN_ID = "abcd1111-0000-4000-8000-000000000001"


def _checkpoint_download(fake: FakeApi, storage: Storage, epoch: int) -> None:
    download = {
        "url": storage.url,
        "filename": f"checkpoint-epoch-{epoch}.tar.gz",
        "expires_at": "2026-03-06T09:17:10.000Z",
    }
    fake.on("GET", f"/runs/{RUN_ID}/checkpoints/{epoch}/download", {"data": download})


def test_download_epoch_fetches_the_runs_checkpoint(
    run: Any, fake: FakeApi, storage: Storage, tmp_path: Path
) -> None:
    _checkpoint_download(fake, storage, 3)
    result = run("models", "download", RUN_ID, "--epoch", "3")
    assert result.code == 0, result.err
    assert (tmp_path / "checkpoint-epoch-3.tar.gz").read_bytes() == storage.body
    assert f"run {RUN_ID}'s epoch 3 checkpoint" in result.out
    missing = run("models", "download", RUN_ID, "--epoch", "1")  # not kept: the API's 404
    assert missing.code != 0 and "not found" in missing.err.lower()


def test_serve_epoch_downloads_the_checkpoint_once_and_names_it(
    run: Any, fake: FakeApi, storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _checkpoint_download(fake, storage, 4)
    launched: list[list[str]] = []
    monkeypatch.setattr(
        "tt_serve.command._run_module", lambda python, module, args: launched.append(args) or 0
    )
    cache = tmp_path / "cache"
    assert run("models", "serve", RUN_ID, "--epoch", "4", "--cache-dir", str(cache)).code == 0
    model_dir = cache / RUN_ID / "epoch-4" / "model"
    assert (model_dir / "adapter_config.json").is_file()
    assert (
        _flag(launched[0], "--model-dir") == str(model_dir)
        and _flag(launched[0], "--name") == "run-abcd1111-epoch-4"
    )
    seen = len(fake.requests)
    assert run("models", "serve", RUN_ID, "--epoch", "4", "--cache-dir", str(cache)).code == 0
    assert storage.downloads == 1 and len(fake.requests) == seen  # cached: offline
