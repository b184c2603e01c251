"""`python -m infra.registry_login [ASSEMBLY]`: docker login to the registry the trainer image builds FROM.

`make deploy` synthesizes, runs this, then deploys that same assembly: the login is for exactly the base
image the assembly will build (with `-c trainer_base=dlc`, the region's SageMaker image, whose registry
account differs by region), so no manual `docker login` is needed. cdk-assets logs in to the bootstrap
repository only.
The default public base needs no login: then this does nothing.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from infra.paths import REPO_ROOT
from infra.trainer_image import BASE_IMAGE_ARG, registry_of

# <account>.dkr.ecr.<region>.amazonaws.com[.cn]: the region is part of the registry host.
_ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)
Runner = Callable[..., Any]


def base_images(assembly: Path) -> set[str]:
    """Every BASE_IMAGE build argument of the Docker image assets in a cloud assembly."""
    images = set()
    for manifest in assembly.glob("*.assets.json"):
        for asset in json.loads(manifest.read_text()).get("dockerImages", {}).values():
            base = asset.get("source", {}).get("dockerBuildArgs", {}).get(BASE_IMAGE_ARG)
            if base:
                images.add(base)
    return images


def ecr_registries(images: Iterable[str]) -> dict[str, str]:
    """ECR registry host → its region, for the images that come from ECR (Docker Hub ones need no login)."""
    registries = {}
    for image in images:
        host = registry_of(image)
        if host is None:
            continue
        match = _ECR_HOST.match(host)
        if match is None:
            raise ValueError(f"not an ECR registry host: {host}")
        registries[host] = match["region"]
    return registries


def login(registry: str, ecr_client: Any, run: Runner = subprocess.run) -> None:
    """`docker login` to registry with an ECR token (what `aws ecr get-login-password` prints)."""
    token = ecr_client.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    username, _, password = base64.b64decode(token).decode().partition(":")
    run(
        ["docker", "login", "--username", username, "--password-stdin", f"https://{registry}"],
        input=password,
        text=True,
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    assembly = Path(args[0]) if args else REPO_ROOT / "cdk.out"
    registries = ecr_registries(base_images(assembly))
    if not registries:
        print("The trainer image's base needs no registry login.", file=sys.stderr)
        return 0
    import boto3

    for registry, region in sorted(registries.items()):
        print(f"Logging in to {registry} for the trainer image's base…", file=sys.stderr)
        login(registry, boto3.client("ecr", region_name=region))
    return 0


if __name__ == "__main__":
    sys.exit(main())
