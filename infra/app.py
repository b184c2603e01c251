"""The CDK app: `python -m infra.app [-c key=value ...]` (or `npx cdk synth`) synthesizes the stage's stack.

No AWS calls, no lookups: the stack is environment-agnostic, so synth works offline. cdk-nag's
AwsSolutions checks run on every synth and fail it on any finding that is not acknowledged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import App

from infra import nag
from infra.config import StageConfig
from infra.paths import CDK_JSON, REPO_ROOT
from infra.service_stack import ServiceStack

# Context that makes synth skip asset bundling (no pip download): tests and the local stack.
SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context (the feature flags), so every entry point synthesizes the same template.

    The CDK CLI passes it to the app itself; `python -m infra.app`, the tests and `synth_template`
    read it here. Context from the CLI (`-c`, cdk.json) still takes precedence over these values.
    """
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def build_app(
    config: StageConfig | None = None,
    *,
    context: Mapping[str, Any] | None = None,
    checks: bool = True,
    outdir: str | None = None,
) -> tuple[App, ServiceStack]:
    """The App with the ServiceStack; `config` defaults to StageConfig read from the context."""
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    stage_config = config or StageConfig.from_context(app.node.try_get_context)
    # One stack id per stage (PRODUCT.md §14.6): `-c stage=prod` never updates dev's stack.
    stack = ServiceStack(app, stage_config.stack_id, config=stage_config)
    if checks:
        nag.add_checks(app)
    return app, stack


def synth_template(config: StageConfig | None = None) -> dict[str, Any]:
    """The ServiceStack's CloudFormation template as a dict, bundling skipped (the local stack's input).

    cdk-nag is not run here: it is a deployment gate, checked by `synth` and the infra tests.
    """
    # The local stack serves web/ itself: the S3 + CloudFront site is for AWS only.
    local_config = (config or StageConfig()).model_copy(update={"dashboard_site": False})
    with tempfile.TemporaryDirectory(prefix="tt-synth-") as outdir:
        app, stack = build_app(local_config, context=SKIP_BUNDLING, checks=False, outdir=outdir)
        template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template


def _parse_context(argv: Sequence[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(prog="python -m infra.app", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE",
        help="context value, as with `cdk synth -c` (e.g. stage=prod, region=eu-west-1)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    pairs = [item.partition("=") for item in args.context]
    if bad := [key for key, sep, _ in pairs if not sep or not key]:
        parser.error(f"context must be KEY=VALUE: {bad}")
    return {key: value for key, _, value in pairs}


def main(argv: Sequence[str] | None = None) -> int:
    context = _parse_context(sys.argv[1:] if argv is None else argv)
    # Under the CDK CLI, CDK_OUTDIR names the assembly directory; run directly, write ./cdk.out too.
    outdir = None if os.environ.get("CDK_OUTDIR") else str(REPO_ROOT / "cdk.out")
    app, stack = build_app(context=context, outdir=outdir)
    assembly = app.synth()
    print(f"Synthesized {stack.stack_name} into {assembly.directory}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
