"""The one Logger every function uses (Powertools reads its level and service from the environment)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

# X-Ray tracing is switched on for each function by the stack; the Powertools Tracer is left out
# because it needs aws-xray-sdk in the layer and costs cold-start time for little extra detail.
logger = Logger(service="tuned-tensor")
