"""The CLI configuration file and the flag → environment → file → default precedence (PRODUCT.md §14.1)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tt_cli.errors import CliError
from tt_core.models.api_keys import KEY_LENGTH, KEY_PATTERN, KEY_PREFIX

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
ENV_API_KEY = "TUNED_TENSOR_API_KEY"
ENV_BASE_URL = "TUNED_TENSOR_URL"
FILE_MODE = 0o600
DIR_MODE = 0o700


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    root = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(root) / "tuned-tensor" / "config.json"


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The saved settings; a missing file is an empty config."""
    path = config_path(environ)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise CliError.local(f"Cannot read the config file {path}: {error}") from None
    if not isinstance(data, dict):
        raise CliError.local(f"The config file {path} must hold a JSON object")
    return data


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write via a 0600 temporary file and rename: the key is never readable by others, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, DIR_MODE)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_config(base_url: str | None = None, api_key: str | None = None) -> Path:
    """Merge the given values into the config file (None leaves a value as it is); returns the path.

    `tt auth login` and `tt local up` both call this.
    """
    path = config_path()
    data = load_config()
    if base_url is not None:
        data["base_url"] = normalise_base_url(base_url)
    if api_key is not None:
        data["api_key"] = api_key
    _write_private(path, data)
    return path


def forget_api_key() -> bool:
    """Remove the saved key, keeping the rest; True when there was one."""
    data = load_config()
    if "api_key" not in data:
        return False
    del data["api_key"]
    _write_private(config_path(), data)
    return True


def normalise_base_url(url: str) -> str:
    """The host part the user gave, without a trailing slash or the /api/v1 the client adds itself."""
    url = url.strip().rstrip("/")
    return url.removesuffix("/api/v1").rstrip("/")


def check_api_key(key: str) -> str:
    """Refuse a malformed key before it reaches the network (exit 1)."""
    if not KEY_PATTERN.match(key):
        raise CliError.local(
            f"Invalid API key format: expected '{KEY_PREFIX}' followed by letters and digits, "
            f"{KEY_LENGTH} characters in all"
        )
    return key


@dataclass(frozen=True)
class Settings:
    """Where the CLI talks to and with which key, and where each came from."""

    base_url: str
    api_key: str | None
    key_source: str | None  # "flag" | "env" | "config" | None
    url_source: str  # "flag" | "env" | "config" | "default"


def resolve(flag_key: str | None, flag_url: str | None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    saved: dict[str, Any] | None = None

    def from_file(name: str) -> Any:
        nonlocal saved
        if saved is None:  # read lazily: a flag or variable must work even with a broken file
            saved = load_config(env)
        return saved.get(name) or None

    key_candidates = ((flag_key, "flag"), (env.get(ENV_API_KEY), "env"))
    key, key_source = next(((k.strip(), s) for k, s in key_candidates if k and k.strip()), (None, None))
    if key is None and (value := from_file("api_key")):
        key, key_source = str(value).strip(), "config"

    url_candidates = ((flag_url, "flag"), (env.get(ENV_BASE_URL), "env"))
    url, url_source = next(((u, s) for u, s in url_candidates if u and u.strip()), (None, "default"))
    if url is None:
        value = from_file("base_url")
        url, url_source = (str(value), "config") if value else (DEFAULT_BASE_URL, "default")
    return Settings(normalise_base_url(url), key, key_source, url_source)
