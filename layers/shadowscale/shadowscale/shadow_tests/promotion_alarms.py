"""The CloudWatch alarms of a guarded promotion: its PromotionAlarms port over boto3.

PutMetricAlarm is an upsert and DeleteAlarms ignores names that do not exist (CloudWatch API reference), so
a retried task finds its work done; DescribeAlarms takes at most 100 names a call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shadowscale.shadow_tests.promotion_guardrails import AlarmDefinition
from shadowscale.shared.aws_errors import raise_domain_error

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

# DeleteAlarms and DescribeAlarms(AlarmNames) take at most 100 names a call.
_NAMES_PER_CALL = 100


class CloudWatchPromotionAlarms:
    def __init__(self, client: CloudWatchClient) -> None:
        self._client = client

    def put(self, alarms: Sequence[AlarmDefinition]) -> None:
        for alarm in alarms:
            request: Any = alarm.request()
            try:
                self._client.put_metric_alarm(**request)
            except ClientError as exc:
                raise_domain_error(exc, f"PutMetricAlarm {alarm.name}")

    def delete(self, names: Sequence[str]) -> None:
        for start in range(0, len(names), _NAMES_PER_CALL):
            chunk = list(names[start : start + _NAMES_PER_CALL])
            try:
                self._client.delete_alarms(AlarmNames=chunk)
            except ClientError as exc:
                raise_domain_error(exc, f"DeleteAlarms {chunk}")

    def in_alarm(self, names: Sequence[str]) -> tuple[str, ...]:
        found: list[str] = []
        for start in range(0, len(names), _NAMES_PER_CALL):
            chunk = list(names[start : start + _NAMES_PER_CALL])
            try:
                described = self._client.describe_alarms(AlarmNames=chunk, AlarmTypes=["MetricAlarm"])
            except ClientError as exc:
                raise_domain_error(exc, f"DescribeAlarms {chunk}")
            found.extend(
                alarm["AlarmName"] for alarm in described.get("MetricAlarms", []) if alarm["StateValue"] == "ALARM"
            )
        return tuple(sorted(found))
