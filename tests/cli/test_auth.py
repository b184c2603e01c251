"""`tt auth login|status|logout`, key and URL precedence, local key checks."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Api

UNKNOWN_KEY = "tt_" + "x" * 48


def test_login_verifies_then_saves_key_and_url_privately(run: Any, api: Api, cli_env: Path) -> None:
    result = run("-u", api.base_url, "auth", "login", api.key)
    assert result.code == 0, result.err
    assert "Logged in" in result.out and api.key[:8] in result.out
    assert json.loads(cli_env.read_text()) == {"base_url": api.base_url, "api_key": api.key}
    assert stat.S_IMODE(cli_env.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli_env.parent.stat().st_mode) == 0o700

    status = run("auth", "status", "--json")
    assert status.code == 0
    assert status.json == {
        "authenticated": True,
        "key_prefix": api.key[:8],
        "base_url": api.base_url,
        "key_source": "config",
    }

    logout = run("auth", "logout")
    assert logout.code == 0 and "Removed" in logout.out
    assert json.loads(cli_env.read_text()) == {"base_url": api.base_url}  # the URL stays
    after = run("auth", "status", "--json")
    assert after.code == 1
    assert after.json == {
        "authenticated": False,
        "key_prefix": None,
        "base_url": api.base_url,
        "key_source": None,
    }


def test_login_reads_a_piped_key(run: Any, api: Api, cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(api.key + "\n"))
    result = run("auth", "login", "-u", api.base_url, "--json")
    assert result.code == 0, result.err
    assert result.json["authenticated"] is True
    assert json.loads(cli_env.read_text())["api_key"] == api.key


def test_login_with_an_unknown_key_saves_nothing(run: Any, api: Api, cli_env: Path) -> None:
    result = run("-u", api.base_url, "auth", "login", UNKNOWN_KEY)
    assert result.code == 1
    assert result.err.startswith("✗ [401] unauthorized: ")
    assert not cli_env.exists()


def test_login_without_u_keeps_the_saved_url(run: Any, api: Api, cli_env: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TUNED_TENSOR_URL", api.base_url)
    assert run("auth", "login", api.key).code == 0
    assert json.loads(cli_env.read_text()) == {"api_key": api.key}  # env URL is not saved


def test_malformed_key_is_rejected_locally(run: Any, closed_url: str, cli_env: Path) -> None:
    # Against a closed port: a request would have been a connection_error.
    for argv in (("-k", "tt_short", "specs", "list"), ("auth", "login", "sk_" + "a" * 48)):
        result = run("-u", closed_url, *argv)
        assert result.code == 1
        assert result.err.startswith("✗ [0] cli_error: Invalid API key format")
    assert not cli_env.exists()


def test_missing_key_is_no_api_key(run: Any, closed_url: str) -> None:
    result = run("-u", closed_url, "specs", "list", "--json")
    assert result.code == 1
    assert result.json["error"]["code"] == "no_api_key"
    text = run("-u", closed_url, "specs", "list")
    assert text.err.startswith("✗ [401] no_api_key: ")


def test_key_and_url_precedence(run: Any, api: Api, monkeypatch: pytest.MonkeyPatch, cli_env: Path) -> None:
    cli_env.parent.mkdir(parents=True)
    cli_env.write_text(json.dumps({"api_key": UNKNOWN_KEY, "base_url": "http://127.0.0.1:1"}))
    status = run("auth", "status", "--json", "-u", api.base_url)
    assert status.code == 1  # the config's key is unknown to the server
    assert status.json["key_source"] == "config" and status.json["authenticated"] is False

    monkeypatch.setenv("TUNED_TENSOR_API_KEY", api.key)
    monkeypatch.setenv("TUNED_TENSOR_URL", api.base_url)
    env = run("auth", "status", "--json")
    assert env.code == 0 and env.json["key_source"] == "env" and env.json["base_url"] == api.base_url

    flag = run("-k", UNKNOWN_KEY, "auth", "status", "--json")
    assert flag.json["key_source"] == "flag" and flag.json["authenticated"] is False


def test_status_text_without_a_key(run: Any, closed_url: str) -> None:
    result = run("-u", closed_url + "/api/v1/", "auth", "status")
    assert result.code == 1
    assert "Not authenticated" in result.out
    assert f"{closed_url} (flag)" in result.out  # the trailing /api/v1/ is dropped
    assert "tt auth login" in result.out


def test_logout_without_a_saved_key(run: Any) -> None:
    result = run("auth", "logout", "--json")
    assert result.code == 0 and result.json["logged_out"] is False
