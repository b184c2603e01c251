"""Repository paths the CDK app packages as assets or reads at synth time."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPO_ROOT / "cdk.json"
# One code asset for every function: this directory is shipped as `functions/` in the zip.
FUNCTIONS_DIR = REPO_ROOT / "functions"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
CORE_LAYER_PYTHON_DIR = CORE_LAYER_DIR / "python"
DEPS_LAYER_DIR = REPO_ROOT / "layers" / "deps"
# The dashboard's static files (and web/vendor/, filled by `make setup`).
WEB_DIR = REPO_ROOT / "web"
