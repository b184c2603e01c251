"""`tt admin create-account` and `tt admin stage-base-model`: operator commands straight to AWS (§14.6)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tt_cli.context import Context
from tt_cli.errors import CliError
from tt_core.schema import (
    DEFAULT_STAGE,
    ENV_BUCKET_NAME,
    ENV_TABLE_NAME,
    OUTPUT_BUCKET_NAME,
    OUTPUT_TABLE_NAME,
    stack_name,
)

# The default stage's stack; another stage's is TunedTensor-<stage> (PRODUCT.md §14.6), as the 409
# base_model_unavailable message says.
DEFAULT_STACK = stack_name(DEFAULT_STAGE)
STACK_HELP = f"CloudFormation stack (default: %(default)s; another stage's: {DEFAULT_STACK}-<stage>)"


def register(subparsers: Any) -> None:
    admin = subparsers.add_parser("admin", help="operator commands (use AWS credentials, not an API key)")
    commands = admin.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    create = commands.add_parser("create-account", help="create an account and its first API key")
    create.add_argument("--name", required=True, help="account name")
    create.add_argument("--stack", default=DEFAULT_STACK, help=STACK_HELP)
    create.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    create.set_defaults(func=create_account_command)
    stage = commands.add_parser(
        "stage-base-model",
        help="copy a base model's weights to where the deployment's training jobs read them",
        description="Copy a catalogue model's weights, tokenizer and config to base-models/<id>/ of the "
        "stack's bucket (or, with --local, to the local stack's data dir), verify the copy and write "
        "base_model.json. Runs on the model start only once it is staged. Idempotent.",
    )
    stage.add_argument("model", metavar="MODEL", help="catalogue model id or alias (tt models base)")
    stage.add_argument(
        "--from",
        dest="source",
        metavar="DIR",
        help="a local copy of the model (config.json, *.safetensors, tokenizer files); "
        "default: download it from the Hugging Face Hub with this machine's token",
    )
    stage.add_argument("--stack", default=DEFAULT_STACK, help=STACK_HELP)
    stage.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    stage.add_argument(
        "--local",
        dest="local_data_dir",
        metavar="DATA_DIR",
        help="stage for the local stack with this data dir (tt local up --data-dir) instead of AWS",
    )
    stage.set_defaults(func=stage_base_model_command)


def find_storage(session: Any, stack: str) -> dict[str, str]:
    """The data table and bucket of the deployment's stack, from the outputs it declares for this.

    DescribeStacks returns every output; DescribeStackResources stops at 100 resources, fewer than the
    stack has.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        raise CliError.local(
            f"Cannot read stack {stack}: {error.response['Error'].get('Message', error)}"
        ) from None
    except BotoCoreError as error:
        raise CliError.local(f"Cannot read stack {stack}: {error}") from None
    outputs = {o.get("OutputKey"): o.get("OutputValue") for s in stacks for o in s.get("Outputs") or []}
    table, bucket = outputs.get(OUTPUT_TABLE_NAME), outputs.get(OUTPUT_BUCKET_NAME)
    if not table or not bucket:
        missing = " and ".join(
            n for n, v in ((OUTPUT_TABLE_NAME, table), (OUTPUT_BUCKET_NAME, bucket)) if not v
        )
        raise CliError.local(
            f"Stack {stack} has no {missing} output: is it a Tuned Tensor stack, deployed by this version "
            "(make deploy)?"
        )
    return {"table": table, "bucket": bucket}


@contextmanager
def _deployment_env(values: dict[str, str]) -> Iterator[None]:
    """Point tt_core.wiring at the deployment for the duration of the command, then restore."""
    from tt_core import wiring

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    wiring.reset()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        wiring.reset()


def create_account_command(ctx: Context) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    name = ctx.args.name.strip()
    if not name:
        raise CliError.local("--name must not be empty")
    try:
        session = boto3.session.Session(region_name=ctx.args.region)
    except BotoCoreError as error:
        raise CliError.local(f"AWS configuration error: {error}") from None
    storage = find_storage(session, ctx.args.stack)
    env = {ENV_TABLE_NAME: storage["table"], ENV_BUCKET_NAME: storage["bucket"]}
    if session.region_name:
        env["AWS_DEFAULT_REGION"] = session.region_name  # wiring builds its clients from the environment
    from tt_core import wiring

    with _deployment_env(env):
        try:
            account, key = wiring.api_key_service().create_account(name)
        except (ClientError, BotoCoreError) as error:
            raise CliError.local(f"Cannot create the account: {error}") from None
    if ctx.json_mode:
        ctx.out.json({"account_id": account.id, "name": account.name, "api_key": key.key})
    else:
        ctx.out.success(f"Created account {account.id} ({account.name}) in stack {ctx.args.stack}")
        ctx.out.line(f"API key: {key.key}")
        ctx.out.line("Store this key now: it is shown only once.")
    return 0


