"""Both real alarm shapes normalise to one transition; malformed events get errors naming the field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from shadowscale.capacity.alarm_breach import measure_breach
from shadowscale.capacity.events import parse_alarm_event, parse_deferred_change, parse_schedule_tick
from shadowscale.shared.errors import InvalidEvent

from tests.conftest import load_event


def test_given_alarm_action_event_when_parsed_then_breach_from_reason_data() -> None:
    parsed = parse_alarm_event(load_event("alarm_action_alarm.json"))
    assert parsed.delivery == "alarm-action"
    assert (parsed.alarm_name, parsed.state, parsed.previous_state) == ("fraud-detector-latency-high", "ALARM", "OK")
    assert parsed.threshold == 100000.0
    # Only the evaluated datapoint (180000), not the recent 120000 beside it.
    assert parsed.evaluated == (180000.0,)
    assert measure_breach(parsed).distance == 80000.0


def test_given_eventbridge_event_when_parsed_then_same_transition_model() -> None:
    parsed = parse_alarm_event(load_event("alarm_eventbridge_alarm.json"))
    assert parsed.delivery == "eventbridge"
    # No evaluatedDatapoints in this event: the recent datapoints are what there is.
    assert parsed.evaluated is None
    assert measure_breach(parsed).distance == 230000.0
    assert parsed.changed_at == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


def test_given_same_transition_in_both_shapes_then_same_event_id() -> None:
    action = parse_alarm_event(load_event("alarm_action_alarm.json"))
    bridge = parse_alarm_event(load_event("alarm_eventbridge_alarm.json"))
    assert action.event_id == bridge.event_id


def test_given_set_alarm_state_without_reason_data_then_breach_unknown() -> None:
    event = load_event("alarm_action_alarm.json")
    del event["alarmData"]["state"]["reasonData"]
    assert measure_breach(parse_alarm_event(event)).distance is None


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e["alarmData"].pop("alarmName"), "alarmData.alarmName: Field required"),
        (lambda e: e["alarmData"]["state"].update(value="PANIC"), "alarmData.state.value"),
        (lambda e: e["alarmData"]["state"].update(reasonData="{not json"), "reasonData is not JSON"),
        (lambda e: e.update(source="aws.ec2"), "source"),
    ],
)
def test_given_malformed_alarm_action_when_parsed_then_error_names_field(mutate: object, expected: str) -> None:
    event = load_event("alarm_action_alarm.json")
    mutate(event)  # type: ignore[operator]
    with pytest.raises(InvalidEvent, match="alarm action event") as raised:
        parse_alarm_event(event)
    assert expected in str(raised.value)


def test_given_eventbridge_event_of_other_detail_type_then_rejected() -> None:
    event = load_event("alarm_eventbridge_alarm.json")
    event["detail-type"] = "EC2 Instance State-change Notification"
    with pytest.raises(InvalidEvent, match="detail-type"):
        parse_alarm_event(event)


def test_given_non_object_event_then_rejected() -> None:
    with pytest.raises(InvalidEvent, match="JSON object"):
        parse_alarm_event(["not", "an", "event"])


def test_given_tick_sample_when_parsed_then_key_uses_scheduled_time() -> None:
    tick = parse_schedule_tick(load_event("schedule_tick.json"))
    assert tick.event_id == "tick:fraud-detector:business-hours.start:2026-11-23T07:00:00+00:00"


def test_given_unfilled_scheduler_placeholder_then_treated_as_manual() -> None:
    tick = parse_schedule_tick({"endpoint": "e1", "schedule": "s", "scheduledTime": "<aws.scheduler.scheduled-time>"})
    assert tick.scheduled_time is None


def test_given_tick_without_endpoint_then_error_names_it() -> None:
    with pytest.raises(InvalidEvent, match="endpoint: Field required"):
        parse_schedule_tick({"schedule": "x"})


def test_given_deferred_sample_body_when_parsed_then_source_is_a_tick() -> None:
    body = load_event("deferred_change_sqs.json")["Records"][0]["body"]
    change = parse_deferred_change(body)
    assert change.source.kind == "shadowscale.schedule-tick"


def test_given_truncated_deferred_body_then_rejected() -> None:
    with pytest.raises(InvalidEvent, match="deferred change"):
        parse_deferred_change('{"kind": "shadowscale.deferred-change", "change_id"')


def with_datapoints(sample: str, points: str, threshold: str = "100000.0") -> dict[str, object]:
    """A sample alarm event whose reasonData (a JSON string, as CloudWatch sends it) carries these values."""
    event = load_event(sample)
    state = (event["alarmData"] if "alarmData" in event else event["detail"])["state"]
    text = re.sub(r'"recentDatapoints":\[[^\]]*\]', f'"recentDatapoints":{points}', state["reasonData"], count=1)
    state["reasonData"] = re.sub(r'"threshold":[0-9.]+', f'"threshold":{threshold}', text, count=1)
    return event


@pytest.mark.parametrize("sample", ["alarm_action_alarm.json", "alarm_eventbridge_alarm.json"])
@pytest.mark.parametrize(
    ("points", "threshold", "field"),
    [
        ("[120000.0,NaN]", "100000.0", "reasonData.recentDatapoints.1: Input should be a finite number"),
        ("[Infinity]", "100000.0", "reasonData.recentDatapoints.0: Input should be a finite number"),
        ('["-Infinity"]', "100000.0", "reasonData.recentDatapoints.0: Input should be a finite number"),
        ("[120000.0]", "NaN", "reasonData.threshold: Input should be a finite number"),
    ],
)
def test_given_a_datapoint_or_threshold_that_is_not_finite_then_rejected_naming_the_field(
    sample: str, points: str, threshold: str, field: str
) -> None:
    # A NaN breach once took the policy's largest step: it is invalid input, not a number to compare.
    with pytest.raises(InvalidEvent) as raised:
        parse_alarm_event(with_datapoints(sample, points, threshold))
    assert field in str(raised.value)


def test_given_numeric_strings_in_reason_data_then_still_read_as_numbers() -> None:
    parsed = parse_alarm_event(with_datapoints("alarm_action_alarm.json", '["150000.0"]', '"100000.0"'))
    assert (parsed.datapoints, parsed.threshold) == ((150000.0,), 100000.0)


def test_given_deferred_change_carrying_a_nan_datapoint_then_rejected() -> None:
    # The deferral queue carries the transition back in through its own JSON: the same rule holds there.
    document = json.loads(load_event("deferred_change_sqs.json")["Records"][0]["body"])
    transition = parse_alarm_event(load_event("alarm_action_alarm.json")).model_dump(mode="json")
    document["source"] = {**transition, "datapoints": [float("nan")]}
    with pytest.raises(InvalidEvent, match=r"source\.shadowscale\.alarm-transition\.datapoints\.0"):
        parse_deferred_change(json.dumps(document))
