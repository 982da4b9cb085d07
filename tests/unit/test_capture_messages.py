"""What the capture_diff function accepts from its queue, and the backfill's input: the sample events in
events/ (shared with `sam local invoke`), S3's own shapes, and malformed bodies named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shadowscale.response_diffs.backfill import BackfillRequest
from shadowscale.response_diffs.events import S3Notification, S3TestEvent, parse_message
from shadowscale.shared.diff_contract import CloseDiffs, shadow_test_of_capture_key
from shadowscale.shared.errors import InvalidEvent

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample_bodies() -> list[str]:
    return [record["body"] for record in json.loads((EVENTS / "capture_diff_sqs.json").read_text())["Records"]]


def test_the_sample_sqs_event_carries_a_capture_notification_and_a_close_request() -> None:
    notification, close = (parse_message(body) for body in sample_bodies())

    assert isinstance(notification, S3Notification)
    [ref] = notification.created()
    assert shadow_test_of_capture_key(ref.key) == "fraud-v2-try-1"
    assert ref.etag == "0c6a8f2d1e4b7a9c3d5e6f708192a3b4"
    assert isinstance(close, CloseDiffs)
    assert close.test_id == "fraud-v2-try-1"


def test_keys_arrive_url_encoded_and_are_decoded() -> None:
    body = json.loads(sample_bodies()[0])
    body["Records"][0]["s3"]["object"]["key"] = "capture/t%3D1/ep/v/2026/11/23/09/02-00-120-a+b.jsonl"

    [ref] = S3Notification.model_validate(body).created()

    assert ref.key == "capture/t=1/ep/v/2026/11/23/09/02-00-120-a b.jsonl"


def test_only_created_objects_are_diffed() -> None:
    body = json.loads(sample_bodies()[0])
    body["Records"][0]["eventName"] = "ObjectRemoved:Delete"

    assert S3Notification.model_validate(body).created() == []


def test_s3s_test_event_is_understood_and_asks_for_nothing() -> None:
    message = parse_message('{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b","RequestId":"r"}')

    assert isinstance(message, S3TestEvent)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "message body is not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('{"hello": 1}', "neither an S3 notification nor a shadowscale.close-diffs request"),
        ('{"Records": []}', "Records: List should have at least 1 item"),
        (
            '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]}',
            "Records.0.s3.object: Field required",
        ),
        ('{"kind": "shadowscale.close-diffs", "testId": "t 1", "endedAt": "x"}', "testId: String should match"),
    ],
)
def test_a_malformed_body_is_refused_naming_what_is_wrong(body: str, expected: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_message(body)

    assert expected in str(caught.value)


def test_the_sample_backfill_input_is_valid() -> None:
    request = BackfillRequest.model_validate_json((EVENTS / "capture_backfill.json").read_text())

    assert (request.test_id, request.run) == ("fraud-v2-try-1", "looser-tolerance")
    assert request.since is not None
    assert request.until is not None
    assert request.since < request.until
    assert request.comparison is not None
