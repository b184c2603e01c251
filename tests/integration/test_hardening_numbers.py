"""Numbers and types in request bodies: JSON only, strict types, storable ranges, no burnt run numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.api_client import ApiClient, new_account
from tests.conftest import SEED_SPEC, emulated_aws

TINY_SPEC = {**SEED_SPEC, "base_model": "tiny-chat"}
ROWS = b"".join(b'{"input": "question %d", "output": "answer %d"}\n' % (i, i) for i in range(20))


def _no_workflow(patch: pytest.MonkeyPatch) -> None:
    """Runs are stored but no workflow starts: these tests are about what the start request stores."""
    from tt_core.adapters.stepfunctions import StepFunctionsStarter

    patch.setattr(StepFunctionsStarter, "start", lambda self, run_id, state: f"arn:fake:{run_id}")
    patch.setattr(StepFunctionsStarter, "stop", lambda self, execution_arn, cause: None)


class Stack(NamedTuple):
    client: ApiClient
    aws: dict[str, Any]
    gateway: Any


@pytest.fixture(scope="module")
def numbers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One emulated AWS for the module, an active-run limit out of reach: every accepted start is stored."""
    from functions.api.handler import lambda_handler as api
    from functions.authorizer.handler import lambda_handler as authorizer
    from tt_local.gateway import LocalGateway

    jobs = tmp_path_factory.mktemp("jobs")
    with pytest.MonkeyPatch.context() as patch, emulated_aws(patch, jobs, TT_MAX_ACTIVE_RUNS="100000") as aws:
        _no_workflow(patch)
        gateway = LocalGateway(api, authorizer)
        yield Stack(new_account(gateway, "numbers"), aws, gateway)


@pytest.fixture
def api(numbers: Stack) -> ApiClient:
    return numbers.client


@pytest.fixture
def limit_of_two(numbers: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiClient]:
    """A new account under the default limit of 2 active runs."""
    from tt_core import wiring

    monkeypatch.setenv("TT_MAX_ACTIVE_RUNS", "2")
    wiring.reset()  # the services hold the settings they were built with
    yield new_account(numbers.gateway, "limited")
    monkeypatch.undo()
    wiring.reset()


def new_spec(client: ApiClient, **fields: Any) -> str:
    response = client.post("/behavior-specs", {**TINY_SPEC, **fields})
    assert response.status == 201, response.json()
    return str(response.json()["data"]["id"])


def post_raw(client: ApiClient, path: str, text: str) -> Any:
    return client.post(path, raw=text.encode())


def assert_refused(response: Any, field: str) -> None:
    assert response.status == 400, (response.status, response.json())
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [detail["field"] for detail in error["details"]] == [field], error


def start_numbers(client: ApiClient, spec_id: str) -> list[int]:
    runs = client.get(f"/behavior-specs/{spec_id}/runs", query="view=summary&per_page=100").json()["data"]
    return sorted(run["run_number"] for run in runs)


# --- point 3: every accepted number fits storage; a refusal burns no run number -------------------

UNSTORABLE = [
    ('{"hyperparameters": {"learning_rate": 1e308}}', "hyperparameters.learning_rate"),
    ('{"hyperparameters": {"learning_rate": 5e-324}}', "hyperparameters.learning_rate"),
    ('{"hyperparameters": {"learning_rate": 1e-131}}', "hyperparameters.learning_rate"),
    ('{"hyperparameters": {"learning_rate": 2}}', "hyperparameters.learning_rate"),
    ('{"hyperparameters": {"lora_dropout": 5e-324}}', "hyperparameters.lora_dropout"),
    ('{"hyperparameters": {"lora_dropout": -1e-200}}', "hyperparameters.lora_dropout"),
    # Not JSON: 1e999 reads as infinity, NaN and Infinity are no JSON tokens.
    ('{"hyperparameters": {"learning_rate": 1e999}}', "body"),
    ('{"hyperparameters": {"learning_rate": NaN}}', "body"),
    ('{"hyperparameters": {"lora_dropout": -Infinity}}', "body"),
    ('{"hyperparameters": {"n_epochs": ' + "9" * 5000 + "}}", "body"),
]


@pytest.mark.parametrize(("text", "field"), UNSTORABLE)
def test_unstorable_numbers_are_refused_alike_and_burn_no_run_number(
    api: ApiClient, text: str, field: str
) -> None:
    spec_id = new_spec(api)
    estimate = post_raw(api, f"/behavior-specs/{spec_id}/runs/estimate", text)
    start = post_raw(api, f"/behavior-specs/{spec_id}/runs", text)
    assert_refused(estimate, field)
    assert_refused(start, field)
    assert start.json() == estimate.json()
    accepted = api.post(f"/behavior-specs/{spec_id}/runs", {})
    assert accepted.status == 201, accepted.json()
    assert accepted.json()["data"]["run_number"] == 1
    assert start_numbers(api, spec_id) == [1]


