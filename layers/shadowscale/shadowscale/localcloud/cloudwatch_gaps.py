"""Percentile statistics for moto's CloudWatch GetMetricData. Targets moto==5.2.5.

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
