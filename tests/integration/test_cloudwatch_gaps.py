"""Percentile statistics in GetMetricData on the local cloud."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from shadowscale_localcloud.cloudwatch_gaps import CloudWatchPercentiles, nearest_rank

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws(), CloudWatchPercentiles():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        dimensions: list[Any] = [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "v"}]
        for minute in range(2):
            client.put_metric_data(
                Namespace="AWS/SageMaker",
                MetricData=[
                    {
                        "MetricName": "ModelLatency",
                        "Dimensions": dimensions,
                        "Value": float(value),
                        "Timestamp": START + timedelta(minutes=minute, seconds=value % 50),
                        "Unit": "Microseconds",
                    }
                    for value in range(1 + minute * 100, 101 + minute * 100)
                ],
            )
        yield client


def query(client: Any, stat: str) -> list[float]:
    result = client.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "ModelLatency",
                        "Dimensions": [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "v"}],
                    },
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=START,
        EndTime=START + timedelta(minutes=2),
        ScanBy="TimestampAscending",
    )
    values: list[float] = result["MetricDataResults"][0]["Values"]
    return values


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("p50", [50.0, 150.0]), ("p90", [90.0, 190.0]), ("p99", [99.0, 199.0]), ("p99.9", [100.0, 200.0])],
)
def test_given_latencies_when_percentile_queried_then_nearest_rank_per_period(
    cloudwatch: Any, stat: str, expected: list[float]
) -> None:
    assert query(cloudwatch, stat) == expected


def test_plain_statistics_still_come_from_moto(cloudwatch: Any) -> None:
    assert query(cloudwatch, "Average") == [50.5, 150.5]


def test_nearest_rank_edges() -> None:
    assert nearest_rank([3.0, 1.0, 2.0], 0) == 1.0
    assert nearest_rank([3.0, 1.0, 2.0], 100) == 3.0
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 50)
