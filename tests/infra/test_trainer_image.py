"""The training image: public base by default, the region's DLC on request, the deploy's registry login."""

from __future__ import annotations

import base64
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from infra import registry_login
from infra.app import SKIP_BUNDLING, build_app
from infra.config import StageConfig
from infra.paths import REPO_ROOT
from infra.trainer_image import (
    PUBLIC_BASE_IMAGE,
    TRAINING_IMAGE_DIR,
    dlc_image_uri,
    registry_of,
    training_image_asset,
)

US_EAST_1 = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9-gpu-py312"


def test_the_sagemaker_pytorch_training_image_of_the_region() -> None:
    pytest.importorskip("sagemaker.core")
    assert dlc_image_uri("us-east-1") == US_EAST_1
    assert dlc_image_uri("eu-west-1").startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/")
    # Opt-in regions host the DLCs in accounts of their own.
    assert dlc_image_uri("af-south-1").startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert dlc_image_uri("me-south-1").startswith("217643126080.dkr.ecr.me-south-1.amazonaws.com/")


def test_an_explicit_dlc_base_that_cannot_be_found_fails_the_synth(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sagemaker.core")
    with pytest.raises(ValueError, match="xx-nowhere-9"):
        dlc_image_uri("xx-nowhere-9")
    monkeypatch.setitem(sys.modules, "sagemaker.core", None)  # makes the import raise ImportError
    with pytest.raises(ValueError, match=r"pip install '\.\[infra\]'"):
        dlc_image_uri("us-east-1")


def test_registry_to_log_in_to() -> None:
    assert registry_of(US_EAST_1) == "763104351884.dkr.ecr.us-east-1.amazonaws.com"
    assert registry_of(PUBLIC_BASE_IMAGE) is None


def _docker_assets(app: App) -> list[dict[str, object]]:
    assembly = app.synth()
    images = []
    for manifest in Path(assembly.directory).glob("*.assets.json"):
        images.extend(json.loads(manifest.read_text()).get("dockerImages", {}).values())
    return images


def test_by_default_the_image_builds_on_the_public_base_with_no_login(dev: Any) -> None:
    """`make deploy` on a fresh machine: the base comes from Docker Hub, no registry login is needed."""
    (image,) = _docker_assets(dev.app)
    source = image["source"]
    assert isinstance(source, dict)
    assert source["dockerBuildArgs"] == {"BASE_IMAGE": PUBLIC_BASE_IMAGE}
    assert source["platform"] == "linux/amd64"
    assert registry_of(PUBLIC_BASE_IMAGE) is None
    assert dev.stack.config.trainer_base == "public"


def test_trainer_base_dlc_builds_on_the_regions_sagemaker_image(tmp_path: Path) -> None:
    pytest.importorskip("sagemaker.core")
    config = StageConfig.from_context({"trainer_base": "dlc", "region": "af-south-1"}.get, environ={})
    app, _ = build_app(config, context=SKIP_BUNDLING, checks=False, outdir=str(tmp_path))
    (image,) = _docker_assets(app)
    base = image["source"]["dockerBuildArgs"]["BASE_IMAGE"]  # type: ignore[index]
    assert base == "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.9-gpu-py312"
    # What `make deploy` logs in to before building: that registry, in its region.
    assert registry_login.ecr_registries(registry_login.base_images(tmp_path)) == {
        "626614931356.dkr.ecr.af-south-1.amazonaws.com": "af-south-1"
    }


def test_an_unresolved_region_cannot_pick_the_dlc() -> None:
    app = App()
    stack = Stack(app, "TrainerImageTest")
    assert training_image_asset(stack, "Public", region=stack.region).image_uri
    with pytest.raises(ValueError, match="needs the region at synth time"):
        training_image_asset(stack, "Dlc", region=stack.region, base="dlc")


def test_the_deploy_logs_in_with_an_ecr_token() -> None:
    token = base64.b64encode(b"AWS:secret-password").decode()

    class Ecr:
        def get_authorization_token(self) -> dict[str, Any]:
            return {"authorizationData": [{"authorizationToken": token}]}

    calls: list[tuple[list[str], dict[str, Any]]] = []
    registry_login.login(
        "626614931356.dkr.ecr.af-south-1.amazonaws.com", Ecr(), run=lambda cmd, **kw: calls.append((cmd, kw))
    )
    [(command, options)] = calls
    assert command == [
        "docker", "login", "--username", "AWS", "--password-stdin",
        "https://626614931356.dkr.ecr.af-south-1.amazonaws.com",
    ]  # fmt: skip
    assert options["input"] == "secret-password"  # on stdin, never on the command line


def test_the_deploy_logs_in_to_nothing_for_the_public_base(tmp_path: Path, dev: Any) -> None:
    assert registry_login.ecr_registries({PUBLIC_BASE_IMAGE}) == {}
    assert registry_login.main([str(tmp_path)]) == 0  # an assembly without ECR bases: nothing to do


def test_make_deploy_logs_in_before_it_deploys_the_same_assembly() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()[1:]]
    assert lines == [
        "npx cdk synth --no-notices -q $(CONTEXT)",
        "$(PY) -m infra.registry_login cdk.out",
        "npx cdk deploy --no-notices --app cdk.out",
    ]


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
