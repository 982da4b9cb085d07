"""Differential test: the typed-reader engine against the reference DiffEngine, on the same objects in the
same order. Every outcome must be identical: each ObjectResult (quarantined lines with their line numbers),
every closed and open summary, the accounting, and the exported state, byte for byte, including after a
state round trip. The data mixes what the reader must get right: malformed lines of every kind, gzip (and a
damaged gzip stream), duplicates, sampling gaps, CSV/JSON/BASE64 inputs, JSON Lines answers, lines off the
typed path (extra fields, numbers, non-ASCII, escapes, other time formats) and objects delivered late."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from shadowscale.response_diffs.engine import DiffEngine
from shadowscale.response_diffs.models import DiffSummary
from shadowscale.response_diffs.typed_capture import TypedDiffEngine
from shadowscale.shared.diff_contract import ClassificationRule, DiffConfig
from shadowscale_localcloud.synthetic_capture import SyntheticTraffic, delivered_at, delivery_order, generate

from tests.capture_factories import InMemoryDiffState, b64, diff_config, gzipped, iso, key, record

SEEDS = (3, 17, 29, 41)
T0 = datetime(2026, 3, 1, 9, 55, tzinfo=UTC)


def edge_lines(rng: random.Random, at: datetime) -> list[bytes]:
    """Lines that leave the typed reader's fast path (or must be rejected exactly as the reference does)."""
    when = iso(at)
    base = record(f"edge-{rng.randrange(10**6)}", at)
    extra = orjson.loads(orjson.dumps(base))
    extra["eventMetadata"]["customAttributes"] = "tenant=7"
    numeric = orjson.loads(orjson.dumps(base))
    numeric["eventVersion"] = 0
    huge = orjson.dumps(base)[:-1] + b',"x":1e400}'
    deep = orjson.dumps(base)[:-1] + b',"x":' + b"[" * 1100 + b"]" * 1100 + b"}"
    utf8 = orjson.dumps(record(f"utf8-{rng.randrange(10**6)}", at, output='{"label":"l\u00e9git","score":0.9}'))
    bad_utf8 = orjson.dumps(base).replace(b'"INPUT"', b'"IN\xffPUT"')
    surrogate = orjson.dumps(base).replace(b'"INPUT"', b'"\\ud800"')
    escaped = orjson.dumps(base).replace(b'"legit"', b'"\\u006cegit"')
    duplicate_key = (
        orjson.dumps(base)[:-1] + b',"eventMetadata":{"eventId":"dup-key","inferenceTime":"' + when.encode() + b'"}}'
    )
    return [
        orjson.dumps(extra),
        orjson.dumps(numeric),
        huge,
        deep,
        utf8,
        bad_utf8,
        surrogate,
        escaped,
        duplicate_key,
        b"",
        b"   ",
        orjson.dumps(base) + b"\r",
        b"[1, 2, 3]",
        b"null",
        orjson.dumps({**base, "eventMetadata": {"eventId": "", "inferenceTime": when}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "n", "inferenceTime": when, "inferenceId": 5}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "o", "inferenceTime": when, "inferenceId": None}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "o2", "inferenceTime": when, "inferenceId": ""}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "p", "inferenceTime": when[:19] + "+00:00"}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "q", "inferenceTime": when[:19] + ".12345Z"}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "r", "inferenceTime": when[:19] + ".1x3Z"}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "s", "inferenceTime": "yesterday"}}),
        orjson.dumps({**base, "eventMetadata": {"eventId": "t"}}),
        orjson.dumps({**base, "captureData": {"endpointInput": base["captureData"]["endpointInput"]}}),
        orjson.dumps(record("u", at, input_encoding="XML")),
        orjson.dumps(record("v", at, output_encoding="YAML")),
        orjson.dumps(record("w", at, body="{not json", input_encoding="JSON", input_type="application/json")),
        orjson.dumps(record("x", at, body="%%%", input_encoding="BASE64", input_type="application/octet-stream")),
        orjson.dumps(record("y", at, body=b64(b"\x00\x01"), input_encoding="BASE64", input_type="application/x-npy")),
        orjson.dumps(record("z", at, output='{"a":1}\n{"a":2}', output_type="application/jsonlines")),
        orjson.dumps(record("z2", at, output='{"a":1}\n{oops', output_type="application/jsonlines")),
        orjson.dumps(record("z3", at, output="not json")),
    ]


@dataclass
class Delivered:
    key: str
    etag: str
    body: bytes
    due: datetime


