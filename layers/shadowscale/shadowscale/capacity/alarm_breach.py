"""How far an alarm's metric went beyond its threshold, as Application Auto Scaling step scaling measures it.

The Application Auto Scaling API reference (StepAdjustment) sizes a step by "the difference between the
value of the aggregated CloudWatch metric and the breach threshold": the datapoints the alarm evaluated are
aggregated with the policy's MetricAggregationType (Average unless it says Minimum or Maximum), and the
threshold is subtracted. Step bounds here are distances beyond the threshold on the alarm's breaching
side, so a step applies when lowerBound <= distance < upperBound on either side (AWS's "lower bound
inclusive above the threshold, upper bound inclusive below it", written as distances). An aggregated value
on the non-breaching side matches no step: [12000, 0, 11000] against `> 10000` averages 7666.7, and nothing
scales, as in AWS.

The side comes from the alarm's ComparisonOperator (DescribeAlarms: the event does not carry it). When it is
unknown, the side is read from the datapoints only if they all lie on one side of the threshold; otherwise
the breach is unknown and the smallest step applies.

Anomaly-band alarms (LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold,
GreaterThanUpperThreshold) have no single threshold. The side breached is the operator's for a one-sided
band; for a two-sided band it is read from the band values (`recentUpperThresholds`/`recentLowerThresholds`)
or from the reason text ("greater than the upper thresholds" / "less than the lower thresholds"); AWS
documents neither, so both are read, and a side still unknown changes no count. The decision then scales
out above the band and in below it, whatever the sign of the configured change: a metric that fell below
its band never scales out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Literal

from shadowscale.capacity.events import AlarmTransition

Aggregation = Literal["Average", "Minimum", "Maximum"]
Side = Literal["above", "below"]

ABOVE = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">="}
BELOW = {"LessThanThreshold": "<", "LessThanOrEqualToThreshold": "<="}
BAND_SIDES: dict[str, Side | None] = {
    "GreaterThanUpperThreshold": "above",
    "LessThanLowerThreshold": "below",
    "LessThanLowerOrGreaterThanUpperThreshold": None,
}
BAND_REASON_PHRASES: dict[Side, str] = {"above": "greater than the upper", "below": "less than the lower"}


@dataclass(frozen=True)
class Breach:
    """What a step reads of an ALARM transition. `beyond` False: the aggregated value is on the
    non-breaching side (no step applies); None: not known. `distance` None: not known."""

    band: bool
    side: Side | None
    beyond: bool | None
    distance: float | None
    described: str


def aggregate(values: Sequence[float], how: Aggregation) -> float:
    if how == "Minimum":
        return min(values)
    if how == "Maximum":
        return max(values)
    return fmean(values)


def measure_breach(transition: AlarmTransition, how: Aggregation = "Average") -> Breach:
    # Only what the alarm evaluated; an event without evaluatedDatapoints (SetAlarmState, an older
    # sender) falls back to the recent datapoints.
    values = transition.evaluated if transition.evaluated is not None else transition.datapoints
    operator = transition.comparison
    if operator in BAND_SIDES:
        return _band_breach(transition, values, how)
    if not values:
        return Breach(False, _static_side(operator), None, None, "no datapoints evaluated")
    value = aggregate(values, how)
    measured = f"{how} {value:g} of {len(values)} datapoint{'s' if len(values) != 1 else ''}"
    if transition.threshold is None:
        return Breach(False, _static_side(operator), None, None, f"{measured}, threshold unknown")
    threshold = transition.threshold
    side = _static_side(operator)
    if side is None:
        # No operator: the datapoints tell the side only when they all lie on one side of the threshold.
        if all(point >= threshold for point in values):
            side = "above"
        elif all(point <= threshold for point in values):
            side = "below"
        else:
            return Breach(False, None, None, None, f"{measured} either side of {threshold:g}, comparison unknown")
    distance = value - threshold if side == "above" else threshold - value
    symbol = ABOVE.get(operator or "") or BELOW.get(operator or "") or ("above" if side == "above" else "below")
    if distance < 0:
        return Breach(False, side, False, None, f"{measured} is not beyond {symbol} {threshold:g}")
    return Breach(False, side, True, distance, f"{measured}, {distance:g} beyond {symbol} {threshold:g}")


def _static_side(operator: str | None) -> Side | None:
    if operator in ABOVE:
        return "above"
    if operator in BELOW:
        return "below"
    return None


def _band_breach(transition: AlarmTransition, values: Sequence[float], how: Aggregation) -> Breach:
    value = aggregate(values, how) if values else None
    # The band values stand beside the recent datapoints, oldest first: the evaluated ones are the newest.
    count = len(values) or 1
    upper = aggregate(transition.upper_band[-count:], how) if transition.upper_band else None
    lower = aggregate(transition.lower_band[-count:], how) if transition.lower_band else None
    side = _band_side(transition, value, upper, lower)
    if side is None:
        return Breach(True, None, None, None, "anomaly band: which side was breached is not known")
    edge = upper if side == "above" else lower
    if value is None or edge is None:
        return Breach(True, side, None, None, f"{side} the anomaly band")
    distance = value - edge if side == "above" else edge - value
    if distance < 0:
        return Breach(True, side, False, None, f"{how} {value:g} is within the band ({side} edge {edge:g})")
    return Breach(True, side, True, distance, f"{how} {value:g} {side} the band edge {edge:g} by {distance:g}")


def _band_side(
    transition: AlarmTransition, value: float | None, upper: float | None, lower: float | None
) -> Side | None:
    """The operator's side for a one-sided band; for a two-sided band, the side the aggregated value lies
    beyond, else the side the reason text names."""
    assert transition.comparison is not None
    side = BAND_SIDES[transition.comparison]
    if side is not None:
        return side
    if value is not None and upper is not None and value > upper:
        return "above"
    if value is not None and lower is not None and value < lower:
        return "below"
    return next((s for s, phrase in BAND_REASON_PHRASES.items() if phrase in transition.reason), None)
