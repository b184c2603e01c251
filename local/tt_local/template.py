"""The stack's synthesized CloudFormation template: the one source of the local stack's resources."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / "cdk.out" / "local"
# What the template depends on: a change to any of these synthesizes again.
_SOURCES = (
    "infra",
    "cdk.json",
    "layers/core/python/tt_core/schema.py",
    "layers/core/python/tt_core/settings.py",
)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for source in _SOURCES:
        root = REPO_ROOT / source
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_template() -> dict[str, Any]:
    """The ServiceStack template, synthesized once per change of the infra code (bundling skipped)."""
    cached = CACHE_DIR / f"TunedTensor-{_fingerprint()}.template.json"
    try:
        data: dict[str, Any] = json.loads(cached.read_text())
        return data
    except FileNotFoundError:
        pass
    from infra.app import synth_template

    template = synth_template()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for stale in CACHE_DIR.glob("TunedTensor-*.template.json"):
        if stale != cached:
            stale.unlink(missing_ok=True)
    # Written aside and renamed: another process synthesizing at the same time (two stacks starting, the
    # test workers) never reads a half-written file.
    staging = cached.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps(template))
    os.replace(staging, cached)
    return template
