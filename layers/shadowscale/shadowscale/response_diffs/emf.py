"""The pipeline's metrics sink (ports.DiffMetricsSink) over Powertools: CloudWatch Embedded Metric Format
documents in the function's log."""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from shadowscale.response_diffs.models import DiffMetrics
from shadowscale.shared.observability import metrics


class PowertoolsDiffMetrics:
    """Window metrics as their own EMF documents (their own dimensions and timestamp); pipeline counters
    on the invocation's Metrics (flushed by the handler's decorator)."""

    def publish(self, rendered: DiffMetrics, at: datetime) -> None:
        # No service dimension: the documented set is exactly EndpointName + ShadowTest (the dashboard's).
        emf = EphemeralMetrics(namespace=rendered.namespace, service="")
        for name, value in rendered.dimensions.items():
            emf.add_dimension(name=name, value=value)
        for metric in rendered.metrics:
            emf.add_metric(name=metric.name, unit=MetricUnit(metric.unit), value=metric.value)
        emf.set_timestamp(at)
        emf.flush_metrics()

    def count(self, name: str, value: float) -> None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
