"""One task of the shadow-test state machine: {"task": ..., "state": ..., "execution": ...} → its result.

Errors propagate with their class names (EndpointBusy, EndpointNotInService, ...): the state machine's
Retry and Catch clauses match on them.
"""

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
    return shadow_test_entrypoints().task(event)
