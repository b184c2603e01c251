"""Finish: register the model and complete the run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tt_core import wiring
from tt_core.models.workflow import RunTaskState
from tt_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = RunTaskState.model_validate(event)
    logger.append_keys(account_id=state.account_id, run_id=state.run_id)
    return wiring.run_workflow_service().finish(state).output()