def test_a_split_ratio_below_the_storable_range_is_refused(numbers: Stack) -> None:
    from tests.integration.test_datasets_api import upload

    client = numbers.client
    dataset = upload(client, numbers.aws, ROWS)
    assert dataset["status"] == "validated", dataset
    spec_id = new_spec(client)
    body = {"dataset_id": dataset["id"], "split_ratios": {"train": 0.9, "validation": 0.1, "test": 1e-200}}
    for path in ("runs/estimate", "runs"):
        assert_refused(client.post(f"/behavior-specs/{spec_id}/{path}", body), "split_ratios.test")
    body["split_ratios"]["test"] = 0
    accepted = client.post(f"/behavior-specs/{spec_id}/runs", body)
    assert accepted.status == 201, accepted.json()
    assert accepted.json()["data"]["run_number"] == 1
    assert accepted.json()["data"]["split_ratios"] == {"train": 0.9, "validation": 0.1, "test": 0.0}


def test_the_edges_of_the_ranges_are_stored_exactly(api: ApiClient) -> None:
    spec_id = new_spec(api)
    for learning_rate, dropout in ((1e-130, 0.999999999999), (1, 1e-130), (1e-5, 0)):
        body = {"hyperparameters": {"learning_rate": learning_rate, "lora_dropout": dropout}}
        response = api.post(f"/behavior-specs/{spec_id}/runs", body)
        assert response.status == 201, response.json()
        stored = api.get(f"/runs/{response.json()['data']['id']}").json()["data"]["hyperparameters"]
        assert (stored["learning_rate"], stored["lora_dropout"]) == (learning_rate, dropout)


def test_a_start_refused_for_the_run_limit_burns_no_run_number(limit_of_two: ApiClient) -> None:
    client = limit_of_two
    spec_id = new_spec(client)
    first, second = (client.post(f"/behavior-specs/{spec_id}/runs", {}) for _ in range(2))
    assert (first.status, second.status) == (201, 201)
    refused = client.post(f"/behavior-specs/{spec_id}/runs", {})
    assert refused.status == 409 and refused.json()["error"]["code"] == "run_limit_reached"
    assert client.post(f"/runs/{first.json()['data']['id']}/cancel").status == 200
    third = client.post(f"/behavior-specs/{spec_id}/runs", {})
    assert third.status == 201, third.json()
    assert third.json()["data"]["run_number"] == 3


# --- point 5: strict types, no silent changes ----------------------------------------------------

LOOSE = [
    ({"hyperparameters": {"n_epochs": "3"}}, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"n_epochs": True}}, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"batch_size": "8"}}, "hyperparameters.batch_size"),
    ({"hyperparameters": {"learning_rate": "0.001"}}, "hyperparameters.learning_rate"),
    ({"hyperparameters": {"lora_dropout": False}}, "hyperparameters.lora_dropout"),
    ({"augment": "yes"}, "augment"),
    ({"augment": 1}, "augment"),
    ({"use_llm_judge": "false"}, "use_llm_judge"),
]


@pytest.mark.parametrize(("body", "field"), LOOSE)
def test_no_string_or_boolean_stands_in_for_another_type(
    api: ApiClient, body: dict[str, Any], field: str
) -> None:
    spec_id = new_spec(api)
    for path in ("runs/estimate", "runs"):
        assert_refused(api.post(f"/behavior-specs/{spec_id}/{path}", body), field)
    assert start_numbers(api, spec_id) == []


def test_an_integer_is_still_a_number(api: ApiClient) -> None:
    spec_id = new_spec(api)
    response = api.post(f"/behavior-specs/{spec_id}/runs", {"hyperparameters": {"learning_rate": 1}})
    assert response.status == 201, response.json()
    assert response.json()["data"]["hyperparameters"]["learning_rate"] == 1.0


def test_other_request_bodies_are_strict_too(api: ApiClient) -> None:
    upload = {"name": "rows", "filename": "rows.jsonl", "size": "10"}
    assert_refused(api.post("/datasets/upload-url", upload), "size")
    assert_refused(api.post("/api-keys", {"name": 7}), "name")
    completion = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}
    assert_refused(api.post("/playground/completions", {**completion, "max_tokens": "5"}), "max_tokens")
    assert_refused(api.post("/playground/completions", {**completion, "temperature": True}), "temperature")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_eval_cases_refuse_what_json_cannot_hold(api: ApiClient, token: str) -> None:
    body = json.dumps({**TINY_SPEC, "eval_cases": [{"threshold": 0.5}]}).replace("0.5", token)
    assert_refused(post_raw(api, "/behavior-specs", body), "body")
    spec_id = new_spec(api)
    change = api.request(
        "PUT", f"/behavior-specs/{spec_id}", raw=f'{{"eval_cases": [{{"x": {token}}}]}}'.encode()
    )
    assert_refused(change, "body")
    assert api.get(f"/behavior-specs/{spec_id}").json()["data"]["eval_cases"] == []


