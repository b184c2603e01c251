"""cfn-lint on the synthesized templates: no errors and no warnings beyond .cfnlintrc.yaml's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.paths import REPO_ROOT


def _cfn_lint() -> str:
    beside_python = Path(sys.executable).with_name("cfn-lint")
    found = str(beside_python) if beside_python.exists() else shutil.which("cfn-lint")
    assert found, "cfn-lint is not installed (pip install -e '.[dev]')"
    return found


@pytest.mark.parametrize("stage", ["dev", "prod", "site"])
def test_cfn_lint_finds_nothing(stage: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    synth = request.getfixturevalue(stage)
    template = tmp_path / f"{stage}.template.json"
    template.write_text(json.dumps(synth.json))
    # Run from the repository root so that .cfnlintrc.yaml applies.
    result = subprocess.run(
        [_cfn_lint(), "--format", "parseable", str(template)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
