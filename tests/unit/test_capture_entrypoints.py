"""The response-diff functions' entry points on in-memory fakes: the SQS batch answered with the messages
to retry (ReportBatchItemFailures), unreadable bodies set aside, and the backfill's three tasks (start,
slice, finish)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from shadowscale.response_diffs.backfill import BackfillTasks
from shadowscale.response_diffs.entrypoints import CaptureDiffEntryPoints
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline
from shadowscale.shared.diff_contract import DiffConfig
from shadowscale.shared.errors import AwsServiceUnavailable, CaptureObjectUnreadable, DiffStateCorrupt, InvalidEvent

from tests.capture_factories import PRODUCTION, SHADOW, T0, diff_config, key, lines, record, times
from tests.fakes import InMemoryDiffStore, ManualClock, RecordingCloser, RecordingDiffMetrics, RecordingQuarantine

TEST = "test-1"


@dataclass
class FlakyConfigStore(InMemoryDiffStore):
    """A store whose config reads of one test fail (a 503): that test's close cannot run."""

    flaky_test: str = ""

    def load_config(self, test_id: str) -> DiffConfig | None:
        if test_id == self.flaky_test:
            raise AwsServiceUnavailable(f"GetObject diffs/{test_id}/config.json: 503 SlowDown")
        return super().load_config(test_id)


class World:
    def __init__(self) -> None:
        self.store = FlakyConfigStore()
        self.store.configs[TEST] = diff_config()
        self.quarantine = RecordingQuarantine()
        self.clock = ManualClock(T0 + timedelta(minutes=5))
        pipeline = CaptureDiffPipeline(self.store, RecordingDiffMetrics(), self.clock, RecordingCloser())
        self.entrypoints = CaptureDiffEntryPoints(pipeline, self.quarantine, BackfillTasks(pipeline, self.store))

    def capture(self, variant: str, name: str, count: int = 5) -> tuple[str, str]:
        records = [record(f"e-{index}", at, body=f"{index},1") for index, at in enumerate(times(T0, count))]
        object_key = key(variant, T0, name)
        return object_key, self.store.add(object_key, lines(*records))


def notification(object_key: str, etag: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "data"}, "object": {"key": object_key, "eTag": etag}},
                }
            ]
        }
    )


def close_request(test_id: str) -> str:
    return json.dumps({"kind": "shadowscale.close-diffs", "testId": test_id, "endedAt": T0.isoformat()})


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m-{index}", "receiptHandle": f"r-{index}", "body": body, "eventSource": "aws:sqs"}
            for index, body in enumerate(bodies)
        ]
    }


class TestBatch:
    def test_given_an_unreadable_object_and_a_failed_close_when_batched_then_exactly_their_messages_are_retried(
        self,
    ) -> None:
        # GIVEN a good production object, a shadow object whose read fails, a body that is not JSON, S3's
        # test event and a close request of a test whose config cannot be read
        world = World()
        good = world.capture(PRODUCTION, "p001")
        flaky = world.capture(SHADOW, "s001")
        world.store.fail_reads.add(flaky[0])
        world.store.flaky_test = "other-test"
        event = sqs_event(
            notification(*good),
            notification(*flaky),
            "not json",
            '{"Service":"Amazon S3","Event":"s3:TestEvent"}',
            close_request("other-test"),
        )

        # WHEN the batch is handled
        response = world.entrypoints.batch(event, None)

        # THEN the unreadable object's and the failed close's messages are retried, in the batch's order;
        # the body that cannot be understood is set aside instead (no retry can fix it)
        assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-4"}]}
        [(function, reason, held)] = world.quarantine.quarantined
        assert (function, held) == ("capture_diff", {"messageId": "m-2", "body": "not json"})
        assert "not JSON" in reason

    def test_given_every_message_understood_and_diffed_when_batched_then_nothing_is_retried(self) -> None:
        world = World()
        event = sqs_event(
            notification(*world.capture(PRODUCTION, "p001")), notification(*world.capture(SHADOW, "s001"))
        )

        assert world.entrypoints.batch(event, None) == {"batchItemFailures": []}
        assert world.store.json(f"diffs/{TEST}/summary.json")["paired"] == 5

    @pytest.mark.parametrize("event", [[], {"records": []}, {"Records": [{"messageId": "m-0"}]}])
    def test_given_no_sqs_event_when_batched_then_invalid_event(self, event: Any) -> None:
        with pytest.raises(InvalidEvent):
            World().entrypoints.batch(event, None)


