"""One task of the capture-backfill state machine: {"task": "start" | "slice" | "finish", ...} → its result.

Errors propagate with their class names (CaptureObjectUnreadable, DiffStateCorrupt, ...): the state
machine's Retry clauses match on them.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from shadowscale.response_diffs.wiring import entrypoints
from shadowscale.shared.middleware import settings_validated
from shadowscale.shared.observability import logger, metrics, tracer


@settings_validated
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return entrypoints().backfill_task(event, context)
