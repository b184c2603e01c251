"""The API may read the staged base models' manifests (the run-start preflight, PRODUCT.md §9.1), nothing else
under base-models/."""

from __future__ import annotations

from typing import Any

from tests.infra.test_infra_functions import _policy_statements, _resources_of


def test_api_function_reads_only_the_staged_manifests(dev: Any) -> None:
    bucket_arn = {"Fn::GetAtt": [dev.logical_id(dev.stack.data.bucket), "Arn"]}
    manifests = {"Fn::Join": ["", [bucket_arn, "/base-models/*/base_model.json"]]}
    statements = _policy_statements(dev, dev.stack.api.api_function)
    (read,) = (s for s in statements if manifests in _resources_of(s))
    assert "s3:GetObject*" in read["Action"]
    assert not any(action.startswith(("s3:Put", "s3:Delete")) for action in read["Action"])
    base_models = [
        resource
        for statement in statements
        for resource in _resources_of(statement)
        if "base-models" in str(resource)
    ]
    assert base_models == [manifests]
