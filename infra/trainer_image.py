"""The training image asset: training_image/ on the region's SageMaker PyTorch image (or a public one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import Annotations, Token
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from infra.paths import REPO_ROOT

TRAINING_IMAGE_DIR = REPO_ROOT / "training_image"
# The SageMaker PyTorch training image (DLC) the container builds on. The image keeps the DLC's own
# CUDA build of torch (pinned as a pip constraint, so the trainer's requirements can never replace it
# with a build for another CUDA); 2.9/py312 is the newest DLC line that is not py313-only.
DLC_FRAMEWORK = "pytorch"
DLC_VERSION = "2.9"
DLC_PY_VERSION = "py312"
DLC_INSTANCE_TYPE = "ml.g5.xlarge"  # any GPU instance type selects the -gpu- variant
# The documented alternative: the official CUDA PyTorch image on Docker Hub (also the Dockerfile's default).
PUBLIC_BASE_IMAGE = "pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime"


@dataclass(frozen=True)
class BaseImage:
    uri: str
    source: Literal["sagemaker", "public"]
    # Why the public image stands in for the SageMaker one; None when the SageMaker image was found.
    reason: str | None = None


def resolve_base_image(region: str) -> BaseImage:
    """The SageMaker PyTorch training image URI for region, looked up offline with sagemaker-core.

    sagemaker-core lives in the `infra` extra only (hundreds of MB: never in a Lambda); without it, or
    for a region it does not know, the public CUDA PyTorch image is used instead."""
    try:
        from sagemaker.core import image_uris
    except ImportError:
        return BaseImage(
            PUBLIC_BASE_IMAGE, "public", "sagemaker-core is not installed (pip install '.[infra]')"
        )
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
        return BaseImage(
            PUBLIC_BASE_IMAGE, "public", f"no SageMaker PyTorch training image for {region}: {exc}"
        )
    return BaseImage(str(uri), "sagemaker")


def registry_of(uri: str) -> str | None:
    """The ECR registry to `docker login` to before building FROM uri; None for Docker Hub images."""
    host = uri.split("/", 1)[0]
    return host if ".dkr.ecr." in host else None


def training_image_asset(
    scope: Construct, construct_id: str, *, region: str, base_image: str | None = None
) -> ecr_assets.DockerImageAsset:
    """training_image/ as a Docker image asset for the SageMaker training job (built at deploy time).

    base_image overrides the lookup (e.g. a mirror of the DLC in the deployment's own account)."""
    if base_image is not None:
        image = BaseImage(base_image, "sagemaker" if registry_of(base_image) else "public")
    elif Token.is_unresolved(region):
        image = BaseImage(PUBLIC_BASE_IMAGE, "public", "the region is not known at synth time")
    else:
        image = resolve_base_image(region)
    asset = ecr_assets.DockerImageAsset(
        scope,
        construct_id,
        directory=str(TRAINING_IMAGE_DIR),
        build_args={"BASE_IMAGE": image.uri},
        # SageMaker training instances are x86_64, whatever machine runs `cdk deploy`.
        platform=ecr_assets.Platform.LINUX_AMD64,
    )
    if image.reason is not None:
        Annotations.of(asset).add_warning_v2(
            "tt:trainer-base-image", f"Training image built on {image.uri}: {image.reason}."
        )
    return asset
