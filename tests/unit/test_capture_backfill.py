"""The backfill partitioned by time gives what the live pipeline gives on the same capture: the same
generated traffic fed through CaptureDiffPipeline (S3 notifications, out of order, some delivered twice,
windows closed by the watermark) and through the backfill's start / slice / finish tasks with several slice
sizes (pairs straddling every slice edge, objects of one hour holding records of the next) must come to the
same merged summary and accounting, and to the generator's truth."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shadowscale.response_diffs.backfill import MAX_SLICES, BackfillTasks, FinishTask, SliceTask, slices_between
from shadowscale.response_diffs.models import CaptureObjectRef
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline
from shadowscale.shared.diff_contract import CloseDiffs
from shadowscale.shared.errors import InvalidEvent
from shadowscale_localcloud.synthetic_capture import (
    CaptureObject,
    SyntheticTraffic,
    SyntheticTruth,
    delivered_at,
    delivery_order,
    generate,
)

from tests.capture_factories import diff_config
from tests.fakes import InMemoryDiffStore, ManualClock, RecordingCloser, RecordingDiffMetrics

TEST = "test-1"
DELAY_SECONDS = 300.0  # notifications late by up to 5 minutes: within the allowed lateness (15)
# Differs by nature: a listing names each object once, while the queue delivered some twice.
NOT_COMPARED = {"updatedAt", "sequence", "objectsDuplicate"}


def traffic() -> tuple[list[CaptureObject], SyntheticTruth]:
    # ~3 hours from 09:55 at 0.6 req/s, two instances per variant writing an object a minute each, 1 % of
    # lines damaged (quarantined in their object's key-time window) and some objects gzipped.
    return generate(
        SyntheticTraffic(
            requests=6500,
            start=datetime(2026, 3, 1, 9, 55, tzinfo=UTC),
            requests_per_second=0.6,
            malformed_share=0.01,
            gzip_share=0.2,
            shadow_share=0.9,
            prefix=f"capture/{TEST}",
            seed=23,
        )
    )


def copy_later(item: CaptureObject, seconds: int) -> CaptureObject:
    """The same lines written again under a key `seconds` later (a client's replayed object): its records
    are duplicates whose twins paired long before, in every order."""
    head, name = item.key.rsplit("/", 1)
    moved = datetime.strptime(f"{head[-13:]}/{name[:5]}", "%Y/%m/%d/%H/%M-%S").replace(tzinfo=UTC)
    moved += timedelta(seconds=seconds)
    key = f"{head[:-13]}{moved:%Y/%m/%d/%H}/{moved:%M-%S}-000-copy{name[9:]}"
    return dataclasses.replace(
        item, key=key, first_ms=item.first_ms + seconds * 1000, last_ms=item.last_ms + seconds * 1000
    )


def stocked(objects: list[CaptureObject]) -> InMemoryDiffStore:
    store = InMemoryDiffStore()
    store.configs[TEST] = diff_config()
    for item in objects:
        store.add(item.key, item.body)
    return store


def live_summary(objects: list[CaptureObject]) -> dict[str, Any]:
    """The live path: notifications in delivery order, batched as the event source mapping would, some
    delivered twice; the test closed once late capture can no longer land."""
    store = stocked(objects)
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    pipeline = CaptureDiffPipeline(store, RecordingDiffMetrics(), clock, RecordingCloser())
    delivery = delivery_order(objects, DELAY_SECONDS)
    batch: list[CaptureObjectRef] = []
    for number, item in enumerate(delivery):
        clock.current = max(clock.current, delivered_at(item, DELAY_SECONDS))
        batch.append(CaptureObjectRef(key=item.key, etag=item.etag))
        if number % 37 == 0:
            batch.append(CaptureObjectRef(key=item.key, etag=item.etag))  # a redelivered notification
        if len(batch) >= 10:
            pipeline.process(batch)
            batch = []
    pipeline.process(batch)
    ended = clock.current
    clock.advance(hours=1)
    assert pipeline.close(CloseDiffs(test_id=TEST, ended_at=ended)) is not None
    summary: dict[str, Any] = store.json(f"diffs/{TEST}/summary.json")
    return summary


def backfilled_summary(
    objects: list[CaptureObject], slice_seconds: int, since: datetime | None = None
) -> dict[str, Any]:
    """The backfill: the plan from the capture's hour folders (or since), each slice on its own store view
    of the same bucket in a shuffled order (items share nothing), then finish."""
    store = stocked(objects)
    clock = ManualClock(datetime(2026, 3, 2, tzinfo=UTC))
    tasks = BackfillTasks(CaptureDiffPipeline(store, RecordingDiffMetrics(), clock), store)
    request: dict[str, Any] = {"testId": TEST, "run": "again", "sliceSeconds": slice_seconds}
    if since is not None:
        request |= {"since": since.isoformat(), "until": (since + timedelta(hours=6)).isoformat()}
    plan = tasks.start(request)
    assert plan.slices, "the capture's hours were found"
    for piece in reversed(plan.slices):  # the Map runs items in any order, several at once
        tasks.diff_slice(SliceTask(test_id=TEST, run="again", comparison=plan.comparison, slice=piece))
    result = tasks.finish(FinishTask(test_id=TEST, run="again", comparison=plan.comparison, slices=list(plan.slices)))
    summary: dict[str, Any] = store.json(result.summary_key)
    assert summary["paired"] == result.paired
    return summary


@pytest.fixture(scope="module")
def capture() -> tuple[list[CaptureObject], SyntheticTruth, dict[str, Any]]:
    objects, truth = traffic()
    production = [item for item in objects if "/primary/" in item.key]
    replayed = [copy_later(item, 600) for item in production[40:43]]
    everything = objects + replayed
    return everything, truth, live_summary(everything)


def comparable(summary: dict[str, Any]) -> Any:
    """Every field but NOT_COMPARED; floats as pytest.approx: a sum of floats (a histogram's sum, a mean)
    depends on the order its windows are added in, by one rounding (counts, buckets and samples are exact)."""

    def approx(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: approx(item) for name, item in value.items()}
        if isinstance(value, list):
            return [approx(item) for item in value]
        if isinstance(value, float):
            return pytest.approx(value, rel=1e-12, abs=0)
        return value

    return approx({name: value for name, value in summary.items() if name not in NOT_COMPARED})


@pytest.mark.parametrize("slice_seconds", [3600, 1800, 420, 86_400])
def test_given_the_live_pipelines_capture_when_backfilled_in_slices_then_the_summaries_are_identical(
    capture: tuple[list[CaptureObject], SyntheticTruth, dict[str, Any]], slice_seconds: int
) -> None:
    # GIVEN the capture the live pipeline diffed (out of order, some notifications twice)
    objects, truth, live = capture

    # WHEN the backfill diffs it again in slices of `slice_seconds` (420 s: edges that cut windows apart)
    backfilled = backfilled_summary(objects, slice_seconds)

    # THEN every number, histogram and sample is the live pipeline's, and both are the generator's truth
    assert comparable(backfilled) == comparable(live)
    assert backfilled["final"] is True
    assert backfilled["pending"] == 0
    assert backfilled["lateRecords"] == 0
    replayed_lines = sum(item.records for item in objects if "-copy" in item.key)
    assert backfilled["paired"] == truth.pairs
    assert backfilled["quarantined"] == truth.damaged
    # A replayed line whose original still waits (it has no twin) is a duplicate; the others wait in vain.
    unpaired = backfilled["unpaired"]
    assert unpaired["no-shadow-twin"] + unpaired["duplicate-record"] == truth.unpaired_production + replayed_lines
    assert unpaired["no-production-twin"] == truth.unpaired_shadow
    assert backfilled["recordsRead"] == truth.lines + replayed_lines
    assert backfilled["objectsProcessed"] == len(objects)


def test_given_since_and_until_when_backfilled_then_only_windows_starting_in_the_range_count(
    capture: tuple[list[CaptureObject], SyntheticTruth, dict[str, Any]],
) -> None:
    # GIVEN a range that covers the whole capture, with a start that is not on an hour
    objects, _, live = capture
    since = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

    # WHEN backfilled over it in hour slices THEN it is the whole live summary
    assert comparable(backfilled_summary(objects, 3600, since)) == comparable(live)


def test_given_a_range_that_starts_mid_capture_when_backfilled_then_earlier_windows_are_left_out() -> None:
    # GIVEN the capture, and a range from 11:00 on
    objects, _ = traffic()
    since = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)

    # WHEN backfilled
    summary = backfilled_summary(objects, 3600, since)

    # THEN its first window starts at 11:00 and every record read is accounted for
    assert datetime.fromisoformat(summary["windowStart"]) == since
    outcomes = 2 * summary["paired"] + sum(summary["unpaired"].values()) + sum(summary["quarantined"].values())
    assert summary["recordsRead"] == outcomes


def test_slices_are_cut_at_multiples_of_their_size_and_cover_the_range_once() -> None:
    since, until = datetime(2026, 3, 1, 9, 58, tzinfo=UTC), datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

    pieces = slices_between(since, until, 3600)

    assert [(piece.start.hour, piece.start.minute, piece.end.hour, piece.end.minute) for piece in pieces] == [
        (9, 58, 10, 0),
        (10, 0, 11, 0),
        (11, 0, 12, 0),
        (12, 0, 12, 30),
    ]


def test_the_largest_plan_fits_the_payload_step_functions_accepts() -> None:
    # GIVEN the longest range the start task accepts in hour slices, with a test's configuration
    store = stocked([])
    tasks = BackfillTasks(CaptureDiffPipeline(store, RecordingDiffMetrics(), ManualClock()), store)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    until = since + timedelta(hours=MAX_SLICES)

    # WHEN planned
    plan = tasks.start({"testId": TEST, "run": "long", "since": since.isoformat(), "until": until.isoformat()})

    # THEN the Map's input (and Finish's, which carries the same slices) stays under 256 KiB
    assert len(plan.slices) == MAX_SLICES
    assert len(plan.model_dump_json(by_alias=True).encode()) < 256 * 1024
    with pytest.raises(InvalidEvent, match=f"at most {MAX_SLICES}"):
        tasks.start(
            {
                "testId": TEST,
                "run": "long",
                "since": since.isoformat(),
                "until": (until + timedelta(hours=1)).isoformat(),
            }
        )
