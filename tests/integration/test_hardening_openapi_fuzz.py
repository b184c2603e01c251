"""Schema-based fuzzing: every operation of /openapi.json, in process, answers as the document says.

A few generated requests per operation (valid and invalid ones), with a fixed seed so CI runs are
repeatable: no 5xx, every status documented, every body and header matching its schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from functions.api.handler import BASE_PATH, app
from functions.api.openapi import openapi_document
from tests.api_client import ApiClient
from tests.conftest import emulated_aws

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


class GatewayApp:
    """The local gateway as a WSGI application, which schemathesis calls without a socket.

    The gateway is the current test's (each test has its own emulated AWS), set by a fixture.
    """

    gateway: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            name[5:].replace("_", "-").title(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        path = urlsplit(raw_uri).path if raw_uri else environ["PATH_INFO"]
        response = self.gateway.handle(
            environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""), headers, body
        )
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", response.headers)
        return [response.body]


APP = GatewayApp()
# The document the server serves at /openapi.json (built from the routes, no AWS needed). Only the
# fuzzing phase, positive and negative: the coverage phase's thousand-odd cases cost a minute.
schema = schemathesis.openapi.from_dict(
    json.loads(openapi_document(app, BASE_PATH)),
    config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}}),
)
schema.app = APP


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    """One emulated AWS for every operation (as the `aws` fixture, once per module): state builds up."""
    from functions.api.handler import lambda_handler as api
    from functions.authorizer.handler import lambda_handler as authorizer
    from tests.api_client import new_account
    from tt_local.gateway import LocalGateway

    with pytest.MonkeyPatch.context() as patch, emulated_aws(patch, tmp_path_factory.mktemp("jobs")):
        APP.gateway = LocalGateway(api, authorizer)
        try:
            yield new_account(APP.gateway, "fuzz")
        finally:
            APP.gateway = None


def test_the_document_is_the_one_served(fuzzed: ApiClient) -> None:
    served = fuzzed.get("/openapi.json")
    assert served.status == 200 and served.json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same requests on every run
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as generated
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Any, fuzzed: ApiClient) -> None:
    response = case.call(headers={"Authorization": f"Bearer {fuzzed.key}"})
    case.validate_response(response, checks=CHECKS)


# --- what the fuzzing cannot see -----------------------------------------------------------------

DOCUMENT: dict[str, Any] = schema.raw_schema
OPERATIONS = [
    (method, path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]
ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}


def parameter_names(method: str, path: str) -> set[str]:
    return {p["name"] for p in DOCUMENT["paths"][path][method].get("parameters", []) if p["in"] == "header"}


def test_no_content_responses_have_no_content_and_errors_have_the_envelope() -> None:
    for method, path, operation in OPERATIONS:
        responses = operation["responses"]
        for status, response in responses.items():
            assert "X-Request-Id" in response["headers"], (method, path, status)
            if status == "204":
                assert "content" not in response, (method, path)
            if int(status) >= 400:
                assert response["content"] == ENVELOPE, (method, path, status)
        assert "413" in responses and "500" in responses and "429" in responses, (method, path)
        assert "Retry-After" in responses["429"]["headers"]
        assert "422" not in responses


def test_operations_are_grouped_by_resource() -> None:
    tags = {(method, path): operation["tags"] for method, path, operation in OPERATIONS}
    assert tags[("post", "/behavior-specs")] == ["Behaviour specs"]
    assert tags[("post", "/behavior-specs/{spec_id}/runs")] == ["Runs"]
    assert tags[("get", "/runs/{run_id}")] == ["Runs"]
    assert tags[("delete", "/datasets/{dataset_id}")] == ["Datasets"]
    assert tags[("get", "/models")] == ["Models"]
    assert tags[("get", "/version")] == ["Service"]
    declared = [tag["name"] for tag in DOCUMENT["tags"]]
    assert {tag for names in tags.values() for tag in names} == set(declared)


def test_the_request_and_response_headers_are_declared() -> None:
    assert parameter_names("post", "/behavior-specs") == {
        "Idempotency-Key",
        "X-Tuned-Tensor-Action-Id",
        "X-Tuned-Tensor-Operation",
    }
    assert parameter_names("put", "/behavior-specs/{spec_id}") == {
        "If-Match",
        "X-Tuned-Tensor-Expected-Updated-At",
        "X-Tuned-Tensor-Action-Id",
        "X-Tuned-Tensor-Operation",
    }
    assert parameter_names("post", "/behavior-specs/{spec_id}/runs") == {"Idempotency-Key"}
    paths = DOCUMENT["paths"]
    assert set(paths["/behavior-specs"]["post"]["responses"]["201"]["headers"]) == {
        "X-Request-Id",
        "ETag",
        "Idempotent-Replayed",
    }
    for method in ("get", "put"):
        assert paths["/behavior-specs/{spec_id}"][method]["responses"]["200"]["headers"]["ETag"]["required"]
    assert (
        "Idempotent-Replayed"
        in paths["/behavior-specs/{spec_id}/runs"]["post"]["responses"]["201"]["headers"]
    )


def test_put_fields_are_nullable_only_where_the_server_takes_null() -> None:
    properties = DOCUMENT["components"]["schemas"]["UpdateBehaviorSpecRequest"]["properties"]
    for name in ("name", "guidelines", "constraints", "examples", "base_model", "eval_cases"):
        assert "null" not in json.dumps(properties[name]), name
    for name in ("description", "system_prompt"):
        assert {"type": "null"} in properties[name]["anyOf"], name


def test_base_model_lists_the_catalogue_ids_and_aliases() -> None:
    from tt_core.models.base_models import CANONICAL_IDS, canonical_base_model

    schemas = DOCUMENT["components"]["schemas"]
    for name in ("CreateBehaviorSpecRequest", "UpdateBehaviorSpecRequest"):
        field = schemas[name]["properties"]["base_model"]
        [listed] = [option["enum"] for option in field.get("anyOf", [field]) if "enum" in option]
        assert set(CANONICAL_IDS) <= set(listed) and {"tiny-chat", "Qwen/Qwen3.5-2B-Base"} <= set(listed)
        assert all(canonical_base_model(value) in CANONICAL_IDS for value in listed)
