"""EventBridge "Step Functions Execution Status Change" (FAILED, TIMED_OUT, ABORTED) for the shadow-test
state machine → put the endpoint back on its snapshot if the execution did not, and report."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from shadowscale.composition import shadow_test_entrypoints
from shadowscale.entrypoints.middleware import settings_validated
from shadowscale.observability import logger, metrics, tracer


@settings_validated
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return shadow_test_entrypoints().cleanup(event)
