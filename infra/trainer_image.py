"""The training image asset: training_image/ on the public CUDA PyTorch image, or the region's DLC."""

from __future__ import annotations

from typing import Literal

from aws_cdk import Token
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from infra.paths import REPO_ROOT

TRAINING_IMAGE_DIR = REPO_ROOT / "training_image"
BASE_IMAGE_ARG = "BASE_IMAGE"
# The default base: the official CUDA PyTorch image on Docker Hub (also the Dockerfile's default), pulled with
# no login, so `make deploy` needs nothing but Docker and credentials. Its torch (2.9, CUDA 12.8) is the one
# the image keeps (pinned as a pip constraint, so no requirement can swap it for another CUDA's build).
PUBLIC_BASE_IMAGE = "pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime"
# `-c trainer_base=dlc`: the SageMaker PyTorch training image (DLC) of the region instead, the same torch
# line; its registry needs a login, which `make deploy` does (infra/registry_login.py). 2.9/py312 is the
# newest DLC line that is not py313-only.
DLC_FRAMEWORK = "pytorch"
DLC_VERSION = "2.9"
DLC_PY_VERSION = "py312"
DLC_INSTANCE_TYPE = "ml.g5.xlarge"  # any GPU instance type selects the -gpu- variant


TrainerBase = Literal["public", "dlc"]


def dlc_image_uri(region: str) -> str:
    """The SageMaker PyTorch training image (DLC) URI for region, looked up offline with sagemaker-core.

    Its registry's account differs by region (763104351884 in most, others in opt-in regions such as
    af-south-1 or me-south-1): sagemaker-core's tables know which. sagemaker-core lives in the `infra` extra
    only (hundreds of MB: never in a Lambda). An explicit `trainer_base=dlc` that cannot be honoured fails
    the synth rather than building on another base.
    """
    try:
        from sagemaker.core import image_uris
    except ImportError:
        raise ValueError(
            "trainer_base=dlc needs sagemaker-core to look up the region's image: pip install '.[infra]'"
        ) from None
    try:
        uri = image_uris.retrieve(
            DLC_FRAMEWORK,
            region=region,
            version=DLC_VERSION,
            py_version=DLC_PY_VERSION,
            instance_type=DLC_INSTANCE_TYPE,
            image_scope="training",
        )
    except ValueError as exc:
        raise ValueError(
            f"trainer_base=dlc: no SageMaker PyTorch training image for {region}: {exc}"
        ) from None
    return str(uri)


def registry_of(uri: str) -> str | None:
    """The ECR registry to `docker login` to before building FROM uri; None for Docker Hub images."""
    host = uri.split("/", 1)[0]
    return host if ".dkr.ecr." in host else None


def base_image_uri(region: str, base: TrainerBase) -> str:
    """What the trainer image builds FROM: the public CUDA PyTorch image, or the region's DLC."""
    if base == "public":
        return PUBLIC_BASE_IMAGE
    if Token.is_unresolved(region):
        raise ValueError(
            "trainer_base=dlc needs the region at synth time (-c region=… or CDK_DEFAULT_REGION)"
        )
    return dlc_image_uri(region)


def training_image_asset(
    scope: Construct,
    construct_id: str,
    *,
    region: str,
    base: TrainerBase = "public",
    base_image: str | None = None,
) -> ecr_assets.DockerImageAsset:
    """training_image/ as a Docker image asset for the SageMaker training job (built at deploy time).

    base_image overrides the choice (e.g. a mirror of the DLC in the deployment's own account)."""
    uri = base_image or base_image_uri(region, base)
    return ecr_assets.DockerImageAsset(
        scope,
        construct_id,
        directory=str(TRAINING_IMAGE_DIR),
        build_args={BASE_IMAGE_ARG: uri},
        # SageMaker training instances are x86_64, whatever machine runs `cdk deploy`.
        platform=ecr_assets.Platform.LINUX_AMD64,
    )
