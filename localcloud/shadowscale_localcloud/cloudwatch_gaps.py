"""Percentile statistics for moto's CloudWatch GetMetricData, and Values/Counts kept compact. Targets moto==5.2.5.

moto computes Sum/Average/Minimum/Maximum/SampleCount only; a percentile statistic (`p50`, `p99.9`)
yields no value and the response fails to serialise. Installed, percentiles are computed from the raw
datapoints of each period by the nearest-rank method. (CloudWatch's own percentiles are estimates
from its internal sketches; on few datapoints the two can differ by one rank.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self, SupportsFloat

from moto.cloudwatch import models as cloudwatch_models

PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def nearest_rank(values: Sequence[float], percentile: float) -> float:
    """The smallest value with at least `percentile` % of the values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class CloudWatchPercentiles:
    _original: Any = field(default=None)

    def install(self) -> Self:
        statistics_class = cloudwatch_models.Statistics
        original = statistics_class.get_statistics_for_type
        self._original = original

        def get_statistics_for_type(statistics: cloudwatch_models.Statistics, stat: str) -> SupportsFloat | None:
            match = PERCENTILE.match(stat)
            if match is None:
                return original(statistics, stat)
            values = statistics.metric_single_values_list
            return nearest_rank(values, float(match.group(1))) if values else None

        statistics_class.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            cloudwatch_models.Statistics.get_statistics_for_type = self._original  # type: ignore[method-assign]
            self._original = None

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()


class CountedMetricDatum(cloudwatch_models.MetricDatum):
    """One value of a PutMetricData `Values`/`Counts` pair, kept once with its count."""

    def __init__(self, namespace: str, name: str, value: float, count: int, **details: Any) -> None:  # noqa: ANN401
        super().__init__(namespace, name, value, **details)
        self.count = count


@dataclass
class CloudWatchValueCounts:
    """moto (5.2.5) stores a `Values`/`Counts` pair as one datum per count: a simulated day of latencies
    becomes millions of objects. Installed, each value is stored once with its count and expanded only
    while one period's statistics are computed, so every statistic (percentiles included) is unchanged.
    As in moto, a fractional count is truncated to a whole number.
    """

    _originals: dict[str, Any] = field(default_factory=dict)

    def install(self) -> Self:
        backend_class = cloudwatch_models.CloudWatchBackend
        statistics_class = cloudwatch_models.Statistics
        original_put = backend_class.put_metric_data
        self._originals = {"put": original_put, "values": statistics_class.__dict__["metric_single_values_list"]}

        def put_metric_data(
            backend: cloudwatch_models.CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]
        ) -> None:
            for number, member in enumerate(metric_data, start=1):
                backend._validate_parameters_put_metric_data(member, number)
            counted = [member for member in metric_data if member.get("Values") and member.get("Counts")]
            original_put(backend, namespace, [member for member in metric_data if member not in counted])
            for member in counted:
                details = {
                    "dimensions": member.get("Dimensions", []),
                    "timestamp": member.get("Timestamp"),
                    "unit": member.get("Unit"),
                }
                for value, count in zip(member["Values"], member["Counts"], strict=True):
                    if int(float(count)) > 0:
                        datum = CountedMetricDatum(
                            namespace, member["MetricName"], float(value), int(float(count)), **details
                        )
                        backend.metric_data.append(datum)

        def metric_single_values_list(statistics: cloudwatch_models.Statistics) -> list[float]:
            values: list[float] = []
            for datum in statistics.metric_data or []:
                if isinstance(datum, CountedMetricDatum):
                    values.extend([datum.value] * datum.count)
                elif isinstance(datum, cloudwatch_models.MetricDatum):
                    values.append(datum.value)
            return values

        backend_class.put_metric_data = put_metric_data  # type: ignore[method-assign,assignment]
        statistics_class.metric_single_values_list = property(metric_single_values_list)  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if self._originals:
            cloudwatch_models.CloudWatchBackend.put_metric_data = self._originals["put"]  # type: ignore[method-assign]
            cloudwatch_models.Statistics.metric_single_values_list = self._originals["values"]  # type: ignore[method-assign]
            self._originals = {}

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()
