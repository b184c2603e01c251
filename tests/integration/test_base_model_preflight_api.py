"""The 409 base_model_unavailable of run start and estimate (PRODUCT.md §2.4, §9.1) in the API description."""

from __future__ import annotations

from typing import Any


def test_start_and_estimate_declare_base_model_unavailable(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/behavior-specs/{spec_id}/runs", "/behavior-specs/{spec_id}/runs/estimate"):
        conflict = paths[path]["post"]["responses"]["409"]
        assert "`base_model_unavailable`" in conflict["description"]
        assert "tt admin stage-base-model" in conflict["description"]
        assert conflict["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
    assert (
        "`run_limit_reached`"
        in paths["/behavior-specs/{spec_id}/runs"]["post"]["responses"]["409"]["description"]
    )
    # Other routes keep the generic conflict.
    assert (
        "base_model_unavailable"
        not in paths["/runs/{run_id}/cancel"]["post"]["responses"]["409"]["description"]
    )
