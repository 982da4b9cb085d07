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

    # A promotion has at most two alarms (alarm_definitions), far below the 100 names a call may carry.
    def delete(self, names: Sequence[str]) -> None:
        if not names:
            return
        try:
            self._client.delete_alarms(AlarmNames=list(names))
        except ClientError as exc:
            raise_domain_error(exc, f"DeleteAlarms {list(names)}")

    def in_alarm(self, names: Sequence[str]) -> tuple[str, ...]:
        if not names:
            return ()
        try:
            described = self._client.describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm"])
        except ClientError as exc:
            raise_domain_error(exc, f"DescribeAlarms {list(names)}")
        found = [alarm["AlarmName"] for alarm in described.get("MetricAlarms", []) if alarm["StateValue"] == "ALARM"]
        return tuple(sorted(found))
