"""What the queue and S3 do to the diff pipeline over time: an invocation that dies after its commit, an
object redelivered days later (a dead-letter redrive), a backlog diffed hours after it was captured."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from shadowscale.response_diffs.models import CaptureObjectRef, RunningDiffSummary
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline, unpack_state
from shadowscale.shared.diff_contract import CloseDiffs
from shadowscale_localcloud.synthetic_capture import SyntheticTraffic, delivered_at, delivery_order, generate

from tests.capture_factories import PRODUCTION, T0, diff_config
from tests.capture_stores import SharedBucket, SteppedMetrics, WriterView
from tests.fakes import ManualClock, RecordingCloser
from tests.unit.test_capture_concurrency import MANIFEST, PREFIX, TEST, World, three_batches


class Crash(Exception):
    """The invocation dies here (timeout, out of memory): nothing after this step runs."""


def crash_at(wanted: str) -> Any:
    def before(step: str) -> None:
        if step == wanted:
            raise Crash(step)

    return before


def counted(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary's numbers (not when it was written, nor how many commits it took)."""
    return {
        name: value
        for name, value in summary.items()
        if name not in {"updatedAt", "sequence", "objectsDuplicate", "objectsProcessed"}
    }


def test_a_crash_between_commit_and_metrics_then_redeliveries_emit_each_window_once() -> None:
    # GIVEN the same batches diffed without any fault
    reference = three_batches()
    solo, solo_view = reference.writer("solo")
    for name in ("setup", "A"):
        reference.diff(solo, solo_view, name)
    [(expected, expected_at)] = reference.published

    # AND an invocation that commits batch A (which closes the first window) and dies before emitting
    world = three_batches()
    setup, setup_view = world.writer("setup")
    world.diff(setup, setup_view, "setup")
    doomed, _doomed_view = world.writer("doomed", crash_at("emit_metrics"))
    with pytest.raises(Crash):
        doomed.process(world.batches["A"])
    assert [label for _, label in world.bucket.main_commits] == ["setup", ""]  # A's commit landed
    assert world.published == []

    # WHEN another invocation commits while the dead one's claim still holds, then the queue redelivers
    # A's messages after their visibility timeout, twice
    early, early_view = world.writer("early")
    world.diff(early, early_view, "A")
    assert world.published == []  # not its entry: its claimant might be emitting it right now
    world.clock.advance(minutes=30)
    for name in ("first-redelivery", "second-redelivery"):
        retry, retry_view = world.writer(name)
        world.diff(retry, retry_view, "A")

    # THEN the window's metric document was emitted exactly once, as without the crash
    assert [(metrics.model_dump(), at) for metrics, at in world.published] == [(expected.model_dump(), expected_at)]
    _, ledger = unpack_state(world.bucket.objects[MANIFEST].body)
    assert ledger.outbox == ()
    # AND the numbers are those of the run without the crash (every object a duplicate the second time)
    assert counted(world.bucket.json(f"{PREFIX}summary.json")) == counted(
        reference.bucket.json(f"{PREFIX}summary.json")
    )
    assert world.bucket.files(f"{PREFIX}windows/") == reference.bucket.files(f"{PREFIX}windows/")
    accounting = world.engine().accounting()
    accounting.assert_balanced()
    assert accounting.records_read == 30  # setup and A, once each (B was never sent)


def test_a_crash_after_emitting_before_the_outbox_is_settled_loses_no_window() -> None:
    # GIVEN an invocation that emits the window's metrics and dies before committing the outbox without it
    world = three_batches()
    setup, setup_view = world.writer("setup")
    world.diff(setup, setup_view, "setup")
    calls = 0

    def die_at_settle(step: str) -> None:
        nonlocal calls
        calls += step == "load_state"
        if step == "load_state" and calls == 2:  # the first read is the cycle's, the second the settling's
            raise Crash(step)

    doomed, _ = world.writer("doomed", die_at_settle)
    with pytest.raises(Crash):
        doomed.process(world.batches["A"])
    assert len(world.published) == 1

    # WHEN the queue redelivers once the claim has run out
    world.clock.advance(minutes=30)
    retry, retry_view = world.writer("retry")
    world.diff(retry, retry_view, "A")

    # THEN the window is not lost: it was emitted again (at least once: stdout cannot be rolled back)
    assert len(world.published) == 2
    assert world.published[0][1] == world.published[1][1]
    _, ledger = unpack_state(world.bucket.objects[MANIFEST].body)
    assert ledger.outbox == ()


