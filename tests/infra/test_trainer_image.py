"""The training image: base image URI per region (sagemaker-core, offline), public fallback, CDK asset."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
from aws_cdk import App, Stack

from infra.paths import REPO_ROOT
from infra.trainer_image import (
    PUBLIC_BASE_IMAGE,
    TRAINING_IMAGE_DIR,
    registry_of,
    resolve_base_image,
    training_image_asset,
)

US_EAST_1 = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9-gpu-py312"


def test_the_sagemaker_pytorch_training_image_of_the_region() -> None:
    pytest.importorskip("sagemaker.core")
    image = resolve_base_image("us-east-1")
    assert (image.uri, image.source, image.reason) == (US_EAST_1, "sagemaker", None)
    assert resolve_base_image("eu-west-1").uri.startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/")


def test_an_unknown_region_falls_back_to_the_public_image() -> None:
    pytest.importorskip("sagemaker.core")
    image = resolve_base_image("xx-nowhere-9")
    assert (image.uri, image.source) == (PUBLIC_BASE_IMAGE, "public")
    assert image.reason is not None and "xx-nowhere-9" in image.reason


def test_without_sagemaker_core_the_public_image_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sagemaker.core", None)  # makes the import raise ImportError
    image = resolve_base_image("us-east-1")
    assert (image.uri, image.source) == (PUBLIC_BASE_IMAGE, "public")
    assert "pip install '.[infra]'" in (image.reason or "")


def test_registry_to_log_in_to() -> None:
    assert registry_of(US_EAST_1) == "763104351884.dkr.ecr.us-east-1.amazonaws.com"
    assert registry_of(PUBLIC_BASE_IMAGE) is None


def _docker_assets(app: App) -> list[dict[str, object]]:
    assembly = app.synth()
    images = []
    for manifest in Path(assembly.directory).glob("*.assets.json"):
        images.extend(json.loads(manifest.read_text()).get("dockerImages", {}).values())
    return images


def test_the_asset_builds_training_image_with_the_base_image_argument() -> None:
    pytest.importorskip("sagemaker.core")
    app = App()
    stack = Stack(app, "TrainerImageTest")
    asset = training_image_asset(stack, "TrainerImage", region="us-east-1")
    (image,) = _docker_assets(app)
    source = image["source"]
    assert isinstance(source, dict)
    assert source["dockerBuildArgs"] == {"BASE_IMAGE": US_EAST_1}
    assert source["platform"] == "linux/amd64"
    assert asset.image_uri  # a token the training job definition can use


def test_an_unresolved_region_uses_the_public_image_with_a_warning() -> None:
    app = App()
    stack = Stack(app, "TrainerImageTest")
    asset = training_image_asset(stack, "TrainerImage", region=stack.region)
    (image,) = _docker_assets(app)
    assert image["source"]["dockerBuildArgs"] == {"BASE_IMAGE": PUBLIC_BASE_IMAGE}  # type: ignore[index]
    warnings = [m for m in asset.node.metadata if m.type == "aws:cdk:warning"]
    assert warnings and "the region is not known at synth time" in str(warnings[0].data)


def test_the_dockerfile_matches_the_contract() -> None:
    dockerfile = (TRAINING_IMAGE_DIR / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE={PUBLIC_BASE_IMAGE}\n" in dockerfile
    assert "FROM ${BASE_IMAGE}\n" in dockerfile
    assert dockerfile.rstrip().endswith('ENTRYPOINT ["python", "-m", "tt_trainer"]')


def test_image_requirements_pin_the_versions_the_tests_run() -> None:
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (TRAINING_IMAGE_DIR / "requirements.txt").read_text(), re.M)
    )
    trainer_extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for requirement in trainer_extra["trainer"]:
        name, version = requirement.split("==")
        if name != "torch":
            assert pins.get(name) == version, requirement
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pydantic = next(d for d in dependencies if d.startswith("pydantic=="))
    assert pins["pydantic"] == pydantic.split("==")[1]


def test_the_image_keeps_its_base_images_own_torch() -> None:
    """A PyPI torch is built for its release's CUDA (torch 2.13: CUDA 13), which older drivers cannot run; the
    base image's torch matches the base image's CUDA. So torch is not a requirement, and pip installs the
    others with the base torch pinned as a constraint."""
    requirements = (TRAINING_IMAGE_DIR / "requirements.txt").read_text()
    assert not re.search(r"^torch\b", requirements, re.M)
    dockerfile = (TRAINING_IMAGE_DIR / "Dockerfile").read_text()
    assert "RUN python /opt/tt/torch_constraint.py > /opt/tt/constraints.txt" in dockerfile
    assert "pip install -r /opt/tt/requirements.txt -c /opt/tt/constraints.txt" in dockerfile
    assert "--extra-index-url" not in dockerfile and "--index-url" not in requirements


def test_the_torch_constraint_refuses_a_base_without_a_cuda_torch() -> None:
    sys.path.insert(0, str(TRAINING_IMAGE_DIR))
    try:
        from torch_constraint import constraint
    finally:
        sys.path.remove(str(TRAINING_IMAGE_DIR))
    assert constraint("2.9.0+cu128", "12.8") == "torch==2.9.0+cu128"
    assert constraint("2.13.0", "13.0") == "torch==2.13.0"
    with pytest.raises(ValueError, match="CPU-only build"):
        constraint("2.13.0+cpu", None)
    with pytest.raises(ValueError, match=r"older than 2\.6"):
        constraint("2.5.1+cu124", "12.4")
