"""Invalid policies are refused whole, with a message naming the field and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from shadowscale.capacity.policy import parse_policy
from shadowscale.shared.errors import InvalidPolicy

from tests.factories import policy_document

REPO = Path(__file__).resolve().parents[2]


def with_primary(**changes: Any) -> dict[str, Any]:
    document = policy_document()
    document["variants"][0].update(changes)
    return document


def test_given_the_documented_example_when_parsed_then_valid() -> None:
    policy = parse_policy(yaml.safe_load((REPO / "examples" / "capacity_policy.yaml").read_text()))
    assert policy.endpoint == "fraud-detector"
    assert policy.alarm_names == ("fraud-detector-latency-high", "fraud-detector-candidate-5xx")


@pytest.mark.parametrize(
    ("document", "field", "reason"),
    [
        (policy_document(apiVersion="shadowscale/v0"), "apiVersion", "shadowscale/v1"),
        (policy_document(endpoint="bad_name!"), "endpoint", "pattern"),
        (policy_document(variants=[]), "variants", "at least 1"),
        (with_primary(minInstances=5, maxInstances=2), "variants.0", "minInstances 5 is above maxInstances 2"),
        (with_primary(maxInstnaces=3), "variants.0.maxInstnaces", "Extra inputs are not permitted"),
        (
            with_primary(
                schedules=[{"name": "w", "start": "cron(0 8 * * MON *)", "end": "cron(0 9 ? * * *)", "instances": 2}]
            ),
            "variants.0.schedules.0.start",
            "day-of",
        ),
        (
            with_primary(schedules=[{"name": "w", "start": "rate(1 hour)", "instances": 2}]),
            "variants.0.schedules.0",
            "exactly one of end or durationMinutes",
        ),
        (
            with_primary(
                schedules=[
                    {
                        "name": "w",
                        "start": "rate(1 hour)",
                        "durationMinutes": 5,
                        "timezone": "Mars/Olympus",
                        "instances": 2,
                    }
                ]
            ),
            "variants.0.schedules.0.timezone",
            "unknown IANA time zone",
        ),
        (
            with_primary(schedules=[{"name": "w", "start": "rate(1 hour)", "durationMinutes": 5, "instances": 20}]),
            "variants.0",
            "outside [minInstances 1, maxInstances 8]",
        ),
        (
            with_primary(
                alarms=[
                    {
                        "alarmName": "a",
                        "onAlarm": {
                            "steps": [{"lowerBound": 0, "upperBound": 10, "change": 1}, {"lowerBound": 20, "change": 2}]
                        },
                    }
                ]
            ),
            "variants.0.alarms.0.onAlarm",
            "contiguous",
        ),
        (
            with_primary(alarms=[{"alarmName": "a", "onAlarm": {"steps": [{"lowerBound": 5, "change": 1}]}}]),
            "variants.0.alarms.0.onAlarm",
            "lowerBound 0",
        ),
        (
            with_primary(
                alarms=[
                    {"alarmName": "a", "onAlarm": {"change": 1}, "onOk": {"steps": [{"lowerBound": 0, "change": -1}]}}
                ]
            ),
            "variants.0.alarms.0.onOk",
            "OK state has no breach size",
        ),
        (
            with_primary(alarms=[{"alarmName": "a", "onAlarm": {}}]),
            "variants.0.alarms.0.onAlarm",
            "at least one of steps, change or weight",
        ),
        (
            with_primary(alarms=[{"alarmName": "fraud-detector-candidate-5xx", "onAlarm": {"change": 1}}]),
            "(document)",
            "duplicate alarm name",
        ),
    ],
)
def test_given_invalid_policy_when_parsed_then_error_names_field_and_reason(
    document: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        parse_policy(document)
    message = str(raised.value)
    assert f"{field}:" in message or (field == "(document)" and reason in message), message
    assert reason in message, message
