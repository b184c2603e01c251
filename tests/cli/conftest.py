"""CLI fixtures: `main([...])` in-process against the API served over real HTTP on a free port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tt_cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Api:
    base_url: str
    key: str
    account_id: str


@pytest.fixture(autouse=True)
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config dir and working dir, no inherited credentials, and no waiting between retries."""
    config_home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    for name in ("TUNED_TENSOR_API_KEY", "TUNED_TENSOR_URL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return config_home / "tuned-tensor" / "config.json"


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the client would have made between retries (none is actually slept)."""
    waited: list[float] = []
    monkeypatch.setattr("tt_cli.client._pause", waited.append)
    return waited


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], pauses: list[float]) -> Any:
    def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def api(gateway: Any) -> Iterator[Api]:
    """The API over HTTP, and an account with its key."""
    from tt_core import wiring
    from tt_local.http_server import make_server, serve_in_thread

    server = make_server(gateway, port=0)
    serve_in_thread(server)
    account, key = wiring.api_key_service().create_account("cli-tests")
    try:
        yield Api(f"http://127.0.0.1:{server.server_address[1]}", key.key, account.id)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def authed(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The environment points the CLI at the test API with a valid key."""
    monkeypatch.setenv("TUNED_TENSOR_URL", api.base_url)
    monkeypatch.setenv("TUNED_TENSOR_API_KEY", api.key)
    return api


SPEC = {
    "name": "Support Bot",
    "description": "Answers billing questions",
    "base_model": "tiny-chat",
    "system_prompt": "You are a helpful support agent.",
    "guidelines": ["Be concise."],
    "constraints": ["Never promise refunds."],
    "examples": [
        {"input": f"Question {i}?", "output": f"Answer {i}: see Settings > Billing."} for i in range(5)
    ],
    "eval_cases": [],
}


@pytest.fixture
def spec() -> dict[str, Any]:
    return json.loads(json.dumps(SPEC))


def write(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path
