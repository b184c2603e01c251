"""`tt admin create-account`: the operator's path to a first account and key, straight to AWS (§14.6)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tt_cli.context import Context
from tt_cli.errors import CliError
from tt_core.schema import ENV_BUCKET_NAME, ENV_TABLE_NAME

DEFAULT_STACK = "TunedTensor"
TABLE_TYPE = "AWS::DynamoDB::Table"
BUCKET_TYPE = "AWS::S3::Bucket"
FUNCTION_TYPE = "AWS::Lambda::Function"


def register(subparsers: Any) -> None:
    admin = subparsers.add_parser("admin", help="operator commands (use AWS credentials, not an API key)")
    commands = admin.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    create = commands.add_parser("create-account", help="create an account and its first API key")
    create.add_argument("--name", required=True, help="account name")
    create.add_argument("--stack", default=DEFAULT_STACK, help="CloudFormation stack (default: %(default)s)")
    create.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    create.set_defaults(func=create_account_command)


def _pick(resources: list[dict[str, Any]], kind: str, preferred: Any) -> list[dict[str, Any]]:
    """The stack's resources of a type, narrowed by a logical-id preference when there are several."""
    found = [r for r in resources if r.get("ResourceType") == kind and r.get("PhysicalResourceId")]
    if len(found) > 1:
        narrowed = [r for r in found if preferred(str(r.get("LogicalResourceId", "")).lower())]
        found = narrowed or found
    return found


def _function_environment(session: Any, resources: list[dict[str, Any]]) -> dict[str, str]:
    """TT_TABLE_NAME / TT_BUCKET_NAME as the stack's functions see them: the definitive answer."""
    client = session.client("lambda")
    for resource in resources:
        if resource.get("ResourceType") != FUNCTION_TYPE or not resource.get("PhysicalResourceId"):
            continue
        try:
            variables = client.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
        except Exception:  # no permission or a function being replaced: try the next one
            continue
        env = (variables.get("Environment") or {}).get("Variables") or {}
        if env.get(ENV_TABLE_NAME) and env.get(ENV_BUCKET_NAME):
            return {"table": env[ENV_TABLE_NAME], "bucket": env[ENV_BUCKET_NAME]}
    return {}


def find_storage(session: Any, stack: str) -> dict[str, str]:
    """The data table and bucket of the deployment's stack."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        resources = session.client("cloudformation").describe_stack_resources(StackName=stack)[
            "StackResources"
        ]
    except ClientError as error:
        raise CliError.local(
            f"Cannot read stack {stack}: {error.response['Error'].get('Message', error)}"
        ) from None
    except BotoCoreError as error:
        raise CliError.local(f"Cannot read stack {stack}: {error}") from None
    tables = _pick(resources, TABLE_TYPE, lambda logical: "table" in logical)
    # The datasets bucket, not the access-log bucket the stack also has.
    buckets = _pick(resources, BUCKET_TYPE, lambda logical: "log" not in logical and "data" in logical)
    if len(tables) == 1 and len(buckets) == 1:
        return {"table": tables[0]["PhysicalResourceId"], "bucket": buckets[0]["PhysicalResourceId"]}
    found = _function_environment(session, resources)
    if found:
        return found
    names = ", ".join(r["PhysicalResourceId"] for r in [*tables, *buckets]) or "none"
    raise CliError.local(f"Cannot tell the data table and bucket of stack {stack} apart (found: {names})")


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
