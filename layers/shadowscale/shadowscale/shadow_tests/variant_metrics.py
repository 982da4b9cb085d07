"""What CloudWatch knows about an endpoint's variants, shaped for the shadow test's gates and charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shadowscale.shadow_tests.models import ChartSeries, MinuteLatencies, SeriesPoint, VariantStats
from shadowscale.shared.aws_errors import raise_domain_error

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
MICROSECONDS_PER_MS = 1000.0

# query id → (namespace, metric, statistic, scale into VariantStats' unit)
_STATS: dict[str, tuple[str, str, str, float]] = {
    "invocations": (INVOCATION_NAMESPACE, "Invocations", "Sum", 1.0),
    "latencyP50Ms": (INVOCATION_NAMESPACE, "ModelLatency", "p50", MICROSECONDS_PER_MS),
    "latencyP90Ms": (INVOCATION_NAMESPACE, "ModelLatency", "p90", MICROSECONDS_PER_MS),
    "latencyP99Ms": (INVOCATION_NAMESPACE, "ModelLatency", "p99", MICROSECONDS_PER_MS),
    "overheadMs": (INVOCATION_NAMESPACE, "OverheadLatency", "Average", MICROSECONDS_PER_MS),
    "errors4xx": (INVOCATION_NAMESPACE, "Invocation4XXErrors", "Sum", 1.0),
    "errors5xx": (INVOCATION_NAMESPACE, "Invocation5XXErrors", "Sum", 1.0),
    "modelErrors": (INVOCATION_NAMESPACE, "InvocationModelErrors", "Sum", 1.0),
    "cpuPercent": (INSTANCE_NAMESPACE, "CPUUtilization", "Average", 1.0),
    "memoryPercent": (INSTANCE_NAMESPACE, "MemoryUtilization", "Average", 1.0),
}
_SUMMED = {"invocations", "errors4xx", "errors5xx", "modelErrors"}
# The report charts what SageMaker's shadow-test page shows: every statistic the gates read, plus the
# instance metrics a variant publishes only on some instance types (disk on all; GPU on GPU instances).
_CHART_STATS: dict[str, tuple[str, str, str, float]] = {
    **_STATS,
    "diskPercent": (INSTANCE_NAMESPACE, "DiskUtilization", "Average", 1.0),
    "gpuPercent": (INSTANCE_NAMESPACE, "GPUUtilization", "Average", 1.0),
    "gpuMemoryPercent": (INSTANCE_NAMESPACE, "GPUMemoryUtilization", "Average", 1.0),
}
CHARTED = tuple(_CHART_STATS)
_MINUTE_STATS = {"p50": "latencyP50Ms", "p90": "latencyP90Ms", "p99": "latencyP99Ms"}
# The latency gates' samples: one per minute, up to a day's worth; a longer bake gets longer periods (CloudWatch
# keeps 1-minute datapoints for 15 days) so that one evaluation reads at most this many per statistic.
MAX_LATENCY_SAMPLES = 1440


def _window_period(start: datetime, end: datetime) -> int:
    """One period spanning the window (CloudWatch wants a multiple of 60 s)."""
    return max(60, math.ceil((end - start).total_seconds() / 60) * 60)


class EndpointMetrics:
    def __init__(self, client: CloudWatchClient) -> None:
        self._client = client

    def _query(
        self, endpoint: str, variants: Sequence[str], names: Sequence[str], start: datetime, end: datetime, period: int
    ) -> dict[str, list[tuple[datetime, float]]]:
        queries: list[dict[str, Any]] = []
        for index, variant in enumerate(variants):
            for name in names:
                namespace, metric, statistic, _ = _CHART_STATS[name]
                queries.append(
                    {
                        "Id": f"v{index}_{name.lower()}",
                        "Label": f"{variant}|{name}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": namespace,
                                "MetricName": metric,
                                "Dimensions": [
                                    {"Name": "EndpointName", "Value": endpoint},
                                    {"Name": "VariantName", "Value": variant},
                                ],
                            },
                            "Period": period,
                            "Stat": statistic,
                        },
                        "ReturnData": True,
                    }
                )
        found: dict[str, list[tuple[datetime, float]]] = {}
        try:
            # 500 queries per call: 2 variants x 13 statistics fits in one.
            pages = self._client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries,  # type: ignore[arg-type]
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    label = result.get("Label", "")
                    found.setdefault(label, []).extend(
                        zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                    )
        except ClientError as exc:
            raise_domain_error(exc, f"GetMetricData {endpoint}")
        return found

    def variant_stats(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, VariantStats]:
        period = _window_period(start, end)
        found = self._query(endpoint, variants, list(_STATS), start, end, period)
        stats: dict[str, VariantStats] = {}
        for variant in variants:
            values: dict[str, float] = {}
            for name, (_, _, _, scale) in _STATS.items():
                points = [value for _, value in found.get(f"{variant}|{name}", [])]
                if not points:
                    continue
                # A window may straddle two periods: counts add up, the rest takes the worst period.
                combined = sum(points) if name in _SUMMED else max(points)
                values[name] = combined / scale
            stats[variant] = VariantStats.model_validate(values)
        return stats

    def minute_latencies(
        self, endpoint: str, production: str, shadow: str, start: datetime, end: datetime
    ) -> MinuteLatencies:
        """ModelLatency percentiles of both variants per minute over the window, paired by minute: the samples
        of the latency gates' intervals (minutes where either variant has no datapoint are left out)."""
        minutes = max(1, math.ceil((end - start).total_seconds() / 60))
        period = 60 * math.ceil(minutes / MAX_LATENCY_SAMPLES)
        found = self._query(endpoint, [production, shadow], list(_MINUTE_STATS.values()), start, end, period)
        paired: dict[str, tuple[tuple[float, float], ...]] = {}
        for percentile, name in _MINUTE_STATS.items():
            production_at = dict(found.get(f"{production}|{name}", []))
            shadow_at = dict(found.get(f"{shadow}|{name}", []))
            paired[percentile] = tuple(
                (shadow_at[at] / MICROSECONDS_PER_MS, production_at[at] / MICROSECONDS_PER_MS)
                for at in sorted(shadow_at.keys() & production_at.keys())
            )
        return MinuteLatencies.model_validate(paired)

    def series(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime, period: int = 300
    ) -> tuple[ChartSeries, ...]:
        found = self._query(endpoint, variants, CHARTED, start, end, period)
        charts = []
        for variant in variants:
            for name in CHARTED:
                scale = _CHART_STATS[name][3]
                points = sorted(found.get(f"{variant}|{name}", []))
                charts.append(
                    ChartSeries(
                        metric=name,
                        variant=variant,
                        points=tuple(SeriesPoint(at=at, value=round(value / scale, 4)) for at, value in points),
                    )
                )
        return tuple(charts)
