"""Builders for policies and alarm transitions used across the test layers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shadowscale.capacity.events import AlarmTransition
from shadowscale.capacity.policy import CapacityPolicy, parse_policy

ENDPOINT = "fraud-detector"
LATENCY_ALARM = "fraud-detector-latency-high"
LOW_CPU_ALARM = "fraud-detector-cpu-low"
CANDIDATE_ALARM = "fraud-detector-candidate-5xx"


def policy_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "shadowscale/v1",
        "endpoint": ENDPOINT,
        "variants": [
            {
                "name": "primary",
                "minInstances": 1,
                "maxInstances": 8,
                "scaleOutCooldownSeconds": 120,
                "scaleInCooldownSeconds": 600,
                "schedules": [
                    {
                        "name": "business-hours",
                        "start": "cron(0 8 ? * MON-FRI *)",
                        "end": "cron(0 20 ? * MON-FRI *)",
                        "timezone": "Europe/Berlin",
                        "instances": 4,
                    }
                ],
                "alarms": [
                    {
                        "alarmName": LATENCY_ALARM,
                        "onAlarm": {
                            "steps": [
                                {"lowerBound": 0, "upperBound": 50000, "change": 1},
                                {"lowerBound": 50000, "upperBound": 200000, "change": 2},
                                {"lowerBound": 200000, "change": 4},
                            ]
                        },
                        "onOk": {"change": -1},
                    }
                ],
            },
            {
                "name": "candidate",
                "minInstances": 1,
                "maxInstances": 2,
                "alarms": [{"alarmName": CANDIDATE_ALARM, "onAlarm": {"weight": 0}, "onOk": {"weight": 0.1}}],
            },
        ],
    }
    document.update(overrides)
    return document


def make_policy(**overrides: Any) -> CapacityPolicy:
    return parse_policy(policy_document(**overrides))


def transition(
    state: str,
    at: datetime,
    *,
    alarm: str = LATENCY_ALARM,
    datapoints: tuple[float, ...] = (),
    threshold: float | None = 100000.0,
    evaluated: tuple[float, ...] | None = None,
    comparison: str | None = None,
    upper_band: tuple[float, ...] = (),
    lower_band: tuple[float, ...] = (),
    reason: str = "test",
) -> AlarmTransition:
    return AlarmTransition.model_validate(
        {
            "alarm_name": alarm,
            "state": state,
            "previous_state": None,
            "changed_at": at,
            "reason": reason,
            "datapoints": datapoints,
            "threshold": threshold,
            "delivery": "eventbridge",
            "evaluated": evaluated,
            "comparison": comparison,
            "upper_band": upper_band,
            "lower_band": lower_band,
        }
    )


# What template.yaml Globals gives every function (the resources; the tunables keep their defaults).
DEPLOYED_ENVIRONMENT = {
    "POLICY_TABLE": "shadowscale-dev-policies",
    "STATE_TABLE": "shadowscale-dev-endpoint-state",
    "IDEMPOTENCY_TABLE": "shadowscale-dev-idempotency",
    "INTENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/shadowscale-dev-deferred-changes",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/shadowscale-dev-dead-letters",
    "DATA_BUCKET": "shadowscale-dev-data-123456789012-us-east-1",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:shadowscale-dev-notifications",
    "CAPTURE_DIFF_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/shadowscale-dev-capture-diffs",
}
