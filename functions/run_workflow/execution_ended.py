"""ExecutionEnded: EventBridge reports a run's execution timed out, failed or was stopped; fail the run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tt_core import wiring
from tt_core.models.workflow import ExecutionEnded
from tt_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    ended = ExecutionEnded.model_validate(event["detail"])
    state = ended.run_state()
    logger.append_keys(account_id=state.account_id, run_id=state.run_id)
    wiring.execution_ended_service().record(ended)
