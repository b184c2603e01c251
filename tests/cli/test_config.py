"""The config file: location, merging writes, permissions, and a broken file."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tt_cli import config


def test_default_location_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.config_path() == tmp_path / ".config" / "tuned-tensor" / "config.json"


def test_save_config_merges_and_keeps_the_file_private(cli_env: Path) -> None:
    cli_env.parent.mkdir(parents=True, mode=0o755)
    cli_env.write_text(json.dumps({"base_url": "http://old", "other": 1}))
    path = config.save_config(api_key="tt_" + "k" * 48)
    assert path == cli_env
    assert json.loads(cli_env.read_text()) == {
        "base_url": "http://old",
        "other": 1,
        "api_key": "tt_" + "k" * 48,
    }
    config.save_config(base_url="http://127.0.0.1:9999/api/v1/")
    assert json.loads(cli_env.read_text())["base_url"] == "http://127.0.0.1:9999"
    assert stat.S_IMODE(cli_env.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli_env.parent.stat().st_mode) == 0o700
    assert [p.name for p in cli_env.parent.iterdir()] == ["config.json"]  # no temporary left behind


def test_defaults_and_sources(cli_env: Path) -> None:
    settings = config.resolve(None, None)
    assert (settings.base_url, settings.url_source, settings.api_key, settings.key_source) == (
        "http://127.0.0.1:8787",
        "default",
        None,
        None,
    )


def test_a_broken_config_file_is_a_cli_error(run: Any, cli_env: Path) -> None:
    cli_env.parent.mkdir(parents=True)
    cli_env.write_text("{oops")
    result = run("auth", "status")
    assert result.code == 1 and result.err.startswith("✗ [0] cli_error: Cannot read the config file")
    # Flags alone never need the file.
    assert config.resolve("tt_" + "k" * 48, "http://h").key_source == "flag"
