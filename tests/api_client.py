"""A tiny test client over the in-process LocalGateway, with an account and key per client."""

from __future__ import annotations

import json
from typing import Any

from tt_local.gateway import GatewayResponse, LocalGateway


class ApiClient:
    def __init__(self, gateway: LocalGateway, key: str | None) -> None:
        self._gateway = gateway
        self.key = key

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        query: str = "",
        raw: bytes | None = None,
    ) -> GatewayResponse:
        sent = {"Content-Type": "application/json"}
        if self.key:
            sent["Authorization"] = f"Bearer {self.key}"
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        return self._gateway.handle(method, f"/api/v1{path}", query, sent, data)

    def get(self, path: str, **kwargs: Any) -> GatewayResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> GatewayResponse:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> GatewayResponse:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> GatewayResponse:
        return self.request("DELETE", path, **kwargs)


def new_account(gateway: LocalGateway, name: str = "acme") -> ApiClient:
    from tt_core import wiring

    _, key = wiring.api_key_service().create_account(name)
    return ApiClient(gateway, key.key)