def test_eval_cases_keep_extreme_numbers_unchanged(api: ApiClient) -> None:
    cases = [
        {"big": 1e308, "tiny": 5e-324, "huge": 10**40, "nested": [{"n": -0.0, "m": 123456789.123456789}]}
    ]
    spec_id = new_spec(api, eval_cases=cases)
    assert api.get(f"/behavior-specs/{spec_id}").json()["data"]["eval_cases"] == cases


def test_a_nan_reaching_the_model_is_refused_there_too() -> None:
    from pydantic import ValidationError

    from tt_core.models.behavior_specs import CreateBehaviorSpecRequest
    from tt_core.models.runs import StartRunRequest

    with pytest.raises(ValidationError):
        CreateBehaviorSpecRequest.model_validate({**TINY_SPEC, "eval_cases": [{"x": [math.nan]}]})
    with pytest.raises(ValidationError):
        StartRunRequest.model_validate({"hyperparameters": {"learning_rate": math.inf}})


# --- the property: any run body is answered 2xx or 4xx, alike by estimate and start ---------------

EXTREMES = [0, -0.0, 1, -1, 0.5, 1e-130, 1e-131, 5e-324, 1e-200, 1e308, 2**63, 10**40, -(10**400)]
numbers_ = st.one_of(
    st.sampled_from(EXTREMES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
)
scalars = st.one_of(
    st.none(), st.booleans(), numbers_, st.text(max_size=8), st.sampled_from(["3", "yes", ""])
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
# Values the server takes, so that most bodies get as far as storage with one odd value in them.
VALID_HYPERPARAMETERS = {
    "n_epochs": st.integers(1, 20),
    "learning_rate": st.floats(1e-130, 1) | st.sampled_from([1e-130, 1e-5, 1]),
    "batch_size": st.integers(1, 4096),
    "lora_rank": st.integers(1, 1024),
    "lora_alpha": st.integers(1, 8192),
    "lora_dropout": st.floats(0, 0.999) | st.sampled_from([0, 1e-130]),
    "max_seq_length": st.integers(1, 1_000_000),
    "long_examples": st.sampled_from(["error", "truncate", "skip"]),
    "max_eval_examples": st.integers(1, 10_000),
    "max_test_eval_examples": st.integers(1, 10_000),
    "max_output_tokens": st.integers(64, 1_000_000),
    "eval_reserved_output_tokens": st.integers(0, 64),
}
valid_body = st.fixed_dictionaries(
    {},
    optional={
        "augment": st.booleans(),
        "use_llm_judge": st.booleans(),
        "hyperparameters": st.fixed_dictionaries({}, optional=VALID_HYPERPARAMETERS),
    },
)
SPOTS = [None, "augment", "use_llm_judge", "dataset_id", "split_ratios", "hyperparameters",
         *(f"hyperparameters.{name}" for name in VALID_HYPERPARAMETERS)]  # fmt: skip


@st.composite
def run_bodies(draw: st.DrawFn) -> Any:
    """A valid body with at most one odd value (a number at the edges, a wrong type, junk), or junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(junk)
    body: dict[str, Any] = draw(valid_body)
    spot = draw(st.sampled_from(SPOTS))
    if spot is None:
        return body
    odd = draw(numbers_ | junk)
    if spot.startswith("hyperparameters."):
        body.setdefault("hyperparameters", {})[spot.split(".", 1)[1]] = odd
    else:
        body[spot] = odd
    return body


@pytest.fixture(scope="module")
def fuzzed_spec(numbers: Stack) -> dict[str, Any]:
    return {"id": new_spec(numbers.client), "started": 0}


@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(body=run_bodies())
def test_any_run_body_is_answered_2xx_or_4xx_alike(
    api: ApiClient, fuzzed_spec: dict[str, Any], body: Any
) -> None:
    text = json.dumps(body)  # NaN and ±Infinity as Python writes them: the server must refuse them
    spec_id = fuzzed_spec["id"]
    estimate = post_raw(api, f"/behavior-specs/{spec_id}/runs/estimate", text)
    start = post_raw(api, f"/behavior-specs/{spec_id}/runs", text)
    for response in (estimate, start):
        assert 200 <= response.status < 500, (response.status, response.json())
        if response.status >= 400:
            assert set(response.json()) == {"error"} and response.json()["error"]["code"], response.json()
    assert (estimate.status, start.status) in ((200, 201), (400, 400), (404, 404)), (estimate, start)
    if start.status != 201:
        assert start.json() == estimate.json()
        return
    fuzzed_spec["started"] += 1
    run = api.get(f"/runs/{start.json()['data']['id']}").json()["data"]
    assert run["run_number"] == fuzzed_spec["started"]  # refusals in between burnt no number
    given_values = (body.get("hyperparameters") or {}) if isinstance(body, dict) else {}
    for name in ("learning_rate", "lora_dropout", "n_epochs", "batch_size", "long_examples"):
        if name in given_values:  # stored unchanged, never null
            assert run["hyperparameters"][name] == given_values[name], name
