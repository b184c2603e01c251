"""Routes of /behavior-specs (PRODUCT.md §6)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.http import (
    dump,
    etag,
    expected_updated_at,
    idempotency_key,
    no_content,
    ok,
    ok_list,
    principal,
)
from functions.api.routers.docs import documented
from functions.api.routers.pagination import Page, PerPage
from tt_core import wiring
from tt_core.models.behavior_specs import (
    BehaviorSpec,
    BehaviorSpecDetail,
    BehaviorSpecListItem,
    CreateBehaviorSpecRequest,
    UpdateBehaviorSpecRequest,
)
from tt_core.models.common import PageQuery

router = APIGatewayRouter()


@router.post("/behavior-specs", **documented(201, BehaviorSpec, "Create a behaviour spec"))
def create_spec(body: CreateBehaviorSpecRequest) -> Response[Any]:
    account_id = principal(router).account_id

    def create() -> tuple[int, Any]:
        return 201, dump(wiring.spec_service().create(account_id, body).public())

    result = wiring.idempotency_service().run(
        account_id=account_id,
        scope="POST /behavior-specs",
        key=idempotency_key(router),
        body=router.current_event.json_body,
        action=create,
    )
    headers = etag(result.body["updated_at"])
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return ok(result.body, status=result.status, headers=headers)


@router.get("/behavior-specs", **documented(200, BehaviorSpecListItem, "List behaviour specs", paged=True))
def list_specs(page: Page = 1, per_page: PerPage = 20) -> Response[Any]:
    query = PageQuery(page=page, per_page=per_page)
    items, total = wiring.spec_service().list(principal(router).account_id, query)
    return ok_list(items, total, query)


@router.get("/behavior-specs/<spec_id>", **documented(200, BehaviorSpecDetail, "Get a behaviour spec"))
def get_spec(spec_id: str) -> Response[Any]:
    spec = wiring.spec_service().get(principal(router).account_id, spec_id)
    return ok(dump(spec), headers=etag(spec.updated_at))


@router.put("/behavior-specs/<spec_id>", **documented(200, BehaviorSpec, "Update a behaviour spec"))
def update_spec(spec_id: str, body: UpdateBehaviorSpecRequest) -> Response[Any]:
    spec = wiring.spec_service().update(
        principal(router).account_id, spec_id, body, expected_updated_at=expected_updated_at(router)
    )
    return ok(dump(spec.public()), headers=etag(spec.updated_at))


@router.delete("/behavior-specs/<spec_id>", **documented(204, None, "Delete a behaviour spec"))
def delete_spec(spec_id: str) -> Response[Any]:
    wiring.spec_service().delete(principal(router).account_id, spec_id)
    return no_content()