def _catalogue_model(value: str) -> str:
    from tt_core.models.base_models import UnknownBaseModelError, canonical_base_model
    from tt_core.schema import LOCAL_DEFAULT_BASE_MODEL

    try:
        model_id = canonical_base_model(value)
    except UnknownBaseModelError as error:
        raise CliError.local(f"MODEL: {error}") from None
    if model_id == LOCAL_DEFAULT_BASE_MODEL:
        raise CliError.local(
            f"{model_id} needs no staging: the trainer builds it itself, so it is always available."
        )
    return model_id


def _s3_destination(ctx: Context, model_id: str) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    from tt_cli.commands.stage_base_model import S3Destination

    try:
        session = boto3.session.Session(region_name=ctx.args.region)
    except BotoCoreError as error:
        raise CliError.local(f"AWS configuration error: {error}") from None
    bucket = find_storage(session, ctx.args.stack)["bucket"]
    return S3Destination(session.client("s3"), bucket, model_id)


def stage_base_model_command(ctx: Context) -> int:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    from tt_cli.commands import stage_base_model as staging
    from tt_cli.commands.datasets import human_bytes

    model_id = _catalogue_model(ctx.args.model)
    local = ctx.args.local_data_dir is not None
    # The destination first: a wrong stack or data dir is reported before any download or hashing.
    destination = (
        staging.DirectoryDestination(staging.require_data_dir(Path(ctx.args.local_data_dir)), model_id)
        if local
        else _s3_destination(ctx, model_id)
    )
    revision: str | None = None
    if ctx.args.source is None:
        source, revision = staging.download_from_hub(model_id)
    else:
        source = Path(ctx.args.source).expanduser()
    print(f"Checking the files in {source}…", file=sys.stderr, flush=True)
    files = staging.scan_source(source)
    try:
        result = staging.stage(model_id, staging.source_revision(source, revision), files, destination)
    except (ClientError, BotoCoreError, Boto3Error, OSError) as error:  # Boto3Error: S3UploadFailedError
        raise CliError.local(f"Cannot stage {model_id} at {destination.describe()}: {error}") from None
    total = int(result.manifest["total_bytes"])
    minutes = None if local else round(staging.startup_minutes(model_id, total))
    if ctx.json_mode:
        ctx.out.json(
            {
                "model": model_id,
                "revision": result.manifest["revision"],
                "destination": result.destination,
                "files": [
                    {"name": file.name, "size": file.size, "copied": file.name in result.copied}
                    for file in files
                ],
                "copied_bytes": result.copied_bytes,
                "removed": result.removed,
                "verified_safetensors_headers": result.verified_headers,
                "startup_minutes": minutes,
            }
        )
        return 0
    revision = result.manifest["revision"]
    revision_text = f"revision {revision}" if revision else "revision not recorded"
    ctx.out.success(f"Staged {model_id} ({revision_text}) at {result.destination}")
    kept = len(files) - len(result.copied)
    copied = f"Copied {len(result.copied)} of {len(files)} files ({human_bytes(result.copied_bytes)})"
    ctx.out.line(
        f"{copied}; {kept} already there"
        + (f"; removed {len(result.removed)} stale" if result.removed else "")
    )
    ctx.out.line(
        f"Verified: {len(files)} file sizes ({human_bytes(total)}) and "
        f"{result.verified_headers} safetensors headers; base_model.json records the copy."
    )
    if local:
        ctx.out.line(
            f"Runs on {model_id} can start now on the local stack: its trainer reads these files in place."
        )
    else:
        ctx.out.line(
            f"Runs on {model_id} can start now: each training job starts about {minutes} minutes after its "
            f"run (instance start-up, then copying {human_bytes(total)} of weights onto it)."
        )
    return 0
