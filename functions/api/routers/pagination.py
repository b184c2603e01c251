"""The `page` / `per_page` query parameters every list endpoint takes (PRODUCT.md §2.3)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

Page = Annotated[int, Query(ge=1, description="Page number, from 1.")]
PerPage = Annotated[int, Query(ge=1, le=100, description="Items per page, 1–100.")]
