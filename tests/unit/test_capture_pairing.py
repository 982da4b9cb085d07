"""Pairing production and shadow halves: each key of the cascade, any order, objects and hours apart,
duplicates, sampling gaps, windows, state round trips. Every test checks the accounting invariant (the
CaptureRun driver asserts it after each object and finalisation, and against the reader at the end)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from shadowscale.response_diffs.engine import DiffEngine
from shadowscale.response_diffs.pairing import FINGERPRINT, Half, PendingHalves, fingerprint
from shadowscale.response_diffs.pairing import PRODUCTION as PRODUCTION_SIDE
from shadowscale.response_diffs.pairing import SHADOW as SHADOW_SIDE
from shadowscale.shared.errors import DiffStateCorrupt, InvalidCaptureObject

from tests.capture_factories import PRODUCTION, SHADOW, T0, CaptureRun, diff_config, key, lines, record

LATER = T0 + timedelta(hours=3)
FINGERPRINT_OF_SAMPLE_BODY = 16388182724441276952


@pytest.fixture(params=[False, True], ids=["warm", "state-round-trip"])
def run(request: pytest.FixtureRequest) -> CaptureRun:
    """Every pairing test runs twice: one engine throughout, and a new engine from stored bytes per object."""
    return CaptureRun(round_trip=request.param)


class TestPairingKeys:
    def test_given_shared_inference_id_when_event_ids_differ_then_paired_by_inference_id(self, run: CaptureRun) -> None:
        run.feed(PRODUCTION, T0, lines(record("p-1", T0, inference_id="req-1", body="1,2")))
        result = run.feed(SHADOW, T0, lines(record("s-1", T0, inference_id="req-1", body="1,2")))
        assert result.paired == 1
        assert run.close().paired_by == {"inferenceId": 1}

    def test_given_shared_inference_id_when_bodies_differ_then_not_twins(self, run: CaptureRun) -> None:
        # InferenceIds need not be unique: a shadow answer to another input is not this request's twin.
        run.feed(PRODUCTION, T0, lines(record("p-1", T0, inference_id="req-1", body="1,2")))
        result = run.feed(SHADOW, T0, lines(record("s-1", T0, inference_id="req-1", body="9,9")))
        assert result.paired == 0
        assert run.close().unpaired == {"no-shadow-twin": 1, "no-production-twin": 1}

    def test_given_shared_event_id_when_bodies_differ_then_not_twins(self, run: CaptureRun) -> None:
        run.feed(PRODUCTION, T0, lines(record("e-1", T0, body="1,2")))
        run.feed(SHADOW, T0, lines(record("e-1", T0, body="9,9")))
        total = run.close()
        assert (total.paired, total.unpaired) == (0, {"no-shadow-twin": 1, "no-production-twin": 1})

    def test_given_shared_event_id_when_no_inference_id_then_paired_by_event_id(self, run: CaptureRun) -> None:
        run.feed(PRODUCTION, T0, lines(record("e-1", T0, body="1,2")))
        run.feed(SHADOW, T0, lines(record("e-1", T0, body="1,2")))
        assert run.close().paired_by == {"eventId": 1}

    def test_given_only_the_body_in_common_when_within_window_then_paired_by_fingerprint(self, run: CaptureRun) -> None:
        run.feed(PRODUCTION, T0, lines(record("p-1", T0, body="4,5,6")))
        run.feed(SHADOW, T0, lines(record("s-1", T0 + timedelta(seconds=3), body="4,5,6")))
        assert run.close().paired_by == {"fingerprint": 1}

    def test_given_same_body_outside_window_when_read_then_not_paired(self, run: CaptureRun) -> None:
        run.feed(PRODUCTION, T0, lines(record("p-1", T0, body="4,5,6")))
        run.feed(SHADOW, T0, lines(record("s-1", T0 + timedelta(seconds=121), body="4,5,6")))
        total = run.close()
        assert total.paired == 0
        assert total.unpaired == {"no-shadow-twin": 1, "no-production-twin": 1}

    def test_given_reused_inference_id_hours_apart_when_read_then_not_paired_by_it(self, run: CaptureRun) -> None:
        run.feed(PRODUCTION, T0, lines(record("p-1", T0, inference_id="same", body="1")))
        run.feed(SHADOW, LATER, lines(record("s-1", LATER, inference_id="same", body="2")))
        assert run.close().paired == 0

    def test_given_repeated_body_when_fingerprint_pairs_then_nearest_in_time_wins(self, run: CaptureRun) -> None:
        first, second = T0, T0 + timedelta(seconds=60)
        run.feed(
            PRODUCTION, T0, lines(record("p-1", first, '{"v":1}', body="7"), record("p-2", second, '{"v":2}', body="7"))
        )
        run.feed(SHADOW, T0, lines(record("s-2", second + timedelta(milliseconds=40), '{"v":2}', body="7")))
        total = run.close()
        assert (total.paired, total.exact_matches) == (1, 1)
        assert total.unpaired == {"no-shadow-twin": 1}

    def test_given_inference_id_beats_event_id_when_both_could_match_then_inference_id_used(
        self, run: CaptureRun
    ) -> None:
        # eventIds collide across requests here; the cascade trusts inferenceId first.
        run.feed(
            PRODUCTION,
            T0,
            lines(record("e-1", T0, '{"v":1}', inference_id="a"), record("e-2", T0, '{"v":2}', inference_id="b")),
        )
        run.feed(SHADOW, T0, lines(record("e-2", T0, '{"v":1}', inference_id="a")))
        total = run.close()
        assert (total.paired_by, total.exact_matches) == ({"inferenceId": 1}, 1)


class TestArrivalOrder:
    @pytest.mark.parametrize("shadow_first", [False, True], ids=["production-first", "shadow-first"])
    def test_given_halves_in_different_objects_and_hours_when_either_arrives_first_then_paired(
        self, run: CaptureRun, shadow_first: bool
    ) -> None:
        # A request at 09:59:59.900 answered by the shadow 200 ms later: its halves sit in the 09 and 10 hours.
        at = T0.replace(minute=59, second=59, microsecond=900_000)
        shadow_at = at + timedelta(milliseconds=200)
        production = (PRODUCTION, at, lines(record("e-1", at, '{"score":0.5}')))
        shadow = (SHADOW, shadow_at, lines(record("e-1", shadow_at, '{"score":0.50000001}')))
        assert key(PRODUCTION, at).split("/")[-2] == "09"
        assert key(SHADOW, shadow_at).split("/")[-2] == "10"
        for variant, written, body in (shadow, production) if shadow_first else (production, shadow):
            run.feed(variant, written, body)
        total = run.close()
        assert (total.paired, total.exact_matches, total.within_tolerance) == (1, 0, 1)

    def test_given_many_objects_interleaved_when_read_then_every_pair_found(self, run: CaptureRun) -> None:
        stamps = [T0 + timedelta(seconds=5 * i) for i in range(40)]
        production = [record(f"e{i}", at, f'{{"v":{i}}}', body=str(i)) for i, at in enumerate(stamps)]
        shadow = [
            record(f"e{i}", at + timedelta(milliseconds=30), f'{{"v":{i}}}', body=str(i)) for i, at in enumerate(stamps)
        ]
        # Production in 4 objects of 10, shadow in 5 of 8, fed alternately from opposite ends.
        chunks = [(PRODUCTION, stamps[i], lines(*production[i : i + 10]), f"p{i}") for i in range(0, 40, 10)]
        chunks += [(SHADOW, stamps[i], lines(*shadow[i : i + 8]), f"s{i}") for i in range(0, 40, 8)]
        chunks.sort(key=lambda chunk: (chunk[0] == SHADOW) == (chunk[1] < stamps[20]))
        for variant, written, body, name in chunks:
            run.feed(variant, written, body, name=name)
        total = run.close()
        assert (total.paired, total.exact_matches, total.unpaired_total) == (40, 40, 0)


class TestDuplicatesAndGaps:
    def test_given_same_object_delivered_twice_when_processed_then_counted_once(self, run: CaptureRun) -> None:
        body = lines(record("e-1", T0), record("e-2", T0))
        run.feed(PRODUCTION, T0, body, etag="abc")
        again = run.feed(PRODUCTION, T0, body, etag="abc")
        run.feed(SHADOW, T0, body)
        assert (again.status, again.records_read) == ("duplicate", 0)
        total = run.close()
        assert (total.records_read, total.paired) == (4, 2)

    def test_given_object_rewritten_with_new_etag_when_processed_then_read_again_as_duplicates(
        self, run: CaptureRun
    ) -> None:
        body = lines(record("e-1", T0))
        run.feed(PRODUCTION, T0, body, etag="v1")
        second = run.feed(PRODUCTION, T0, body, etag="v2")
        assert second.unpaired == {"duplicate-record": 1}
        run.feed(SHADOW, T0, body)
        total = run.close()
        assert (total.paired, total.unpaired) == (1, {"duplicate-record": 1})

    def test_given_sampling_mirrors_a_third_when_closed_then_the_rest_unpaired_without_shadow_twin(
        self, run: CaptureRun
    ) -> None:
        stamps = [T0 + timedelta(seconds=i) for i in range(30)]
        run.feed(PRODUCTION, T0, lines(*(record(f"e{i}", at, body=str(i)) for i, at in enumerate(stamps))))
        run.feed(SHADOW, T0, lines(*(record(f"e{i}", at, body=str(i)) for i, at in enumerate(stamps) if i % 3 == 0)))
        total = run.close()
        assert (total.paired, total.unpaired) == (10, {"no-shadow-twin": 20})

    def test_given_shadow_only_record_when_closed_then_no_production_twin(self, run: CaptureRun) -> None:
        run.feed(SHADOW, T0, lines(record("lonely", T0)))
        assert run.close().unpaired == {"no-production-twin": 1}


class TestWindows:
    def test_given_window_passed_when_finalised_then_waiting_halves_evicted_and_summarised(
        self, run: CaptureRun
    ) -> None:
        run.feed(PRODUCTION, T0, lines(record("e-1", T0), record("e-2", T0)))
        run.feed(SHADOW, T0, lines(record("e-1", T0)))
        assert run.finalise(T0 + timedelta(seconds=60)) == []  # too early: a twin may still come
        closed = run.finalise(T0 + timedelta(minutes=10))
        assert [(s.paired, s.unpaired) for s in closed] == [(1, {"no-shadow-twin": 1})]
        assert closed[0].window_start <= T0 < closed[0].window_end

    def test_given_record_for_closed_window_when_read_then_late_and_counted_in_a_new_summary(
        self, run: CaptureRun
    ) -> None:
        run.feed(PRODUCTION, T0, lines(record("e-1", T0)))
        first = run.finalise(T0 + timedelta(minutes=10))
        run.feed(SHADOW, T0, lines(record("e-1", T0)))
        second = run.finalise(T0 + timedelta(minutes=20))
        assert [s.unpaired for s in first] == [{"no-shadow-twin": 1}]
        assert [(s.late_records, s.unpaired, s.window_start) for s in second] == [
            (1, {"no-production-twin": 1}, first[0].window_start)
        ]
        assert run.close().records_read == 2

    def test_given_halves_one_window_apart_when_read_then_paired(self, run: CaptureRun) -> None:
        start = T0.replace(second=0)  # T0 is on a window boundary: halves 90 s apart straddle it
        run.feed(PRODUCTION, start, lines(record("p", start - timedelta(seconds=45), body="x")))
        run.feed(SHADOW, start, lines(record("s", start + timedelta(seconds=44), body="x")))
        assert run.close().paired_by == {"fingerprint": 1}

    def test_given_late_due_when_finalise_due_then_lateness_respected(self) -> None:
        engine = DiffEngine(diff_config(allowedLatenessSeconds=600))
        engine.process_object(key(PRODUCTION, T0), "e", lines(record("e-1", T0)))
        assert engine.finalise_due(T0 + timedelta(minutes=10)) == []
        assert len(engine.finalise_due(T0 + timedelta(minutes=15))) == 1
        engine.assert_accounting()


class TestStateContract:
    def test_given_export_when_restored_then_old_generations_obsolete_and_manifest_commits(self) -> None:
        run = CaptureRun(round_trip=True)
        run.feed(PRODUCTION, T0, lines(record("e-1", T0)))
        first_refs = set(run.store.windows)
        run.feed(PRODUCTION, T0, lines(record("e-2", T0)), name="second")
        assert first_refs.isdisjoint(run.store.windows)  # new generations; the old ones were deleted
        run.feed(SHADOW, T0, lines(record("e-1", T0), record("e-2", T0)))
        assert run.close().paired == 2
        # No window blob outlives its window; the processed-object sets stay, one per capture hour.
        assert [ref.kind for ref in run.store.windows] == ["objects"]

    def test_given_crash_before_commit_when_object_retried_then_counted_once(self) -> None:
        run = CaptureRun(round_trip=True)
        run.feed(PRODUCTION, T0, lines(record("e-1", T0)))
        lost = DiffEngine(run.config, run.store.manifest, run.store)
        lost.process_object(key(SHADOW, T0), "etag-s", lines(record("e-1", T0)))
        lost.export()  # never committed: the invocation died
        result = run.feed(SHADOW, T0, lines(record("e-1", T0)), etag="etag-s")
        assert result.paired == 1
        assert run.close().records_read == 2

    def test_given_corrupt_blob_when_loaded_then_diff_state_corrupt(self) -> None:
        run = CaptureRun(round_trip=True)
        run.feed(PRODUCTION, T0, lines(record("e-1", T0)))
        ref = next(iter(run.store.windows))
        run.store.windows[ref] = b"garbage"
        with pytest.raises(DiffStateCorrupt):
            run.feed(SHADOW, T0, lines(record("e-1", T0)))

    def test_given_window_length_changed_when_manifest_loaded_then_diff_state_corrupt(self) -> None:
        run = CaptureRun(round_trip=True)
        run.feed(PRODUCTION, T0, lines(record("e-1", T0)))
        assert run.store.manifest is not None
        with pytest.raises(DiffStateCorrupt):
            DiffEngine(diff_config(pairingWindowSeconds=60), run.store.manifest, run.store)


class TestForeignObjects:
    @pytest.mark.parametrize(
        "foreign",
        [
            "capture/test-1/other-endpoint/primary/2026/03/01/09/58-00-000-x.jsonl",
            "capture/test-1/fraud-detector/third-variant/2026/03/01/09/58-00-000-x.jsonl",
            "capture/test-1/fraud-detector/primary/latest.jsonl",
        ],
    )
    def test_given_key_outside_the_test_when_processed_then_invalid_capture_object(self, foreign: str) -> None:
        engine = DiffEngine(diff_config())
        with pytest.raises(InvalidCaptureObject):
            engine.process_object(foreign, "etag", lines(record("e", T0)))
        engine.assert_accounting()


def half(
    event: str, body_print: int, when: int, window: int = 0, inference: str | None = None, answer: str = "{}"
) -> Half:
    return (event, inference, body_print, when, window, "JSON", "application/json", answer, "k", 1)


class TestPendingHalves:
    """The engine calls these very methods (WaitingSide.twin_of, hold and take, and fingerprint) once per
    record: pairing has one implementation."""

    def test_given_a_body_when_fingerprinted_then_the_same_in_every_process(self) -> None:
        # Stored state holds fingerprints: they must not depend on PYTHONHASHSEED.
        assert fingerprint("1.5,2.5,3.5") == FINGERPRINT_OF_SAMPLE_BODY

    def test_given_equal_bodies_waiting_when_taken_one_by_one_then_index_stays_consistent(self) -> None:
        production = PendingHalves(window_ms=120_000).sides[PRODUCTION_SIDE]
        first, second, third = half("a", 7, 1_000), half("b", 7, 5_000), half("c", 7, 9_000, inference="i")
        for item in (first, second, third):
            assert production.hold(item)
        assert production.by_print[7] == [first, second, third]
        assert production.best_twin([first, second, third], "x", None, 4_000) is second
        assert production.best_twin([first, second, third], "x", "i", 4_000) is third
        assert production.twin_of(7, "x", "i", 4_000) is third
        production.take(second)
        production.take(third)
        remaining = production.by_print.get(7)  # a lone half again, no longer a list
        assert remaining is first
        assert list(production.by_event) == ["a"]
        assert production.best_twin([first], "x", None, 200_000) is None  # beyond one window
        assert production.twin_of(7, "x", None, 200_000) is None
        assert len(production) == 1

    def test_given_one_half_waiting_when_its_twin_is_looked_up_then_found_by_fingerprint_within_one_window(
        self,
    ) -> None:
        shadow = PendingHalves(window_ms=120_000).sides[SHADOW_SIDE]
        waiting = half("s-1", 5, 10_000)
        assert shadow.hold(waiting)
        assert shadow.twin_of(5, "p-1", None, 10_000 + 120_000) is waiting  # the window's edge: still a twin
        assert shadow.twin_of(5, "p-1", None, 10_000 + 120_001) is None
        assert shadow.twin_of(6, "s-1", None, 10_000) is None  # the same eventId, another body: not a twin
        shadow.take(waiting)
        assert (len(shadow), shadow.by_event, shadow.by_print) == (0, {}, {})

    def test_given_one_event_id_with_two_bodies_when_held_then_both_wait_and_an_exact_copy_does_not(self) -> None:
        pending = PendingHalves(window_ms=120_000)
        production = pending.sides[PRODUCTION_SIDE]
        one, other, copy = half("a", 1, 0), half("a", 2, 0), half("a", 1, 0)
        assert production.hold(one)
        assert production.hold(other)
        assert not production.hold(copy)
        assert production.hold(half("a", 1, 0, answer='{"v":2}'))  # another answer: distinct
        assert len(pending) == 3
        production.take(other)
        assert len(pending) == 2
        assert sorted(h[FINGERPRINT] for h in production.waiting()) == [1, 1]

    def test_given_windows_when_evicted_then_only_their_halves_leave(self) -> None:
        pending = PendingHalves(window_ms=120_000)
        pending.sides[PRODUCTION_SIDE].hold_all([half("a", 1, 0, window=5), half("b", 2, 0, window=6)])
        pending.sides[SHADOW_SIDE].hold_all([half("c", 1, 0, window=5)])
        assert pending.in_windows([5]) == {5: ([half("a", 1, 0, window=5)], [half("c", 1, 0, window=5)])}
        assert sorted(h[0] for _, h in pending.evict([5])) == ["a", "c"]
        assert len(pending) == 1

    def test_given_bulk_hold_with_colliding_prints_when_loaded_then_same_as_one_by_one(self) -> None:
        bulk, single = PendingHalves(120_000).sides[PRODUCTION_SIDE], PendingHalves(120_000).sides[PRODUCTION_SIDE]
        halves = [half("a", 1, 0), half("b", 1, 10), half("c", 2, 20)]
        bulk.hold(half("z", 2, 30))
        single.hold(half("z", 2, 30))
        bulk.hold_all(halves)
        for item in halves:
            single.hold(item)
        assert (bulk.by_event, bulk.by_print) == (single.by_event, single.by_print)
        bulk.hold_all([half("a", 9, 0)])  # the same eventId with another body: a record too
        assert len(bulk) == 5
        with pytest.raises(ValueError, match="exact copy"):
            bulk.hold_all([half("a", 9, 0)])
