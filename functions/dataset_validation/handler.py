"""S3 ObjectCreated → validate the uploaded dataset (PRODUCT.md §8).

S3 invokes this function directly and asynchronously: Lambda retries a failed invocation twice and
then sends the event to the dead-letter queue the stack attaches. A queue in between would add a
poller and a second retry policy for no gain: validation is idempotent (a conditional claim on the
dataset's status), so duplicate, retried or out-of-order events never cause a second transition.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from tt_core import wiring
from tt_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    validated = 0
    for record in event.get("Records", []):  # S3's configuration test event has none
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        key = unquote_plus(record["s3"]["object"]["key"])  # keys arrive URL-encoded, as on AWS
        result = wiring.dataset_service().validate_object(key)
        if result is not None:
            logger.info(
                "Dataset validated",
                extra={"dataset_id": result.id, "status": result.status, "account_id": result.account_id},
            )
            validated += 1
    return {"validated": validated}
