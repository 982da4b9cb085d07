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
        (with_primary(maxInstnaces=3), "variants.0.maxInstnaces", "unknown field; did you mean `maxInstances`?"),
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


def test_given_one_variant_that_is_invalid_when_parsed_then_no_cascaded_length_error() -> None:
    # GIVEN a policy whose only variant is broken
    document = policy_document()
    document["variants"] = [{**document["variants"][0], "maxInstances": 0}]
    # WHEN it is parsed
    with pytest.raises(InvalidPolicy) as raised:
        parse_policy(document)
    # THEN the variant's problem is named, and not echoed as "variants: Tuple should have at least 1 item"
    message = str(raised.value)
    assert "variants.0.maxInstances: Input should be greater than or equal to 1" in message
    assert "at least 1 item" not in message
    assert message.count(";") == 0, message


def test_given_no_variants_at_all_when_parsed_then_the_length_error_is_kept() -> None:
    # GIVEN an empty variants list WHEN parsed THEN the length error is the root problem, and stays
    with pytest.raises(InvalidPolicy, match="variants: Tuple should have at least 1 item"):
        parse_policy(policy_document(variants=[]))


@pytest.mark.parametrize(
    ("document", "field", "suggestion"),
    [
        (policy_document(endpiont="x"), "endpiont", "endpoint"),
        (with_primary(scaleOutCooldown=3), "variants.0.scaleOutCooldown", "scaleOutCooldownSeconds"),
        (
            with_primary(
                schedules=[
                    {"name": "w", "start": "rate(1 hour)", "durationMinute": 5, "durationMinutes": 5, "instances": 2}
                ]
            ),
            "variants.0.schedules.0.durationMinute",
            "durationMinutes",
        ),
        (
            with_primary(
                alarms=[{"alarmName": "a", "onAlarm": {"steps": [{"lowerbound": 0, "lowerBound": 0, "change": 1}]}}]
            ),
            "variants.0.alarms.0.onAlarm.steps.0.lowerbound",
            "lowerBound",
        ),
    ],
)
def test_given_a_misspelt_field_when_parsed_then_the_closest_known_alias_is_suggested(
    document: dict[str, Any], field: str, suggestion: str
) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        parse_policy(document)
    assert f"{field}: unknown field; did you mean `{suggestion}`?" in str(raised.value)


def test_given_a_field_like_nothing_known_when_parsed_then_the_known_fields_are_listed() -> None:
    with pytest.raises(InvalidPolicy) as raised:
        parse_policy(with_primary(xyzzy=1))
    assert "variants.0.xyzzy: unknown field (known fields: alarms, maxInstances, minInstances, name," in str(
        raised.value
    )
