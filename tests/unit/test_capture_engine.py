"""The engine end to end: synthetic capture with a known truth, bad lines and bad answers, gzip objects,
and the per-object results an adapter stores."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from shadowscale.response_diffs.pairing import Half
from shadowscale.response_diffs.state import decode_window, encode_window
from shadowscale.shared.errors import DiffStateCorrupt
from shadowscale_localcloud.synthetic_capture import SyntheticTraffic, delivered_at, delivery_order, generate

from tests.capture_factories import PRODUCTION, SHADOW, T0, CaptureRun, diff_config, lines, record

RULE = {"classification": {"labelPath": "label", "scoresPath": "scores"}}
# Five minutes of traffic across 10:00, written in 45-second objects.
TRAFFIC = SyntheticTraffic(
    requests=3000, requests_per_second=10.0, object_seconds=45.0, start=T0.replace(minute=57, second=30), seed=5
)


@pytest.mark.parametrize("round_trip", [False, True], ids=["warm", "state-round-trip"])
@pytest.mark.parametrize(
    "traffic",
    [
        TRAFFIC,
        replace(TRAFFIC, shared_event_ids=False, inference_id_share=0.3, shadow_share=0.6, seed=6),
        replace(TRAFFIC, malformed_share=0.02, gzip_share=0.5, seed=8),
    ],
    ids=["shared-event-ids", "fingerprints-and-sampling", "damaged-and-gzipped"],
)
def test_given_synthetic_capture_when_delivered_out_of_order_then_summary_matches_the_truth(
    traffic: SyntheticTraffic, round_trip: bool
) -> None:
    objects, truth = generate(traffic)
    run = CaptureRun(config=diff_config(**RULE), round_trip=round_trip)
    for item in delivery_order(objects, max_delay_seconds=240):
        result = run.feed_object(item.key, item.body, etag=item.etag)
        assert result.records_read == item.records  # the engine read what the generator wrote
        run.finalise(delivered_at(item, 240) - timedelta(minutes=15))
    total = run.close()
    assert total.records_read == truth.lines
    assert total.paired == truth.pairs
    assert total.exact_matches == truth.identical
    assert total.within_tolerance == truth.identical + truth.within_noise
    assert total.mismatches == truth.disagreements
    assert total.unpaired.get("no-shadow-twin", 0) == truth.unpaired_production
    assert total.unpaired.get("no-production-twin", 0) == truth.unpaired_shadow
    assert total.quarantined == truth.damaged
    assert total.labels.agreed == truth.identical + truth.within_noise


def test_given_keys_of_the_synthetic_objects_when_parsed_then_they_span_two_hours() -> None:
    objects, _ = generate(TRAFFIC)
    hours = {item.key.split("/")[-2] for item in objects}
    assert hours == {"09", "10"}
    assert {item.variant for item in objects} == {"primary", "candidate"}


class TestBadAnswers:
    def test_given_waiting_half_with_undecodable_answer_when_read_then_quarantined_and_twin_unpaired(self) -> None:
        run = CaptureRun()
        result = run.feed(PRODUCTION, T0, lines(record("e-1", T0, "{not json"), record("e-2", T0)))
        assert [(q.line, q.reason) for q in result.quarantine] == [(1, "undecodable-data")]
        run.feed(SHADOW, T0, lines(record("e-1", T0), record("e-2", T0)))
        total = run.close()
        assert (total.paired, total.unpaired, total.quarantined) == (
            1,
            {"no-production-twin": 1},
            {"undecodable-data": 1},
        )

    def test_given_completing_half_with_undecodable_answer_when_read_then_quarantined_and_twin_keeps_waiting(
        self,
    ) -> None:
        run = CaptureRun()
        run.feed(PRODUCTION, T0, lines(record("e-1", T0, '{"score":0.5}')))
        bad = run.feed(SHADOW, T0, lines(record("e-1", T0, "{oops")))
        good = run.feed(SHADOW, T0, lines(record("e-1", T0, '{"score":0.5}')), name="retry")
        assert (bad.quarantined, bad.paired, good.paired) == (1, 0, 1)
        total = run.close()
        assert (total.paired, total.quarantined) == (1, {"undecodable-data": 1})

    def test_given_identical_answers_when_paired_then_counted_without_a_second_decode(self) -> None:
        run = CaptureRun()
        run.feed(PRODUCTION, T0, lines(record("e-1", T0, '{"a":[1,2]}')))
        run.feed(SHADOW, T0, lines(record("e-1", T0, '{"a":[1,2]}')))
        total = run.close()
        assert (total.exact_matches, total.abs_diff.zeros) == (1, 1)


class TestObjectResults:
    def test_given_bad_lines_when_processed_then_listed_with_key_line_and_reason(self) -> None:
        run = CaptureRun()
        body = lines(record("e-1", T0), orjson.dumps(record("e-x", T0))[:30], record("e-2", T0))
        result = run.feed(PRODUCTION, T0, body)
        assert (result.records_read, result.pending, result.quarantined) == (3, 2, 1)
        assert [(q.key, q.line, q.reason) for q in result.quarantine] == [(result.key, 2, "truncated-line")]

    def test_given_cut_gzip_object_when_processed_then_problem_reported_and_last_line_truncated(self) -> None:
        run = CaptureRun()
        body = gzip.compress(lines(*(record(f"e{i}", T0, body=f"{i},{i}") for i in range(400))))
        result = run.feed(PRODUCTION, T0, body[: len(body) * 3 // 4])
        assert result.problems
        assert 0 < result.pending < 400
        assert [q.reason for q in result.quarantine] in ([], ["truncated-line"])
        run.close()

    def test_given_object_spanning_windows_when_processed_then_every_window_named(self) -> None:
        run = CaptureRun()
        stamps = [T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)]
        result = run.feed(PRODUCTION, T0, lines(*(record(f"e{i}", at) for i, at in enumerate(stamps))))
        assert len(result.windows) == 3
        assert result.windows[0] <= T0
        run.close()

    def test_given_mismatch_when_sampled_then_configured_fields_redacted(self) -> None:
        run = CaptureRun(config=diff_config(redactFields=["card", "[0]"]))
        ours = orjson.dumps({"card": "4111", "risk": 0.1}).decode()
        theirs = orjson.dumps({"card": "4111", "risk": 0.9}).decode()
        run.feed(PRODUCTION, T0, lines(record("e-1", T0, ours, body="4111111111111111,5")))
        run.feed(SHADOW, T0, lines(record("e-1", T0, theirs, body="4111111111111111,5")))
        sample = run.close().mismatch_samples[0]
        shown = sample.input + sample.production_output + sample.shadow_output
        assert "4111" not in shown
        assert sample.input == "***,5"
        assert sample.fields == ("risk",)
        assert sample.abs_diff == pytest.approx(0.8)


class TestWindowEncoding:
    HALVES: tuple[list[Half], list[Half]] = (
        [("e-1", "i-1", 11, 1000, 7, "JSON", "application/json", '{"a":1}', "k/one", 1)],
        [
            ("e-2", None, 12, 1001, 7, "CSV", "text/csv", "0.5", "k/two", 3),
            ("e-3", None, 13, 1002, 7, "CSV", "text/csv", "0.6", "k/one", 4),
        ],
    )

    def test_given_waiting_halves_when_encoded_as_columns_then_decoded_alike(self) -> None:
        production, shadow = self.HALVES
        content = decode_window(encode_window(7, production, shadow, {"n": 1}), 7)
        assert (content.production, content.shadow, content.tally) == (production, shadow, {"n": 1})
        assert decode_window(encode_window(7, [], [], {}), 7).production == []

    def test_given_version_1_blob_when_decoded_then_same_halves(self) -> None:
        production, shadow = self.HALVES
        keys = ["k/one", "k/two"]

        def row(half: Half) -> list[Any]:
            return [*half[:4], *half[5:8], keys.index(half[8]), half[9]]

        payload = {"v": 1, "index": 7, "keys": keys, "production": [row(h) for h in production]}
        blob = b"SSW1" + orjson.dumps({**payload, "shadow": [row(h) for h in shadow], "tally": {}})
        content = decode_window(blob, 7)
        assert (content.production, content.shadow) == (production, shadow)

    def test_given_unknown_version_or_bad_columns_when_decoded_then_corrupt(self) -> None:
        blob = encode_window(7, *self.HALVES, {})
        with pytest.raises(DiffStateCorrupt):
            decode_window(blob.replace(b'"v":2', b'"v":3'), 7)
        payload = orjson.loads(blob[4:])
        payload["shadow"][0] = payload["shadow"][0][:1]  # one column shorter than the others
        with pytest.raises(DiffStateCorrupt):
            decode_window(b"SSW1" + orjson.dumps(payload), 7)