def capture(seed: int) -> list[Delivered]:
    """One test's objects in delivery order: synthetic traffic plus edge objects, and a few held back to
    arrive after their windows closed."""
    rng = random.Random(seed)
    traffic = SyntheticTraffic(
        requests=900,
        start=T0,
        requests_per_second=rng.choice((5.0, 20.0)),
        shadow_share=0.85,  # sampling gaps: unpaired production halves
        json_input_share=0.2,
        base64_input_share=0.15,
        inference_id_share=rng.choice((0.0, 0.5, 1.0)),
        shared_event_ids=rng.random() < 0.5,
        object_seconds=20.0,
        malformed_share=0.04,
        gzip_share=0.4,
        seed=seed,
    )
    objects, _ = generate(traffic)
    ordered = [
        Delivered(item.key, item.etag, item.body, delivered_at(item, 90)) for item in delivery_order(objects, 90, seed)
    ]
    for number in range(6):
        at = T0 + timedelta(seconds=rng.uniform(0, 60))
        lines = edge_lines(rng, at)
        rng.shuffle(lines)
        body = b"\n".join(lines) + b"\n"
        variant = ("primary", "candidate")[number % 2]
        if number == 4:
            body = gzipped(body)
        if number == 5:
            body = gzipped(body)[:-40]  # a damaged stream: what could be read, and a cut last line
        ordered.insert(
            rng.randrange(len(ordered)), Delivered(key(variant, at, f"edge{number}"), f"e{number}", body, at)
        )
    late = [ordered.pop(rng.randrange(len(ordered) // 2)) for _ in range(3)]
    last_due = ordered[-1].due
    ordered += [replace(item, due=last_due) for item in late]
    ordered.insert(rng.randrange(len(ordered)), ordered[rng.randrange(len(ordered))])  # delivered twice
    return ordered


def config_for(seed: int) -> DiffConfig:
    return diff_config(
        allowedLatenessSeconds=30 if seed % 2 else 120,
        pairingWindowSeconds=30,
        mismatchSamples=3,
        quarantineSamples=4,
    ).model_copy(update={"classification": ClassificationRule(label_path="label", scores_path="scores", top_k=2)})


def dumped(summaries: list[DiffSummary]) -> list[dict[str, Any]]:
    return [summary.model_dump(mode="json") for summary in summaries]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("round_trip", [False, True], ids=["warm", "state-round-trip"])
def test_typed_engine_matches_the_reference_on_everything(seed: int, round_trip: bool) -> None:
    # GIVEN one test's capture (malformed lines, gzip, duplicates, gaps, every encoding, late objects)
    config = config_for(seed)
    objects = capture(seed)
    stores = (InMemoryDiffState(), InMemoryDiffState())
    engines: list[DiffEngine] = [DiffEngine(config), TypedDiffEngine(config)]
    kinds = (DiffEngine, TypedDiffEngine)
    for number, item in enumerate(objects):
        if round_trip and number % 7 == 0:
            engines = [kind(config, store.manifest, store) for kind, store in zip(kinds, stores, strict=True)]
        # WHEN both engines read the same object and close what is due
        results = [engine.process_object(item.key, item.etag, item.body) for engine in engines]
        closed = [engine.finalise_watermark(item.due) for engine in engines]
        # THEN every outcome is identical
        assert results[0].model_dump() == results[1].model_dump(), item.key
        assert dumped(closed[0]) == dumped(closed[1]), item.key
        assert engines[0].accounting() == engines[1].accounting()
        if round_trip and number % 7 == 6:
            exports = [engine.export(f"writer-{number}") for engine in engines]
            assert exports[0] == exports[1]
            for store, export in zip(stores, exports, strict=True):
                store.commit(export)
    assert dumped(engines[0].open_summaries()) == dumped(engines[1].open_summaries())
    assert engines[0].export("final") == engines[1].export("final")
    finals = [engine.close_all() for engine in engines]
    assert dumped(finals[0]) == dumped(finals[1])
    assert engines[0].accounting() == engines[1].accounting()
    engines[1].assert_accounting()


def test_the_data_reaches_every_outcome_the_reader_has() -> None:
    # GIVEN the differential data of one seed
    engine = DiffEngine(config_for(SEEDS[0]))
    reasons: set[str] = set()
    statuses: set[str] = set()
    unpaired: set[str] = set()
    late = 0
    for item in capture(SEEDS[0]):
        # WHEN the reference engine reads it
        result = engine.process_object(item.key, item.etag, item.body)
        reasons |= {line.reason for line in result.quarantine}
        statuses.add(result.status)
        unpaired |= set(result.unpaired)
        closed = engine.finalise_watermark(item.due)
        late += sum(summary.late_records for summary in closed)
    summaries = engine.close_all()
    late += sum(summary.late_records for summary in summaries)
    # THEN the comparison above covers every quarantine reason, duplicates, redeliveries and late records
    assert reasons >= {
        "truncated-line",
        "invalid-json",
        "missing-field",
        "invalid-field",
        "not-a-record",
        "unknown-encoding",
        "undecodable-data",
    }
    assert statuses == {"processed", "duplicate"}
    assert late > 0
