"""WorkflowStarter over Step Functions: one execution per run, named by the run id (exactly-once start)."""

from __future__ import annotations

import json
from typing import Any


class StepFunctionsStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, run_id: str, state: dict[str, Any]) -> str:
        try:
            response = self._client.start_execution(
                stateMachineArn=self._arn, name=run_id, input=json.dumps(state)
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            # A retried start: the name is the run id, so the execution is the one already running.
            return self._arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
        return str(response["executionArn"])

    def stop(self, execution_arn: str, cause: str) -> None:
        try:
            self._client.stop_execution(executionArn=execution_arn, cause=cause[:32768])
        except self._client.exceptions.ExecutionDoesNotExist:
            pass
        except self._client.exceptions.ClientError as error:  # already ended: nothing to stop
            if error.response.get("Error", {}).get("Code") not in ("ValidationException", "InvalidArn"):
                raise
