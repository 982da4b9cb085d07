"""What the report's data collector asks CloudWatch for: every metric SageMaker's shadow-test page charts,
for both variants, in the namespace and statistic SageMaker publishes it with, scaled into the page's units."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from shadowscale.shadow_tests.report_charts import CHART_SPECS
from shadowscale.shadow_tests.variant_metrics import EndpointMetrics

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeCloudWatch:
    """GetMetricData over in-memory datapoints keyed by (namespace, metric, statistic, variant)."""

    def __init__(self, datapoints: dict[tuple[str, str, str, str], list[float]]) -> None:
        self.datapoints = datapoints
        self.queries: list[dict[str, Any]] = []

    def get_paginator(self, operation: str) -> FakeCloudWatch:
        assert operation == "get_metric_data"
        return self

    def paginate(self, MetricDataQueries: list[dict[str, Any]], **_: Any) -> Iterator[dict[str, Any]]:  # noqa: N803
        self.queries = MetricDataQueries
        results = []
        for query in MetricDataQueries:
            stat = query["MetricStat"]
            metric = stat["Metric"]
            variant = next(d["Value"] for d in metric["Dimensions"] if d["Name"] == "VariantName")
            values = self.datapoints.get((metric["Namespace"], metric["MetricName"], stat["Stat"], variant), [])
            timestamps = [T0 + timedelta(minutes=5 * i) for i in range(len(values))]
            results.append({"Id": query["Id"], "Label": query["Label"], "Timestamps": timestamps, "Values": values})
        yield {"MetricDataResults": results}


def test_the_collector_fetches_every_charted_metric_for_both_variants_in_sagemakers_namespaces() -> None:
    # GIVEN CloudWatch holding OverheadLatency in microseconds, DiskUtilization and 4XX errors for production
    cloudwatch = FakeCloudWatch(
        {
            ("AWS/SageMaker", "OverheadLatency", "Average", "primary"): [1500.0, 2500.0],
            ("/aws/sagemaker/Endpoints", "DiskUtilization", "Average", "primary"): [18.0],
            ("AWS/SageMaker", "Invocation4XXErrors", "Sum", "primary"): [3.0],
        }
    )

    # WHEN the report's series are collected
    found = EndpointMetrics(cast(Any, cloudwatch)).series("ep", ["primary", "shadow"], T0, T0 + timedelta(hours=1))

    # THEN one query per variant and charted metric, each metric named as SageMaker publishes it
    asked = {
        (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"])
        for q in cloudwatch.queries
    }
    assert len(cloudwatch.queries) == 2 * len(CHART_SPECS)
    assert {
        ("AWS/SageMaker", "ModelLatency", "p90"),
        ("AWS/SageMaker", "OverheadLatency", "Average"),
        ("AWS/SageMaker", "Invocation4XXErrors", "Sum"),
        ("AWS/SageMaker", "InvocationModelErrors", "Sum"),
        ("/aws/sagemaker/Endpoints", "DiskUtilization", "Average"),
        ("/aws/sagemaker/Endpoints", "GPUUtilization", "Average"),
        ("/aws/sagemaker/Endpoints", "GPUMemoryUtilization", "Average"),
    } <= asked
    by_key = {(series.metric, series.variant): [point.value for point in series.points] for series in found}
    assert {spec.metric for spec in CHART_SPECS} == {metric for metric, _ in by_key}
    assert by_key[("overheadMs", "primary")] == [1.5, 2.5]  # microseconds → the page's milliseconds
    assert by_key[("diskPercent", "primary")] == [18.0]
    assert by_key[("errors4xx", "primary")] == [3.0]
    assert by_key[("gpuPercent", "shadow")] == []  # not published: the page leaves the GPU charts out
