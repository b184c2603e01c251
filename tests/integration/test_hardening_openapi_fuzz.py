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
from hypothesis import HealthCheck, Phase, given, settings, strategies
from schemathesis import GenerationMode, checks

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


@pytest.fixture(scope="module")
def listed_spec(fuzzed: ApiClient) -> str:
    """A spec of the fuzzed account with a cancelled and an active run (no workflow runs: the rows matter).

    Created before the fuzzing, which then also meets run rows in GET /runs.
    """
    from tests.conftest import SEED_SPEC
    from tt_core.adapters.stepfunctions import StepFunctionsStarter

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StepFunctionsStarter, "start", lambda self, run_id, state: f"arn:fake:{run_id}")
        patch.setattr(StepFunctionsStarter, "stop", lambda self, execution_arn, cause: None)
        spec = fuzzed.post("/behavior-specs", {**SEED_SPEC, "base_model": "tiny-chat"}).json()["data"]
        runs = [fuzzed.post(f"/behavior-specs/{spec['id']}/runs").json()["data"] for _ in range(2)]
        assert fuzzed.post(f"/runs/{runs[0]['id']}/cancel").status == 200
    return str(spec["id"])


@pytest.mark.parametrize("view", ["full", "summary"])
def test_run_lists_match_their_schema_in_both_views(fuzzed: ApiClient, listed_spec: str, view: str) -> None:
    auth = {"Authorization": f"Bearer {fuzzed.key}"}
    for path, parameters in (("/runs", {}), ("/behavior-specs/{spec_id}/runs", {"spec_id": listed_spec})):
        case = schema[path]["GET"].Case(path_parameters=parameters, query={"view": view})
        response = case.call(headers=auth)
        assert response.status_code == 200 and len(response.json()["data"]) == 2, response.text
        case.validate_response(response, checks=[checks.response_schema_conformance])
    detail = schema["/behavior-specs/{spec_id}"]["GET"].Case(path_parameters={"spec_id": listed_spec})
    response = detail.call(headers=auth)
    assert len(response.json()["data"]["_runs"]) == 2
    detail.validate_response(response, checks=[checks.response_schema_conformance])


def test_a_run_body_may_be_left_out_as_documented(fuzzed: ApiClient, listed_spec: str) -> None:
    for path in ("/behavior-specs/{spec_id}/runs", "/behavior-specs/{spec_id}/runs/estimate"):
        assert DOCUMENT["paths"][path]["post"]["requestBody"]["required"] is False
    for body in (None, {}):
        estimate = fuzzed.post(f"/behavior-specs/{listed_spec}/runs/estimate", body)
        assert estimate.status == 200, estimate.json()


def test_empty_values_refused_by_the_server_are_refused_by_the_document(fuzzed: ApiClient) -> None:
    spec = fuzzed.post("/behavior-specs", {"name": "e", "examples": [{"input": "a", "output": "b"}]})
    put = DOCUMENT["paths"]["/behavior-specs/{spec_id}"]["put"]["parameters"]
    for name in ("If-Match", "X-Tuned-Tensor-Expected-Updated-At"):
        [header] = [parameter["schema"] for parameter in put if parameter["name"] == name]
        assert header["minLength"] == 1 and header["pattern"] == "\\S", name
        for blank in ("", "  "):
            refused = fuzzed.put(
                f"/behavior-specs/{spec.json()['data']['id']}", {"name": "x"}, headers={name: blank}
            )
            assert refused.status == 400, (name, blank)
    [text, null] = DOCUMENT["components"]["schemas"]["UploadUrlRequest"]["properties"]["contentType"]["anyOf"]
    assert text["minLength"] == 1 and null == {"type": "null"}
    upload = {"name": "rows", "filename": "rows.jsonl", "size": 10}
    empty = fuzzed.post("/datasets/upload-url", {**upload, "contentType": ""})
    assert empty.status == 400 and empty.json()["error"]["details"][0]["field"] == "contentType"
    assert fuzzed.post("/datasets/upload-url", {**upload, "contentType": None}).status == 201


def test_the_document_is_the_one_served(fuzzed: ApiClient) -> None:
    served = fuzzed.get("/openapi.json")
    assert served.status == 200 and served.json() == schema.raw_schema


# One pytest item per operation, with its own id: schemathesis' own `schema.parametrize()` gives all its
# items one node id under pytest 9, and the xdist workers of `make test` run one item per node id.
FUZZED_OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", FUZZED_OPERATIONS, ids=lambda operation: operation.label)
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same requests on every run
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as generated
    suppress_health_check=list(HealthCheck),
)
@given(data=strategies.data())
def test_every_operation_answers_as_documented(operation: Any, fuzzed: ApiClient, data: Any) -> None:
    valid_or_not = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
    case = data.draw(strategies.one_of(valid_or_not))
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
