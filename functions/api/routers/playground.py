"""Routes of /playground (PRODUCT.md §12): model inventory; completions answer on the local stack only."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.http import dump, ok, principal
from functions.api.routers.docs import documented
from tt_core import wiring
from tt_core.models.common import ErrorEnvelope
from tt_core.models.playground import PlaygroundCompletion, PlaygroundCompletionRequest, PlaygroundModels

router = APIGatewayRouter()


@router.get("/playground/models", **documented(200, PlaygroundModels, "Base and fine-tuned models"))
def playground_models() -> Response[Any]:
    return ok(dump(wiring.playground_service().models(principal(router).account_id)))


def _completion_docs() -> dict[str, Any]:
    docs = documented(200, PlaygroundCompletion, "Chat completion (local stack; 501 on AWS)")
    docs["responses"][501] = {
        "description": "Hosted inference is unavailable (`playground_unavailable`).",
        "content": {"application/json": {"model": ErrorEnvelope}},
    }
    return docs


@router.post("/playground/completions", **_completion_docs())
def playground_completion(body: PlaygroundCompletionRequest) -> Response[Any]:
    completion = wiring.playground_service().complete(principal(router).account_id, body)
    return ok(dump(completion))
