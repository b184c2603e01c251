"""Step Functions task handlers of the run workflow: one module per task, each calling one service method."""
