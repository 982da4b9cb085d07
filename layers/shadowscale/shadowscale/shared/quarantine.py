"""Events no retry can fix: set aside once, with the reason, and counted."""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from shadowscale.shared.observability import logger, metrics


class Quarantine(Protocol):
    def quarantine(self, function: str, reason: str, event: object) -> None: ...


def set_aside(quarantine: Quarantine, function: str, exc: Exception, event: object) -> None:
    """Log, count (MalformedEvents) and quarantine an event that cannot be processed."""
    logger.error("event rejected", extra={"function": function, "reason": str(exc)})
    metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
    quarantine.quarantine(function, str(exc), event)
