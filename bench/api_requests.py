"""In-process API latency over moto: create, get and list specs, p50/p99, against raw DynamoDB calls.

Each request goes through the local gateway (the authorizer, then the API handler) exactly as
`tt local up` serves it, minus the socket. The baseline is the bare boto3 call each endpoint needs at
least once (put_item, get_item, query) on the same moto table, so the table shows what the product's
layers add. Prints a table and writes bench/results/api_requests.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "core" / "python"), str(ROOT / "cli")]
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
os.environ.pop("AWS_ENDPOINT_URL", None)

REQUESTS = 300
SPEC = {
    "name": "Customer Support Bot",
    "system_prompt": "You are a helpful support agent.",
    "guidelines": ["Be concise"],
    "constraints": ["Never promise refunds"],
    "examples": [{"input": f"Question {i}?", "output": f"Answer {i}."} for i in range(20)],
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(action: Callable[[], object], runs: int = REQUESTS) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    import boto3
    from moto import mock_aws

    from functions.api.handler import lambda_handler as api
    from functions.authorizer.handler import lambda_handler as authorizer
    from tt_core import wiring
    from tt_local.gateway import LocalGateway
    from tt_local.provision import provision
    from tt_local.template import load_template

    with mock_aws():
        names = provision(load_template(), boto3.session.Session())
        os.environ.update(TT_TABLE_NAME=names["table"], TT_BUCKET_NAME=names["bucket"], TT_MODE="local")
        wiring.reset()
        _, key = wiring.api_key_service().create_account("bench")
        gateway = LocalGateway(api, authorizer)
        headers = {"Authorization": f"Bearer {key.key}", "Content-Type": "application/json"}
        body = json.dumps(SPEC).encode()

        def call(method: str, path: str, data: bytes = b"", query: str = "") -> dict[str, object]:
            response = gateway.handle(method, f"/api/v1{path}", query, headers, data)
            assert response.status < 300, response.body
            return response.json() or {}

        # Reads run against an account holding 20 specs; creates come last.
        spec_ids = [call("POST", "/behavior-specs", body)["data"]["id"] for _ in range(20)]  # type: ignore[index]
        spec_id = spec_ids[0]
        results = {
            "get": timed(lambda: call("GET", f"/behavior-specs/{spec_id}")),
            "list (20 per page)": timed(lambda: call("GET", "/behavior-specs", query="per_page=20")),
            "create": timed(lambda: call("POST", "/behavior-specs", body)),
        }

        client = boto3.client("dynamodb")
        item = {"pk": {"S": "BENCH"}, "sk": {"S": "ITEM"}, "doc": {"S": json.dumps(SPEC)}}
        baseline = {
            "create": timed(lambda: client.put_item(TableName=names["table"], Item=item)),
            "get": timed(
                lambda: client.get_item(TableName=names["table"], Key={"pk": item["pk"], "sk": item["sk"]})
            ),
            "list (20 per page)": timed(
                lambda: client.query(
                    TableName=names["table"],
                    KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "BENCH"}},
                    Limit=20,
                )
            ),
        }

    print(f"{'endpoint':<20} {'API p50':>9} {'API p99':>9} {'boto3 p50':>10} {'boto3 p99':>10}", end="")
    print(f"  (ms, {REQUESTS} requests)")
    report = {}
    for name, samples in results.items():
        p50, p99 = percentiles(samples)
        b50, b99 = percentiles(baseline[name])
        report[name] = {"api_p50_ms": p50, "api_p99_ms": p99, "boto3_p50_ms": b50, "boto3_p99_ms": b99}
        print(f"{name:<20} {p50:>9.2f} {p99:>9.2f} {b50:>10.2f} {b99:>10.2f}")
    out = ROOT / "bench" / "results" / "api_requests.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"requests": REQUESTS, "results": report}, indent=2))


if __name__ == "__main__":
    main()
