"""Routes of /api-keys (PRODUCT.md §4)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.http import dump, no_content, ok, ok_list, principal
from functions.api.routers.docs import documented
from functions.api.routers.pagination import Page, PerPage
from tt_core import wiring
from tt_core.models.api_keys import ApiKey, CreateApiKeyRequest, CreatedApiKey
from tt_core.models.common import PageQuery

router = APIGatewayRouter()


@router.post("/api-keys", **documented(201, CreatedApiKey, "Create an API key"))
def create_key(body: CreateApiKeyRequest) -> Response[Any]:
    key = wiring.api_key_service().create_key(principal(router).account_id, body.name)
    return ok(dump(key), status=201)


@router.get("/api-keys", **documented(200, ApiKey, "List API keys, revoked ones included", paged=True))
def list_keys(page: Page = 1, per_page: PerPage = 20) -> Response[Any]:
    query = PageQuery(page=page, per_page=per_page)
    keys, total = wiring.api_key_service().list_keys(principal(router).account_id, query)
    return ok_list(keys, total, query)


@router.delete("/api-keys/<key_id>", **documented(204, None, "Revoke an API key"))
def revoke_key(key_id: str) -> Response[Any]:
    wiring.api_key_service().revoke_key(principal(router).account_id, key_id)
    return no_content()
