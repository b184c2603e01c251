"""Routes of /models (PRODUCT.md §11): the models completed runs registered, their downloads, delete."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.http import dump, no_content, ok, ok_list, principal
from functions.api.routers.docs import documented
from functions.api.routers.pagination import Page, PerPage
from tt_core import wiring
from tt_core.models.common import PageQuery
from tt_core.models.tuned_models import ModelDownload, TunedModel

router = APIGatewayRouter()


@router.get("/models", **documented(200, TunedModel, "List fine-tuned models", paged=True))
def list_models(page: Page = 1, per_page: PerPage = 20) -> Response[Any]:
    query = PageQuery(page=page, per_page=per_page)
    models, total = wiring.tuned_model_service().list(principal(router).account_id, query)
    return ok_list(models, total, query)


@router.get("/models/<model_id>", **documented(200, TunedModel, "Get a fine-tuned model"))
def get_model(model_id: str) -> Response[Any]:
    return ok(dump(wiring.tuned_model_service().get(principal(router).account_id, model_id)))


@router.get(
    "/models/<model_id>/download",
    **documented(200, ModelDownload, "Get a signed download URL of the model artifact (15 minutes)"),
)
def download_model(model_id: str) -> Response[Any]:
    return ok(dump(wiring.tuned_model_service().download(principal(router).account_id, model_id)))


@router.delete("/models/<model_id>", **documented(204, None, "Delete a fine-tuned model and its artifact"))
def delete_model(model_id: str) -> Response[Any]:
    wiring.tuned_model_service().delete(principal(router).account_id, model_id)
    return no_content()
