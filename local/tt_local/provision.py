"""Creates the template's tables and buckets in moto and resolves each function's environment."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from tt_core.schema import ENV_BUCKET_NAME, ENV_STATE_MACHINE_ARN, ENV_TABLE_NAME

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account: ARNs must match the ones its backends create
FUNCTION_PREFIX = "functions."  # our handlers; CDK's own custom-resource functions are not run locally


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "The local stack runs this function's handler in-process.")
    return buffer.getvalue()


_EMPTY_ZIP = _empty_zip()


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in template["Resources"].items() if v["Type"] == kind}


def physical_name(logical_id: str) -> str:
    """A stable local name: S3 wants lower case and at most 63 characters."""
    return f"tt-local-{logical_id.lower()}"[:63]


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """CloudFormation intrinsics → local values (names for Ref, fake ARNs for GetAtt)."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and argument in template["Resources"]:
            return _ref(argument, template)
        if function == "Ref":
            return {
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": "TunedTensor",
            }.get(argument, physical_name(argument))
        if function == "Fn::GetAtt":
            logical_id, _attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            kind = template["Resources"][logical_id]["Type"].split("::")[1].lower()
            resource = ("function:" if kind == "lambda" else "") + physical_name(logical_id)
            return f"arn:aws:{kind}:{REGION}:{ACCOUNT}:{resource}"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(resolve(part, template)) for part in parts)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return _SUB_VARIABLE.sub(lambda m: str(_sub_value(m.group(1), variables, template)), text)
    if isinstance(value, dict):
        return {k: resolve(v, template) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, template) for v in value]
    return value


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def _ref(logical_id: str, template: dict[str, Any]) -> str:
    """What Ref returns for a resource: the ARN for a state machine, else its (local) name."""
    name = physical_name(logical_id)
    if template["Resources"][logical_id]["Type"] == "AWS::StepFunctions::StateMachine":
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    return name


def _sub_value(variable: str, variables: dict[str, Any], template: dict[str, Any]) -> Any:
    if variable in variables:
        return resolve(variables[variable], template)
    if "." in variable:
        logical_id, attribute = variable.split(".", 1)
        return resolve({"Fn::GetAtt": [logical_id, attribute]}, template)
    return resolve({"Ref": variable}, template)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    environment: dict[str, str]


def functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """Every Lambda function of the stack, by logical id, with its environment resolved."""
    found = {}
    for logical_id, props in _resources(template, "AWS::Lambda::Function").items():
        if not str(props.get("Handler", "")).startswith(FUNCTION_PREFIX):
            continue
        variables = props.get("Environment", {}).get("Variables", {})
        environment = {k: str(resolve(v, template)) for k, v in variables.items()}
        found[logical_id] = FunctionSpec(logical_id, props["Handler"], environment)
    return found


def function_by_handler(template: dict[str, Any], handler: str) -> FunctionSpec:
    return next(spec for spec in functions(template).values() if spec.handler == handler)


def _create_table(client: Any, name: str, props: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
            for index in props["GlobalSecondaryIndexes"]
        ]
    client.create_table(**kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's CORS rule names → the S3 API's."""
    renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}
    return {renamed.get(k, k): v for k, v in rule.items()}


def _create_functions(template: dict[str, Any], session: Any) -> str:
    """Registers each function with moto's Lambda (S3 notifications need a target); code runs in-process."""
    iam, lambdas = session.client("iam", region_name=REGION), session.client("lambda", region_name=REGION)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole"}]}  # fmt: skip
    try:
        role_arn = iam.get_role(RoleName="tt-local-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName="tt-local-lambda", AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
    existing = {f["FunctionName"] for f in lambdas.list_functions()["Functions"]}
    for spec in functions(template).values():
        if physical_name(spec.logical_id) in existing:
            continue
        lambdas.create_function(
            FunctionName=physical_name(spec.logical_id),
            Runtime="python3.13",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": _EMPTY_ZIP},
            Environment={"Variables": spec.environment},
        )
    return str(role_arn)


def state_machines(template: dict[str, Any]) -> dict[str, str]:
    """Each state machine of the stack: logical id → its definition with local names and ARNs."""
    return {
        logical_id: str(resolve(props["DefinitionString"], template))
        for logical_id, props in _resources(template, "AWS::StepFunctions::StateMachine").items()
    }


def _create_state_machines(template: dict[str, Any], session: Any, role_arn: str) -> None:
    """The synthesized definitions, as they are: moto's interpreter runs the very same states."""
    client = session.client("stepfunctions", region_name=REGION)
    existing = {m["name"]: m["stateMachineArn"] for m in client.list_state_machines()["stateMachines"]}
    for logical_id, definition in state_machines(template).items():
        name = physical_name(logical_id)
        if name in existing:
            client.update_state_machine(stateMachineArn=existing[name], definition=definition)
        else:
            client.create_state_machine(name=name, definition=definition, roleArn=role_arn)


def function_handlers(template: dict[str, Any]) -> dict[str, str]:
    """Local function name → handler path, for the dispatcher."""
    return {physical_name(spec.logical_id): spec.handler for spec in functions(template).values()}


def provision(template: dict[str, Any], session: Any) -> dict[str, str]:
    """Creates what does not exist yet; returns the table, bucket and state machine the API uses."""
    dynamodb, s3 = session.client("dynamodb", region_name=REGION), session.client("s3", region_name=REGION)
    existing_tables = set(dynamodb.list_tables()["TableNames"])
    for logical_id, props in _resources(template, "AWS::DynamoDB::Table").items():
        if physical_name(logical_id) not in existing_tables:
            _create_table(dynamodb, physical_name(logical_id), props)
    existing_buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for logical_id, props in _resources(template, "AWS::S3::Bucket").items():
        name = physical_name(logical_id)
        if name not in existing_buckets:
            s3.create_bucket(Bucket=name)
        if "CorsConfiguration" in props:
            rules = [_cors_rule(rule) for rule in props["CorsConfiguration"]["CorsRules"]]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
    role_arn = _create_functions(template, session)
    _create_state_machines(template, session, role_arn)
    for props in _resources(template, "Custom::S3BucketNotifications").values():
        configuration = resolve(props["NotificationConfiguration"], template)
        s3.put_bucket_notification_configuration(
            Bucket=resolve(props["BucketName"], template), NotificationConfiguration=configuration
        )
    api = function_by_handler(template, "functions.api.handler.lambda_handler")
    return {
        "table": api.environment[ENV_TABLE_NAME],
        "bucket": api.environment[ENV_BUCKET_NAME],
        "state_machine": api.environment.get(ENV_STATE_MACHINE_ARN, ""),
    }
