"""GET /version (PRODUCT.md §13); /openapi.json and /docs are served by the resolver itself."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from functions.api.http import ok
from functions.api.routers.docs import documented
from tt_core import __version__, wiring

router = APIGatewayRouter()

# Capabilities that hold in every deployment of this release; Claude-backed ones join when configured.
BASE_CAPABILITIES = [
    "idempotency_keys",
    "spec_concurrency_guards",
    # Agent action ids and operation names on spec writes (PRODUCT.md §2.5, §2.6).
    "local_agent_spec_mutation_guards_v1",
]
# A Claude provider (Anthropic API key or Bedrock) is configured: augmentation and judge use it.
LLM_CAPABILITIES = ["llm_augmentation", "llm_judge"]
# The local stack generates playground completions with the `tt models serve` runtime (PRODUCT.md §12).
LOCAL_CAPABILITIES = ["playground_inference"]


class VersionInfo(BaseModel):
    version: str
    api_version: Literal["v1"]
    mode: Literal["aws", "local"]
    default_base_model: str
    capabilities: list[str]


@router.get("/version", **documented(200, VersionInfo, "Version and capabilities", public=True))
def version() -> Response[Any]:
    settings = wiring.settings()
    info = VersionInfo(
        version=__version__,
        api_version="v1",
        mode=settings.mode,
        default_base_model=settings.default_base_model,
        capabilities=[
            *BASE_CAPABILITIES,
            *(LLM_CAPABILITIES if settings.llm_provider else []),
            *(LOCAL_CAPABILITIES if settings.mode == "local" else []),
        ],
    )
    return ok(info.model_dump())