class TestBackfillTasks:
    def test_given_a_request_when_the_three_tasks_run_then_each_answers_as_the_state_machine_reads_it(self) -> None:
        # GIVEN both variants' capture of five requests just before 10:00
        world = World()
        world.capture(PRODUCTION, "p001")
        world.capture(SHADOW, "s001")
        since, until = T0 - timedelta(hours=1), T0 + timedelta(hours=1)

        # WHEN the state machine runs start, every slice of the plan, then finish
        plan = world.entrypoints.backfill_task(
            {
                "task": "start",
                "input": {"testId": TEST, "run": "r1", "since": since.isoformat(), "until": until.isoformat()},
            },
            None,
        )
        common = {"testId": TEST, "run": "r1", "comparison": plan["comparison"]}
        diffed = [
            world.entrypoints.backfill_task({"task": "slice", **common, "slice": s}, None) for s in plan["slices"]
        ]
        finished = world.entrypoints.backfill_task({"task": "finish", **common, "slices": plan["slices"]}, None)

        # THEN the plan is cut at whole hours, only the slice holding the windows pairs them, and the
        # run's summary is the slices' partial summaries merged
        hour = T0.replace(minute=0)
        assert plan == {
            "testId": TEST,
            "run": "r1",
            "comparison": diff_config().model_dump(mode="json", by_alias=True),
            "maxConcurrency": 24,
            "slices": [
                {"start": since.isoformat(), "end": (hour).isoformat()},
                {"start": hour.isoformat(), "end": (hour + timedelta(hours=1)).isoformat()},
                {"start": (hour + timedelta(hours=1)).isoformat(), "end": until.isoformat()},
            ],
        }
        assert [(d["objectsRead"], d["paired"]) for d in diffed] == [(0, 0), (2, 5), (2, 0)]
        assert finished == {
            "summaryKey": f"diffs/{TEST}/backfill/r1/summary.json",
            "paired": 5,
            "exactMatchRate": 1.0,
            "withinToleranceRate": 1.0,
        }
        summary = world.store.json(f"diffs/{TEST}/backfill/r1/summary.json")
        assert (summary["final"], summary["pending"], summary["objectsProcessed"]) == (True, 0, 2)

    def test_given_an_object_that_cannot_be_read_when_its_slice_runs_then_capture_object_unreadable(self) -> None:
        # GIVEN an object whose read fails (a 503); the state machine retries the error by its class name
        world = World()
        production_key, _ = world.capture(PRODUCTION, "p001")
        world.store.fail_reads.add(production_key)
        comparison = diff_config().model_dump(mode="json", by_alias=True)
        hour = T0.replace(minute=0)
        piece = {"start": hour.isoformat(), "end": (hour + timedelta(hours=1)).isoformat()}

        # WHEN its slice runs THEN it fails, before any partial summary is written
        with pytest.raises(CaptureObjectUnreadable):
            world.entrypoints.backfill_task(
                {"task": "slice", "testId": TEST, "run": "r1", "comparison": comparison, "slice": piece}, None
            )
        assert world.store.keys(f"diffs/{TEST}/backfill/r1/slices/") == []

    def test_given_a_slice_that_did_not_complete_when_finished_then_diff_state_corrupt(self) -> None:
        world = World()
        comparison = diff_config().model_dump(mode="json", by_alias=True)
        piece = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat()}

        with pytest.raises(DiffStateCorrupt, match="did not complete"):
            world.entrypoints.backfill_task(
                {"task": "finish", "testId": TEST, "run": "r1", "comparison": comparison, "slices": [piece]}, None
            )

    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            ({"task": "start", "input": {"testId": TEST}}, "run: Field required"),
            ({"task": "start", "input": {"testId": "gone", "run": "r1"}}, "no shadow test 'gone'"),
            (
                {"task": "start", "input": {"testId": "gone", "run": "r1", "comparison": {"tolerance": 1}}},
                "comparison.tolerance",
            ),
            (
                {"task": "start", "input": {"testId": TEST, "run": "r1", "since": "2026-03-01T09:00:00"}},
                "since: Input should have timezone info",
            ),
            (
                {"task": "start", "input": {"testId": TEST, "run": "r1", "until": "2026-03-01T09:00"}},
                "until: Input should have timezone info",
            ),
            (
                {
                    "task": "start",
                    "input": {"testId": TEST, "run": "r1", "since": "2026-03-02T00:00Z", "until": "2026-03-01T00:00Z"},
                },
                "since must be before until",
            ),
            (
                {
                    "task": "start",
                    "input": {"testId": TEST, "run": "r1", "since": "2026-01-01T00:00Z", "until": "2026-06-01T00:00Z"},
                },
                "at most 2000 fit",
            ),
            ({"task": "start", "input": {"testId": TEST, "run": "r1", "maxConcurrency": 0}}, "maxConcurrency"),
            ({"task": "start", "input": {"testId": TEST, "run": "r1", "sliceSeconds": 10}}, "sliceSeconds"),
            ({"task": "object"}, "unknown backfill task 'object'"),
            ({"task": "rewind"}, "unknown backfill task 'rewind'"),
        ],
    )
    def test_given_input_that_cannot_run_when_started_then_invalid_event_names_why(
        self, event: dict[str, Any], expected: str
    ) -> None:
        with pytest.raises(InvalidEvent, match=expected):
            World().entrypoints.backfill_task(event, None)
