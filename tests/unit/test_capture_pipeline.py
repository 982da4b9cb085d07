"""The response-diff pipeline around the engine: batches grouped by test, the conditional commit, the
outbox of closed windows, the running summary the lifecycle reads, close requests, rejections, backfill.
In-memory S3 (tests/fakes.py); the accounting invariant is asserted by the pipeline on every commit and
checked again here on what it wrote."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from shadowscale.response_diffs.models import CaptureObjectRef, DiffSummary, RunningDiffSummary
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline, unpack_state
from shadowscale.shared.diff_contract import CloseDiffs

from tests.capture_factories import PRODUCTION, SHADOW, T0, diff_config, key, lines, record, times
from tests.fakes import InMemoryDiffStore, ManualClock, RecordingCloser, RecordingDiffMetrics

TEST = "test-1"
SUMMARY = f"diffs/{TEST}/summary.json"


class Pipeline:
    def __init__(self, **config: Any) -> None:
        self.store = InMemoryDiffStore()
        self.store.configs[TEST] = diff_config(**config)
        self.metrics = RecordingDiffMetrics()
        self.closer = RecordingCloser()
        self.clock = ManualClock(T0 + timedelta(minutes=5))
        self.pipeline = CaptureDiffPipeline(self.store, self.metrics, self.clock, self.closer)

    def capture(self, variant: str, count: int, *, name: str, flip_every: int = 0, start: Any = T0) -> CaptureObjectRef:
        records = []
        for index, at in enumerate(times(start, count)):
            label = "fraud" if flip_every and variant == SHADOW and index % flip_every == 0 else "legit"
            records.append(
                record(f"e-{name[-1]}-{index}", at, f'{{"label":"{label}","score":0.9}}', body=f"{index},{name[-1]}")
            )
        object_key = key(variant, start, name)
        etag = self.store.add(object_key, lines(*records))
        return CaptureObjectRef(key=object_key, etag=etag)

    def summary(self) -> RunningDiffSummary:
        return RunningDiffSummary.model_validate(self.store.json(SUMMARY))


def pair_of_objects(world: Pipeline, count: int = 10, *, flip_every: int = 0) -> list[CaptureObjectRef]:
    return [
        world.capture(PRODUCTION, count, name="p001"),
        world.capture(SHADOW, count, name="s001", flip_every=flip_every),
    ]


def test_given_both_halves_in_one_batch_then_the_running_summary_pairs_them_and_balances() -> None:
    # GIVEN a production object and its shadow twin, one answer in five different
    world = Pipeline()
    refs = pair_of_objects(world, flip_every=5)

    # WHEN one batch carries both
    outcomes = world.pipeline.process(refs)

    # THEN both are processed and the test's summary shows 10 pairs, 2 disagreeing, nothing pending
    assert [outcome.status for outcome in outcomes] == ["processed", "processed"]
    summary = world.summary()
    assert (summary.paired, summary.exact_matches, summary.pending, summary.final) == (10, 8, 0, False)
    assert summary.records_read + summary.pending == 20
    summary.assert_accounting()
    assert summary.exact_match_rate == pytest.approx(0.8)
    assert world.metrics.counters["CaptureObjectsProcessed"] == 2


def test_given_halves_in_two_batches_then_the_first_waits_in_state_and_the_second_pairs() -> None:
    # GIVEN the production object alone, then its shadow twin in a later batch
    world = Pipeline()
    production, shadow = pair_of_objects(world)

    world.pipeline.process([production])
    waiting = world.summary() if SUMMARY in world.store.objects else None
    world.pipeline.process([shadow])

    # THEN the first commit holds 10 halves pending, the second pairs them all
    assert waiting is None or (waiting.paired, waiting.pending) == (0, 10)
    assert (world.summary().paired, world.summary().pending) == (10, 0)
    assert world.store.commits == 2


def test_a_duplicate_notification_counts_nothing_twice() -> None:
    # GIVEN a batch already diffed
    world = Pipeline()
    refs = pair_of_objects(world)
    world.pipeline.process(refs)

    # WHEN S3 announces the same objects again
    again = world.pipeline.process(refs)

    # THEN they are duplicates and the numbers do not move
    assert [outcome.status for outcome in again] == ["duplicate", "duplicate"]
    assert (world.summary().paired, world.summary().objects_duplicate) == (10, 2)


def test_a_concurrent_commit_is_retried_from_the_winners_state_and_a_redelivery_counts_it_once() -> None:
    # GIVEN another writer commits between our read and our write
    world = Pipeline()
    refs = pair_of_objects(world)
    world.store.conflict_next_commit = True

    # WHEN the batch is diffed, then redelivered by the queue
    first = world.pipeline.process(refs)
    retry = world.pipeline.process(refs)

    # THEN the lost race is attempted again at once from the stored state, and the redelivery is a duplicate
    assert [outcome.status for outcome in first] == ["processed", "processed"]
    assert world.metrics.counters["StateConflicts"] == 1
    assert [outcome.status for outcome in retry] == ["duplicate", "duplicate"]
    assert (world.summary().paired, world.summary().records_read) == (10, 20)


def test_an_unreadable_object_is_retried_while_the_rest_of_the_batch_commits() -> None:
    # GIVEN S3 fails to return the shadow object once
    world = Pipeline()
    production, shadow = pair_of_objects(world)
    world.store.fail_reads.add(shadow.key)

    outcomes = world.pipeline.process([production, shadow])
    world.store.fail_reads.clear()
    retried = world.pipeline.process([shadow])

    # THEN only the shadow object is failed (and retried), and the pairs complete on the retry
    assert [outcome.status for outcome in outcomes] == ["processed", "failed"]
    assert retried[0].status == "processed"
    assert world.summary().paired == 10


def test_objects_of_an_unknown_test_or_no_test_at_all_are_rejected_with_a_reason_not_retried() -> None:
    world = Pipeline()
    unknown = CaptureObjectRef(key=key(PRODUCTION, T0).replace("capture/test-1/", "capture/ghost/"), etag="x")
    unrouted = CaptureObjectRef(key="capture/not-a-capture-key.jsonl", etag="y")
    foreign_variant = CaptureObjectRef(key=key("someone-else", T0), etag="z")
    world.store.add(foreign_variant.key, lines(record("e", T0)))

    outcomes = world.pipeline.process([unknown, unrouted, foreign_variant])

    assert [outcome.status for outcome in outcomes] == ["rejected", "rejected", "rejected"]
    assert "ghost" in outcomes[0].reason
    assert "variant 'someone-else'" in outcomes[2].reason
    assert any(k.startswith("diffs/ghost/rejected/") for k in world.store.objects)
    assert any(k.startswith("diffs/_unrouted/") for k in world.store.objects)
    assert world.store.json(world.store.keys(f"diffs/{TEST}/rejected/")[0])["key"] == foreign_variant.key


def test_a_vanished_object_is_reported_missing_not_retried() -> None:
    world = Pipeline()
    gone = CaptureObjectRef(key=key(PRODUCTION, T0, "gone"), etag="x")
    assert world.pipeline.process([gone])[0].status == "missing"
    assert world.metrics.counters["CaptureObjectsMissing"] == 1


def test_malformed_lines_are_quarantined_to_a_file_with_their_line_numbers() -> None:
    # GIVEN an object whose second line is cut short and third is not JSON
    world = Pipeline()
    object_key = key(PRODUCTION, T0, "bad1")
    etag = world.store.add(object_key, lines(record("a", T0), b'{"captureData": {"endpointIn', b"not json"))

    outcome = world.pipeline.process([CaptureObjectRef(key=object_key, etag=etag)])[0]

    [quarantine_key] = world.store.keys(f"diffs/{TEST}/quarantine/")
    document = world.store.json(quarantine_key)
    assert (outcome.status, outcome.quarantined) == ("processed", 2)
    assert [(line["line"], line["reason"]) for line in document["lines"]] == [
        (2, "truncated-line"),
        (3, "invalid-json"),
    ]
    summary = world.summary()
    assert (summary.quarantined_total, summary.pending) == (2, 1)


def test_windows_close_once_late_capture_can_no_longer_land_and_publish_file_and_metrics() -> None:
    # GIVEN a batch diffed in time, with its windows open
    world = Pipeline(pairingWindowSeconds=60, allowedLatenessSeconds=300)
    world.pipeline.process(pair_of_objects(world, flip_every=2))
    assert world.store.keys(f"diffs/{TEST}/windows/") == []

    # WHEN a later batch arrives after the lateness has passed
    world.clock.advance(minutes=30)
    later = world.capture(PRODUCTION, 3, name="p002", start=world.clock.current - timedelta(minutes=1))
    world.pipeline.process([later])

    # THEN the first window is closed: one file, one metrics document stamped at its end, in the summary
    [window_file] = world.store.keys(f"diffs/{TEST}/windows/")
    closed = DiffSummary.model_validate(world.store.json(window_file))
    assert (closed.paired, closed.exact_matches) == (10, 5)
    [(metrics, at)] = world.metrics.published
    assert at == closed.window_end
    assert {m.name: m.value for m in metrics.metrics}["ExactMatchRate"] == pytest.approx(0.5)
    assert metrics.dimensions == {"EndpointName": "fraud-detector", "ShadowTest": TEST}
    assert world.summary().paired == 10
    assert world.summary().pending == 3


def test_a_failure_after_the_commit_is_repaired_by_the_retry_from_the_outbox() -> None:
    # GIVEN a commit that closed a window (capture a few minutes later moves the event-time watermark past
    # it), whose window file could not be written afterwards
    world = Pipeline(pairingWindowSeconds=60, allowedLatenessSeconds=0)
    world.clock.advance(hours=1)
    world.store.fail_puts_matching = f"diffs/{TEST}/windows/"
    refs = [*pair_of_objects(world), world.capture(PRODUCTION, 1, name="p009", start=T0 + timedelta(minutes=5))]
    first = world.pipeline.process(refs)
    assert [outcome.status for outcome in first] == ["failed", "failed", "failed"]
    assert world.store.commits == 1
    assert world.store.keys(f"diffs/{TEST}/windows/") == []

    # WHEN the queue redelivers the batch
    world.store.fail_puts_matching = None
    retry = world.pipeline.process(refs)

    # THEN nothing is counted twice and the missing window file is written from the committed outbox
    assert [outcome.status for outcome in retry] == ["duplicate", "duplicate", "duplicate"]
    [window_file] = world.store.keys(f"diffs/{TEST}/windows/")
    assert DiffSummary.model_validate(world.store.json(window_file)).paired == 10
    assert world.summary().paired == 10


def test_a_close_request_too_early_is_sent_again_for_later_and_a_due_one_finalises_the_test() -> None:
    # GIVEN production halves that never found a twin (the shadow saw 10 % of traffic)
    world = Pipeline(allowedLatenessSeconds=900)
    production, _shadow = pair_of_objects(world)
    world.pipeline.process([production])
    ended = world.clock.current

    # WHEN the lifecycle's close arrives at once, then again after the lateness
    early = world.pipeline.close(CloseDiffs(test_id=TEST, ended_at=ended))
    world.clock.advance(seconds=901)
    final = world.pipeline.close(CloseDiffs(test_id=TEST, ended_at=ended))

    # THEN the early one is re-sent with the remaining delay; the due one closes everything
    assert early is None
    [(message, delay)] = world.closer.sent
    assert message.test_id == TEST
    assert 890 < delay <= 901
    assert final is not None
    assert final.final
    assert final.pending == 0
    assert final.unpaired == {"no-shadow-twin": 10}
    assert world.summary().final is True
    _, ledger = unpack_state(world.store.objects[f"diffs/{TEST}/state/manifest.bin"].body)
    assert ledger.ended_at == ended
    assert ledger.closed is not None


def test_capture_landing_after_the_test_closed_is_counted_late_and_closed_at_once() -> None:
    world = Pipeline(allowedLatenessSeconds=0)
    production, shadow = pair_of_objects(world)
    world.pipeline.process([production])
    world.pipeline.close(CloseDiffs(test_id=TEST, ended_at=world.clock.current))

    world.pipeline.process([shadow])

    summary = world.summary()
    assert summary.final
    assert summary.late_records == 10
    assert summary.unpaired == {"no-shadow-twin": 10, "no-production-twin": 10}
    assert summary.records_read == 20


def test_the_same_notification_twice_in_one_batch_is_one_object() -> None:
    world = Pipeline()
    production, shadow = pair_of_objects(world)

    outcomes = world.pipeline.process([production, shadow, production])

    assert [outcome.status for outcome in outcomes] == ["processed", "processed", "processed"]
    assert (world.summary().paired, world.summary().objects_processed, world.summary().records_read) == (10, 2, 20)


def test_an_object_s3_refuses_to_return_is_set_aside_with_the_reason_not_retried_forever() -> None:
    # GIVEN capture encrypted with a key the function may not use
    world = Pipeline()
    production, shadow = pair_of_objects(world)
    world.store.forbidden.add(shadow.key)

    outcomes = world.pipeline.process([production, shadow])

    assert [outcome.status for outcome in outcomes] == ["processed", "rejected"]
    assert "AccessDenied" in outcomes[1].reason
    assert world.store.json(world.store.keys(f"diffs/{TEST}/rejected/")[0])["key"] == shadow.key