@pytest.mark.parametrize("later", [timedelta(days=10), timedelta(days=18)], ids=["10-days", "18-days"])
def test_an_object_redelivered_days_later_is_a_duplicate(later: timedelta) -> None:
    # GIVEN a batch diffed on time (objectRetentionHours at its default, 168), then more capture until
    # `later` (a dead-letter redrive can bring back a message up to 14 days old, plus the queue's 4 days)
    world = World(clock=ManualClock(T0 + timedelta(minutes=5)))
    world.batch("A", T0)
    writer, view = world.writer("live")
    world.diff(writer, view, "A")
    world.clock.advance(seconds=later.total_seconds())
    world.batch("later", T0 + later - timedelta(minutes=5))
    world.diff(writer, view, "later")
    before = world.bucket.json(f"{PREFIX}summary.json")

    # WHEN the first batch's notifications come back
    outcomes = writer.process(world.batches["A"])

    # THEN both objects are duplicates and nothing is counted again
    assert [outcome.status for outcome in outcomes] == ["duplicate", "duplicate"]
    after = world.bucket.json(f"{PREFIX}summary.json")
    assert (after["recordsRead"], after["paired"], after["lateRecords"]) == (
        before["recordsRead"],
        before["paired"],
        0,
    )
    assert after["recordsRead"] + after["pending"] == world.lines_written == 40
    assert after["objectsDuplicate"] == 2


def test_processed_objects_are_kept_compact_per_capture_hour_not_in_the_manifest() -> None:
    # GIVEN 240 one-record objects over four hours of capture
    world = World(clock=ManualClock(T0 + timedelta(hours=5)))
    writer, view = world.writer("live")
    for number in range(240):
        start = T0 + timedelta(minutes=number)
        world.batches[f"b{number}"] = [world.capture(PRODUCTION, start, f"p{number:03d}")]
        world.diff(writer, view, f"b{number}")

    # THEN the manifest holds one short line per hour, and each hour one 8-byte digest per object
    manifest, _ = unpack_state(world.bucket.objects[MANIFEST].body)
    assert manifest is not None
    assert len(manifest) < 1500
    object_sets = list(world.bucket.keys(f"{PREFIX}state/windows/objects-"))
    assert len(object_sets) == 5  # 09:58 to 13:57 touches five clock hours
    assert sum(len(world.bucket.objects[key].body) for key in object_sets) == 5 * 12 + 240 * 8


# --- late data -------------------------------------------------------------------------------------

# Twenty minutes of traffic, objects landing up to four minutes late, out of order.
BACKLOG = SyntheticTraffic(requests=6000, requests_per_second=5.0, object_seconds=45.0, start=T0, seed=3)
DELAY = 240


def diff_as_delivered(late_by: timedelta, batch_seconds: int = 20) -> tuple[dict[str, Any], int]:
    """Deliver the capture in queue batches of `batch_seconds`, to a pipeline whose clock is the delivery
    time plus `late_by`; then close the test. Returns the final summary and the truth's pair count."""
    objects, truth = generate(BACKLOG)
    bucket = SharedBucket()
    bucket.configs[TEST] = diff_config()
    clock = ManualClock(T0)
    pipeline = CaptureDiffPipeline(WriterView(bucket, "live"), SteppedMetrics([]), clock, RecordingCloser())
    batches: dict[int, list[CaptureObjectRef]] = {}
    last: datetime = T0
    for item in delivery_order(objects, max_delay_seconds=DELAY):
        bucket.add(item.key, item.body)
        last = delivered_at(item, DELAY)
        batches.setdefault(int(last.timestamp()) // batch_seconds, []).append(
            CaptureObjectRef(key=item.key, etag=bucket.objects[item.key].etag)
        )
    for slot, refs in sorted(batches.items()):
        clock.current = datetime.fromtimestamp((slot + 1) * batch_seconds, last.tzinfo) + late_by
        assert {outcome.status for outcome in pipeline.process(refs)} == {"processed"}
    clock.current = last + late_by + timedelta(minutes=16)
    final = pipeline.close(CloseDiffs(test_id=TEST, ended_at=last + late_by))
    assert isinstance(final, RunningDiffSummary)
    return bucket.json(f"{PREFIX}summary.json"), truth.pairs


def test_a_backlog_diffed_three_hours_late_pairs_exactly_as_on_time() -> None:
    # GIVEN capture delivered on time, and the same capture diffed three hours late (the pipeline was down)
    on_time, pairs = diff_as_delivered(timedelta(0))
    late, _ = diff_as_delivered(timedelta(hours=3))

    # THEN on time pairs every twin, and the late run's numbers are the same, window for window
    assert on_time["paired"] == pairs
    assert on_time["lateRecords"] == 0
    assert counted(late) == counted(on_time)
    assert late["final"] is True


def test_a_late_backlog_in_bigger_batches_still_pairs_every_twin() -> None:
    # GIVEN the queue hands a late backlog over in batches five times larger than on time
    late, pairs = diff_as_delivered(timedelta(hours=3), batch_seconds=100)

    # THEN no twin is lost to a window closed by the wall clock
    assert late["paired"] == pairs
    assert late["pending"] == 0
