"""Pairing when ids are not unique: SageMaker does not require a client's InferenceId to be unique, and
nothing documents eventIds across variants. The request body (its fingerprint) confirms a twin; the ids
rank several confirmed candidates; a duplicate is an exact copy (same eventId, input and answer). Every
test checks the accounting invariant (CaptureRun asserts it after each object and at the end)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.capture_factories import PRODUCTION, SHADOW, T0, CaptureRun, lines, record

SHARED = "client-batch-7"  # one InferenceId a client sends with every request


@pytest.fixture(params=[False, True], ids=["warm", "state-round-trip"])
def run(request: pytest.FixtureRequest) -> CaptureRun:
    return CaptureRun(round_trip=request.param)


def answer(number: int) -> str:
    return f'{{"label":"legit","score":0.{number:03d}}}'


class TestReusedInferenceId:
    @pytest.mark.parametrize(
        "order",
        ["production-first", "shadow-first", "shadow-reversed", "interleaved"],
    )
    def test_given_requests_sharing_one_inference_id_when_halves_arrive_in_any_order_then_each_pairs_with_its_twin(
        self, run: CaptureRun, order: str
    ) -> None:
        # GIVEN four requests with one InferenceId, 20 s apart, each with its own body and answer; the
        # shadow's records have eventIds of their own, and the last request's halves fall in the 10 hour
        stamps = [T0 + timedelta(seconds=20 * i + 65) for i in range(4)]
        production = [
            record(f"p-{i}", at, answer(i), body=f"{i},1", inference_id=SHARED) for i, at in enumerate(stamps)
        ]
        shadow = [
            record(f"s-{i}", at + timedelta(milliseconds=30), answer(i), body=f"{i},1", inference_id=SHARED)
            for i, at in enumerate(stamps)
        ]
        production_objects = [
            (PRODUCTION, stamps[0], lines(*production[:2]), "p0"),
            (PRODUCTION, stamps[2], lines(*production[2:]), "p1"),
        ]
        shadow_objects = [(SHADOW, stamps[i], lines(shadow[i]), f"s{i}") for i in range(4)]
        assert (stamps[0].hour, stamps[3].hour) == (9, 10)
        feeds = {
            "production-first": production_objects + shadow_objects,
            "shadow-first": shadow_objects + production_objects,
            "shadow-reversed": production_objects + shadow_objects[::-1],
            "interleaved": [
                shadow_objects[3],
                production_objects[1],
                shadow_objects[0],
                production_objects[0],
                shadow_objects[2],
                shadow_objects[1],
            ],
        }[order]
        # WHEN they are read
        for variant, written, body, name in feeds:
            run.feed(variant, written, body, name=name)
        total = run.close()
        # THEN every shadow answer met its own production answer (not the oldest with that id)
        assert (total.paired, total.exact_matches, total.mismatches) == (4, 4, 0)
        assert total.paired_by == {"inferenceId": 4}
        assert total.unpaired == {}

    def test_given_candidates_with_one_inference_id_when_one_shares_the_event_id_then_it_wins_over_the_nearer(
        self, run: CaptureRun
    ) -> None:
        # GIVEN three production copies of one request (same body, same InferenceId), a second apart: the
        # middle one has the shadow record's eventId, the newest is nearest to the shadow record in time
        run.feed(
            PRODUCTION,
            T0,
            lines(*(record(f"e-{i}", T0 + timedelta(seconds=i), answer(i), inference_id=SHARED) for i in range(3))),
        )
        # WHEN the shadow record with eventId e-1 arrives
        run.feed(SHADOW, T0, lines(record("e-1", T0 + timedelta(milliseconds=1900), answer(1), inference_id=SHARED)))
        total = run.close()
        # THEN it pairs with e-1 (eventId and fingerprint match), neither the oldest nor the nearest
        assert (total.paired, total.exact_matches) == (1, 1)
        assert total.unpaired == {"no-shadow-twin": 2}

    def test_given_a_newer_request_with_the_event_id_when_the_shadow_arrives_then_not_paired_with_the_oldest(
        self, run: CaptureRun
    ) -> None:
        run.feed(
            PRODUCTION,
            T0,
            lines(
                record("e-1", T0, answer(1), inference_id=SHARED),
                record("e-2", T0 + timedelta(seconds=10), answer(2), inference_id=SHARED),
            ),
        )
        run.feed(SHADOW, T0, lines(record("e-2", T0 + timedelta(seconds=10), answer(2), inference_id=SHARED)))
        total = run.close()
        assert (total.paired, total.exact_matches, total.unpaired) == (1, 1, {"no-shadow-twin": 1})


class TestRetries:
    """Documented behaviour: copies of one request (same InferenceId, same body; a client's retries) are
    interchangeable. Each pairs with the nearest copy of the other side that is waiting when it is read;
    an exact copy of a waiting record (same eventId, input and answer) is a duplicate."""

    @pytest.mark.parametrize("shadow_order", ["in-order", "reversed"])
    def test_given_retries_with_identical_bodies_when_all_are_waiting_then_each_pairs_with_the_nearest(
        self, run: CaptureRun, shadow_order: str
    ) -> None:
        # GIVEN a request retried 30 s later; the model answered each copy differently
        first, retry = T0, T0 + timedelta(seconds=30)
        run.feed(
            PRODUCTION,
            T0,
            lines(
                record("p-1", first, answer(1), inference_id=SHARED),
                record("p-2", retry, answer(2), inference_id=SHARED),
            ),
        )
        shadows = [
            record("s-1", first + timedelta(milliseconds=50), answer(1), inference_id=SHARED),
            record("s-2", retry + timedelta(milliseconds=50), answer(2), inference_id=SHARED),
        ]
        # WHEN the shadow's copies arrive, in either order
        for number, item in enumerate(shadows if shadow_order == "in-order" else shadows[::-1]):
            run.feed(SHADOW, T0, lines(item), name=f"s{number}")
        total = run.close()
        # THEN each pairs with the production copy nearest in time, not with the oldest
        assert (total.paired, total.exact_matches, total.unpaired) == (2, 2, {})

    def test_given_an_exact_copy_of_a_waiting_record_when_read_then_a_duplicate_and_the_retry_a_record(
        self, run: CaptureRun
    ) -> None:
        original = record("p-1", T0, answer(1), inference_id=SHARED)
        retry = record("p-2", T0 + timedelta(seconds=5), answer(1), inference_id=SHARED)
        run.feed(PRODUCTION, T0, lines(original, retry))
        again = run.feed(PRODUCTION, T0, lines(original), name="redelivered")
        assert again.unpaired == {"duplicate-record": 1}
        run.feed(SHADOW, T0, lines(record("s-1", T0, answer(1), inference_id=SHARED)))
        total = run.close()
        assert (total.paired, total.unpaired) == (1, {"duplicate-record": 1, "no-shadow-twin": 1})


class TestRepeatedEventIds:
    def test_given_one_event_id_with_different_bodies_when_read_then_distinct_records_each_paired(
        self, run: CaptureRun
    ) -> None:
        # GIVEN two production records under one eventId, with different requests and answers
        result = run.feed(
            PRODUCTION,
            T0,
            lines(
                record("e-1", T0, answer(1), body="1,1"),
                record("e-1", T0 + timedelta(seconds=2), answer(2), body="2,2"),
            ),
        )
        # THEN neither is a duplicate
        assert (result.unpaired, result.pending) == ({}, 2)
        # WHEN the shadow's records arrive (with the same eventId, in another order)
        run.feed(
            SHADOW,
            T0,
            lines(
                record("e-1", T0 + timedelta(seconds=2), answer(2), body="2,2"),
                record("e-1", T0, answer(1), body="1,1"),
            ),
        )
        total = run.close()
        # THEN each pairs with its own twin and every record is accounted for
        assert (total.records_read, total.paired, total.exact_matches, total.unpaired) == (4, 2, 2, {})
        assert total.paired_by == {"eventId": 2}

    def test_given_one_event_id_and_input_with_another_answer_when_read_then_not_a_duplicate(
        self, run: CaptureRun
    ) -> None:
        result = run.feed(PRODUCTION, T0, lines(record("e-1", T0, answer(1)), record("e-1", T0, answer(2))))
        assert (result.unpaired, result.pending) == ({}, 2)
        run.feed(SHADOW, T0, lines(record("e-1", T0, answer(1)), record("e-1", T0, answer(2))))
        total = run.close()
        assert (total.paired, total.unpaired) == (2, {})

    def test_given_one_event_id_with_the_same_body_when_read_then_one_duplicate_record(self, run: CaptureRun) -> None:
        # GIVEN a record and its exact copy (same eventId, input and answer), then a third with that eventId
        # and another input
        same = record("e-1", T0, answer(1), body="1,1")
        first = run.feed(PRODUCTION, T0, lines(same, same, record("e-1", T0, answer(3), body="3,3")))
        # THEN the copy is counted once as a duplicate, the other input waits as a record of its own
        assert (first.unpaired, first.pending) == ({"duplicate-record": 1}, 2)
        run.feed(SHADOW, T0, lines(record("e-1", T0, answer(1), body="1,1"), record("e-1", T0, answer(3), body="3,3")))
        total = run.close()
        assert (total.records_read, total.paired, total.exact_matches) == (5, 2, 2)
        assert total.unpaired == {"duplicate-record": 1}


# --------------------------------------------------------------------------- property: random reuse and order


@dataclass(frozen=True)
class Request:
    number: int
    at: datetime
    shadow_delay_ms: int
    inference_id: str | None
    production_event: str
    shadow_event: str
    body: str
    output: str


def random_traffic(rng: random.Random) -> list[Request]:
    """Requests over ~6 minutes around the 10:00 hour, reusing a few InferenceIds and eventIds, some of them
    retried (a copy: same InferenceId, body and answer, fresh eventIds, up to 20 s later)."""
    shared_events = rng.random() < 0.5  # whether the shadow repeats production's eventId
    inference_pool = [f"client-{i}" for i in range(rng.randint(1, 3))]
    event_pool = [f"event-{i}" for i in range(rng.randint(1, 4))]
    requests: list[Request] = []
    for number in range(rng.randint(5, 25)):
        if requests and rng.random() < 0.2:
            original = rng.choice(requests)
            at = original.at + timedelta(milliseconds=rng.randint(1000, 20_000))
            inference_id, body, output = original.inference_id, original.body, original.output
            production_event = f"retry-{number}"  # a copy under its original's eventId would be a duplicate
            retried = True
        else:
            at = T0 + timedelta(milliseconds=rng.randint(0, 360_000))
            inference_id = rng.choice([*inference_pool, None])
            body, output = f"{number},{rng.random():.6f}", answer(number)
            production_event = rng.choice(event_pool) if rng.random() < 0.6 else f"unique-{number}"
            retried = False
        if shared_events or retried:
            shadow_event = production_event if shared_events else f"shadow-{number}"
        else:
            shadow_event = rng.choice([*event_pool, f"shadow-{number}"])
        requests.append(
            Request(number, at, rng.randint(0, 400), inference_id, production_event, shadow_event, body, output)
        )
    return requests


def random_objects(rng: random.Random, requests: list[Request]) -> list[tuple[str, datetime, bytes, str]]:
    """Each side's records spread over 1-4 objects, lines shuffled, objects fed in a random order."""
    objects = []
    for variant in (PRODUCTION, SHADOW):
        halves: list[tuple[datetime, dict[str, Any]]] = []
        for request in requests:
            if variant == PRODUCTION:
                at, event = request.at, request.production_event
            else:
                at, event = request.at + timedelta(milliseconds=request.shadow_delay_ms), request.shadow_event
            halves.append((at, record(event, at, request.output, body=request.body, inference_id=request.inference_id)))
        rng.shuffle(halves)
        count = rng.randint(1, 4)
        for part in range(count):
            chunk = halves[part::count]
            if chunk:
                written = min(at for at, _ in chunk)
                objects.append((variant, written, lines(*(item for _, item in chunk)), f"{variant}-{part}"))
    rng.shuffle(objects)
    return objects


@pytest.mark.parametrize("seed", range(100))
def test_given_random_id_reuse_and_arrival_order_when_read_then_pairs_equal_the_truth(seed: int) -> None:
    rng = random.Random(seed)
    requests = random_traffic(rng)
    run = CaptureRun(round_trip=rng.random() < 0.5)
    for variant, written, body, name in random_objects(rng, requests):
        run.feed(variant, written, body, name=name)
    total = run.close()
    # Every answer is unique to its request (a retry repeats its original's): a pair with anything but its
    # own twin (or its original's interchangeable copy) would not be an exact match.
    assert (total.records_read, total.paired, total.exact_matches) == (2 * len(requests), len(requests), len(requests))
    assert total.unpaired == {}
