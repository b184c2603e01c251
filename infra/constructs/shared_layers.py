"""SharedLayers: the tt_core code layer and the third-party dependencies layer, built without Docker."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.lambda_defaults import ARCHITECTURE, RUNTIME
from infra.paths import CORE_LAYER_DIR, DEPS_LAYER_DIR

REQUIREMENTS = "requirements.txt"
# Packages whose other dependencies the Lambda runtime already ships (aws-xray-sdk needs botocore): installed
# without them, so that no second botocore in the layer loads ahead of the runtime's own.
NO_DEPS_REQUIREMENTS = "requirements-no-deps.txt"
OUTPUT = "/asset-output/python"  # where the Docker fallback writes the layer
# The wheels Lambda can load: CPython 3.13 on Graviton (manylinux2014_aarch64).
PIP_TARGET_PLATFORM = (
    "--platform", "manylinux2014_aarch64",
    "--implementation", "cp",
    "--python-version", "3.13",
    "--only-binary=:all:",
)  # fmt: skip


@jsii.implements(ILocalBundling)
class PipInstallForLambda:
    """Local bundling of the requirements files into `<asset>/python` with cross-platform wheels from PyPI."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        with tempfile.TemporaryDirectory() as cache:
            for requirements, no_deps in ((REQUIREMENTS, False), (NO_DEPS_REQUIREMENTS, True)):
                subprocess.run(
                    [
                        sys.executable, "-m", "pip", "install",
                        "--quiet", "--disable-pip-version-check", "--no-input",
                        # .pyc files would be compiled for this interpreter, not for the Lambda runtime.
                        "--no-compile",
                        *(["--no-deps"] if no_deps else []),
                        "--cache-dir", cache,
                        *PIP_TARGET_PLATFORM,
                        "--requirement", str(self._directory / requirements),
                        "--target", str(Path(output_dir) / "python"),
                    ],
                    check=True,
                )  # fmt: skip
        return True


class SharedLayers(Construct):
    """The two layers every function uses: `tt_core` (the project's code) and its dependencies."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        # layers/core already has the layer layout (python/tt_core/...): shipped as-is.
        self.core = lambda_.LayerVersion(
            self,
            "Core",
            code=lambda_.Code.from_asset(str(CORE_LAYER_DIR), exclude=["__pycache__", "*.pyc"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="tt_core: models, services, ports, adapters and wiring of Tuned Tensor",
        )
        # boto3/botocore are not in requirements.txt: the Lambda runtime provides them, and the
        # layer stays small (the pinned boto3 is only for the CLI and the local stack).
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(DEPS_LAYER_DIR),
                bundling=BundlingOptions(
                    image=RUNTIME.bundling_image,
                    platform="linux/arm64",
                    # Only used if local bundling ever declines; it produces the same layout.
                    command=[
                        "bash",
                        "-c",
                        f"pip install --no-compile -r {REQUIREMENTS} -t {OUTPUT} && "
                        f"pip install --no-compile --no-deps -r {NO_DEPS_REQUIREMENTS} -t {OUTPUT}",
                    ],
                    local=PipInstallForLambda(DEPS_LAYER_DIR),
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Third-party dependencies of Tuned Tensor (layers/deps/requirements.txt)",
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.dependencies, self.core]
