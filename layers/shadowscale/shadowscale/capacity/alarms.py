"""Re-points a metric alarm from one endpoint variant to another: DescribeAlarms, then PutMetricAlarm with
the same configuration and the VariantName dimension changed.

PutMetricAlarm overwrites the whole configuration of an existing alarm and leaves its state and tags as
they are (PutMetricAlarm API reference), so every field the alarm has is passed back unchanged. Metric
math alarms are re-pointed in each metric of their `Metrics` list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shadowscale.capacity.ports import AlarmRepointing
from shadowscale.shared.aws_errors import error_code, raise_domain_error
from shadowscale.shared.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


# What DescribeAlarms returns that PutMetricAlarm takes back under the same name.
CARRIED_FIELDS = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "ThresholdMetricId",
)
NOT_ALLOWED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def _repointed(
    dimensions: list[dict[str, str]], endpoint: str, from_variant: str, to_variant: str
) -> list[dict[str, str]] | None:
    """The dimensions with the variant replaced; None when they are not those of `from_variant`."""
    values = {dimension["Name"]: dimension["Value"] for dimension in dimensions}
    if values.get("EndpointName") != endpoint or values.get("VariantName") != from_variant:
        return None
    return [
        {"Name": "VariantName", "Value": to_variant} if dimension["Name"] == "VariantName" else dimension
        for dimension in dimensions
    ]


def _watches(dimensions: list[dict[str, str]], endpoint: str, variant: str) -> bool:
    values = {dimension["Name"]: dimension["Value"] for dimension in dimensions}
    return values.get("EndpointName") == endpoint and values.get("VariantName") == variant


class CloudWatchAlarmDimensions:
    def __init__(self, client: CloudWatchClient) -> None:
        self._client = client

    def repoint(self, alarm_name: str, endpoint: str, from_variant: str, to_variant: str) -> AlarmRepointing:
        try:
            found = self._client.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm"])
        except ClientError as exc:
            if error_code(exc) in NOT_ALLOWED:
                return "not-allowed"
            raise_domain_error(exc, f"describe alarm {alarm_name}")
        alarms = found.get("MetricAlarms", [])
        if not alarms:
            return "missing"
        alarm: dict[str, Any] = dict(alarms[0])
        request: dict[str, Any] = {"AlarmName": alarm_name}
        request.update({name: alarm[name] for name in CARRIED_FIELDS if alarm.get(name) not in (None, [])})
        changed = False
        if alarm.get("Dimensions"):
            moved = _repointed(list(alarm["Dimensions"]), endpoint, from_variant, to_variant)
            if moved is None:
                return "already" if _watches(list(alarm["Dimensions"]), endpoint, to_variant) else "not-this-variant"
            request["Dimensions"], changed = moved, True
        elif alarm.get("Metrics"):
            queries, seen_target = [], False
            for query in alarm["Metrics"]:
                query = dict(query)
                stat = query.get("MetricStat")
                if stat is not None:
                    metric = dict(stat["Metric"])
                    moved = _repointed(list(metric.get("Dimensions", [])), endpoint, from_variant, to_variant)
                    seen_target |= _watches(list(metric.get("Dimensions", [])), endpoint, to_variant)
                    if moved is not None:
                        metric["Dimensions"], changed = moved, True
                        query["MetricStat"] = {**stat, "Metric": metric}
                queries.append(query)
            if not changed:
                return "already" if seen_target else "not-this-variant"
            request["Metrics"] = queries
        else:
            return "not-this-variant"
        try:
            self._client.put_metric_alarm(**request)
        except ClientError as exc:
            if error_code(exc) in NOT_ALLOWED:
                return "not-allowed"
            raise_domain_error(exc, f"re-point alarm {alarm_name}")
        return "re-pointed" if changed else "already"


class CloudWatchAlarmComparisons:
    """An alarm's ComparisonOperator, which the state-change event does not carry (DescribeAlarms).

    Never fails the transition: an alarm that is gone, a denied or throttled call gives None, and the
    breach is then read from the datapoints alone (domain.alarm_breach), with a warning."""

    def __init__(self, client: CloudWatchClient) -> None:
        self._client = client

    def comparison(self, alarm_name: str) -> str | None:
        try:
            found = self._client.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm"])
        except ClientError as exc:
            logger.warning(
                "alarm comparison not read; the breach is read from the datapoints alone",
                extra={"alarm": alarm_name, "errorCode": error_code(exc)},
            )
            return None
        alarms = found.get("MetricAlarms", [])
        return str(alarms[0]["ComparisonOperator"]) if alarms and alarms[0].get("ComparisonOperator") else None
