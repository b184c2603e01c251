"""SharedLayers: the tt_core code layer and the third-party dependencies layer, compiled for the runtime."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import bytecode
from infra.bytecode import shell_compile_command
from infra.constructs.lambda_defaults import ARCHITECTURE, PYTHON_VERSION, RUNTIME
from infra.paths import CORE_LAYER_DIR, CORE_LAYER_PYTHON_DIR, DEPS_LAYER_DIR

REQUIREMENTS = "requirements.txt"
# Packages whose other dependencies the Lambda runtime already ships (aws-xray-sdk needs botocore): installed
# without them, so that no second botocore in the layer loads ahead of the runtime's own.
NO_DEPS_REQUIREMENTS = "requirements-no-deps.txt"
OUTPUT = "/asset-output/python"  # where the Docker fallback writes the layer
# The wheels Lambda can load: CPython 3.13 on Graviton (manylinux2014_aarch64).
PIP_TARGET_PLATFORM = (
    "--platform", "manylinux2014_aarch64",
    "--implementation", "cp",
    "--python-version", PYTHON_VERSION,
    "--only-binary=:all:",
)  # fmt: skip


@jsii.implements(ILocalBundling)
class PipInstallForLambda:
    """Local bundling of the requirements files into `<asset>/python` with cross-platform wheels from PyPI."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        python = bytecode.bundling_compiler(PYTHON_VERSION)
        if python is False:
            return False
        with tempfile.TemporaryDirectory() as cache:
            for requirements, no_deps in ((REQUIREMENTS, False), (NO_DEPS_REQUIREMENTS, True)):
                subprocess.run(
                    [
                        sys.executable, "-m", "pip", "install",
                        "--quiet", "--disable-pip-version-check", "--no-input",
                        # pip would compile for the interpreter it runs on: the runtime's compiles below.
                        "--no-compile",
                        *(["--no-deps"] if no_deps else []),
                        "--cache-dir", cache,
                        *PIP_TARGET_PLATFORM,
                        "--requirement", str(self._directory / requirements),
                        "--target", str(Path(output_dir) / "python"),
                    ],
                    check=True,
                )  # fmt: skip
        bytecode.compile_tree(python, Path(output_dir) / "python")
        return True


@jsii.implements(ILocalBundling)
class CopyAndCompile:
    """Local bundling of layers/core/python into `<asset>/python`, with the runtime's bytecode."""

    def __init__(self, source: Path) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        python = bytecode.bundling_compiler(PYTHON_VERSION)
        if python is False:
            return False
        target = Path(output_dir) / "python"
        shutil.copytree(
            self._source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True
        )
        bytecode.compile_tree(python, target)
        return True


class SharedLayers(Construct):
    """The two layers every function uses: `tt_core` (the project's code) and its dependencies."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        # layers/core already has the layer layout (python/tt_core/...): shipped with the runtime's bytecode.
        self.core = lambda_.LayerVersion(
            self,
            "Core",
            code=lambda_.Code.from_asset(
                str(CORE_LAYER_DIR),
                exclude=["__pycache__", "*.pyc"],
                bundling=BundlingOptions(
                    image=RUNTIME.bundling_image,
                    platform="linux/arm64",
                    command=[
                        "bash",
                        "-c",
                        f"mkdir -p {OUTPUT} && cp -R /asset-input/python/. {OUTPUT}/ && "
                        f"find {OUTPUT} -name __pycache__ -prune -exec rm -rf {{}} + && "
                        + shell_compile_command(OUTPUT),
                    ],
                    local=CopyAndCompile(CORE_LAYER_PYTHON_DIR),
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="tt_core: models, services, ports, adapters and wiring of Tuned Tensor",
        )
        # boto3/botocore are pinned in requirements.txt: the functions run the SDK the tests ran.
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
                        f"pip install --no-compile --no-deps -r {NO_DEPS_REQUIREMENTS} -t {OUTPUT} && "
                        + shell_compile_command(OUTPUT),
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
