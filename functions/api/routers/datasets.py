"""Routes of /datasets (PRODUCT.md §8): the three-step upload flow, reads and delete."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.http import dump, no_content, ok, ok_list, principal
from functions.api.routers.docs import documented
from functions.api.routers.pagination import Page, PerPage
from tt_core import wiring
from tt_core.models.common import PageQuery
from tt_core.models.datasets import Dataset, FinalizeDatasetRequest, UploadUrl, UploadUrlRequest

router = APIGatewayRouter()


@router.post("/datasets/upload-url", **documented(201, UploadUrl, "Request a presigned upload URL"))
def create_upload_url(body: UploadUrlRequest) -> Response[Any]:
    upload = wiring.dataset_service().create_upload(principal(router).account_id, body)
    return ok(dump(upload), status=201)


@router.post("/datasets/finalize", **documented(200, Dataset, "Name an upload and get its validation status"))
def finalize_upload(body: FinalizeDatasetRequest) -> Response[Any]:
    dataset = wiring.dataset_service().finalize(principal(router).account_id, body)
    return ok(dump(dataset))


@router.get("/datasets", **documented(200, Dataset, "List datasets", paged=True))
def list_datasets(page: Page = 1, per_page: PerPage = 20) -> Response[Any]:
    query = PageQuery(page=page, per_page=per_page)
    datasets, total = wiring.dataset_service().list(principal(router).account_id, query)
    return ok_list(datasets, total, query)


@router.get("/datasets/<dataset_id>", **documented(200, Dataset, "Get a dataset"))
def get_dataset(dataset_id: str) -> Response[Any]:
    dataset = wiring.dataset_service().get(principal(router).account_id, dataset_id)
    return ok(dump(dataset))


@router.delete("/datasets/<dataset_id>", **documented(204, None, "Delete a dataset and its file"))
def delete_dataset(dataset_id: str) -> Response[Any]:
    wiring.dataset_service().delete(principal(router).account_id, dataset_id)
    return no_content()
