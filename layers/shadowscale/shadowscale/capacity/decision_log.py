"""Every decision, and every policy handover, is one "scaling decision" log line and its metrics."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from shadowscale.capacity.decision import DecisionReport
from shadowscale.shared.observability import logger, metrics


def log_decision(report: DecisionReport) -> DecisionReport:
    """Log and count `report`, and hand it back (callers return what they logged)."""
    logger.info(
        "scaling decision",
        extra={
            "endpoint": report.endpoint,
            "outcome": report.outcome,
            "source_event": report.source_event,
            "changes": [
                {
                    "variant": change.variant,
                    "instances_before": change.instances_before,
                    "instances_after": change.instances_after,
                    "weight_before": change.weight_before,
                    "weight_after": change.weight_after,
                    "via": change.via,
                    "reason": change.reason,
                }
                for change in report.changes
            ],
            "notes": list(report.notes),
            "deferred_until": report.deferred_until.isoformat() if report.deferred_until else None,
        },
    )
    metrics.add_metric(name=f"Decision_{report.outcome.replace('-', '_')}", unit=MetricUnit.Count, value=1)
    for change in report.changes:
        if change.direction == "out":
            metrics.add_metric(
                name="InstancesAdded", unit=MetricUnit.Count, value=change.instances_after - change.instances_before
            )
        elif change.direction == "in":
            metrics.add_metric(
                name="InstancesRemoved",
                unit=MetricUnit.Count,
                value=change.instances_before - change.instances_after,
            )
    return report
