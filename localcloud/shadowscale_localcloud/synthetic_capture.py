"""Synthetic data capture with a known truth, for tests and the benchmark.

A fraud-style classifier: requests are mostly CSV rows of 30 features (an amount, then 29 others), some
JSON documents and some BASE64 float32 arrays; answers are JSON {"label", "score", "scores"}. Each
variant writes capture objects the way SageMaker does, per instance every `object_seconds`, at its own
phase, so a request's two halves usually sit in different objects, sometimes in different hours. The
truth says how many pairs there are and how many answers are identical, differ within tolerance
(noise below 1e-6) or disagree (another label).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

LABELS = ("legit", "review", "fraud", "chargeback")
FEATURE_POOL_SIZE = 4096
NOISE = 1e-7  # far below the default tolerance (absolute 1e-6)


@dataclass(frozen=True)
class SyntheticTraffic:
    requests: int = 1000
    start: datetime = datetime(2026, 3, 1, 9, 55, tzinfo=UTC)
    requests_per_second: float = 50.0
    shadow_share: float = 1.0  # share of requests mirrored to the shadow (sampling leaves the rest alone)
    noise_share: float = 0.4  # of mirrored requests: the shadow's scores differ by NOISE
    disagreement_share: float = 0.05  # of mirrored requests: the shadow answers another label
    json_input_share: float = 0.10
    base64_input_share: float = 0.05
    inference_id_share: float = 0.5
    shared_event_ids: bool = True  # whether a shadow record carries its production twin's eventId
    object_seconds: float = 60.0
    instances: int = 2
    malformed_share: float = 0.0  # of all lines: replaced by a damaged line (see DAMAGES)
    gzip_share: float = 0.0
    endpoint: str = "fraud-detector"
    production_variant: str = "primary"
    shadow_variant: str = "candidate"
    prefix: str = "capture/test-1"
    seed: int = 7


@dataclass(frozen=True)
class CaptureObject:
    key: str
    etag: str
    body: bytes
    variant: str
    first_ms: int
    last_ms: int
    records: int


@dataclass
class SyntheticTruth:
    requests: int = 0
    mirrored: int = 0
    pairs: int = 0  # mirrored requests whose two halves are both intact
    identical: int = 0
    within_noise: int = 0
    disagreements: int = 0
    damaged: dict[str, int] = field(default_factory=dict)  # reason -> damaged lines
    unpaired_production: int = 0  # production halves that have no intact shadow twin
    unpaired_shadow: int = 0

    @property
    def lines(self) -> int:
        return 2 * self.pairs + self.unpaired_production + self.unpaired_shadow + sum(self.damaged.values())


def _uuid(rng: random.Random) -> str:
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:]}"


def _scores(rng: random.Random) -> list[float]:
    raw = [rng.random() ** 3 for _ in LABELS]
    total = sum(raw)
    return [round(value / total, 6) for value in raw]


def _answer(scores: list[float]) -> str:
    best = max(range(len(scores)), key=scores.__getitem__)
    return orjson.dumps({"label": LABELS[best], "score": scores[best], "scores": scores}).decode()


def _flipped(scores: list[float]) -> list[float]:
    best = max(range(len(scores)), key=scores.__getitem__)
    other = (best + 1) % len(scores)
    flipped = list(scores)
    flipped[best], flipped[other] = scores[other], scores[best] + 0.001  # ties impossible: a new winner
    return flipped


# Each damage is (reason the engine should give, how the line is damaged).
DAMAGES: tuple[tuple[str, str], ...] = (
    ("truncated-line", "cut"),
    ("invalid-json", "garbage"),
    ("missing-field", "no-event-id"),
    ("undecodable-data", "bad-base64"),
)


def _damage(line: bytes, how: str, record: dict[str, object]) -> bytes:
    if how == "cut":
        return line[: len(line) // 2]
    if how == "garbage":
        return line[:-1] + b",}"
    if how == "no-event-id":
        metadata = dict(record["eventMetadata"])  # type: ignore[call-overload]
        del metadata["eventId"]
        return orjson.dumps({**record, "eventMetadata": metadata})
    capture = record["captureData"]
    answered = dict(capture["endpointOutput"])  # type: ignore[index]
    answered.update(encoding="BASE64", data="%%% not base64 %%%")
    return orjson.dumps({**record, "captureData": {**capture, "endpointOutput": answered}})  # type: ignore[dict-item]


@dataclass(frozen=True)
class _Request:
    """One synthetic request: its input, and the halves (variant, ms, eventId, answer) it leaves in capture."""

    given: dict[str, str]
    inference_id: str | None
    halves: tuple[tuple[str, int, str, str], ...]
    outcome: str | None  # None: not mirrored; else identical, noise or disagreement


def generate(traffic: SyntheticTraffic) -> tuple[list[CaptureObject], SyntheticTruth]:
    rng = random.Random(traffic.seed)  # noqa: S311 - synthetic data, reproducible on purpose
    pool = [",".join(f"{rng.gauss(0, 1):.4f}" for _ in range(29)) for _ in range(FEATURE_POOL_SIZE)]
    truth = SyntheticTruth(requests=traffic.requests)
    variants = (traffic.production_variant, traffic.shadow_variant)
    phases = {
        (variant, i): rng.uniform(0, traffic.object_seconds) for variant in variants for i in range(traffic.instances)
    }
    # (variant, instance, flush bucket) -> [(inference ms, line bytes)]
    buckets: dict[tuple[str, int, int], list[tuple[int, bytes]]] = defaultdict(list)
    start_ms = int(traffic.start.timestamp() * 1000)
    gap_ms = 1000.0 / traffic.requests_per_second
    object_ms = traffic.object_seconds * 1000

    for number in range(traffic.requests):
        at = start_ms + int(number * gap_ms + rng.uniform(0, gap_ms))
        request = _request(traffic, rng, pool, number, at)
        intact = []
        for variant, when, event_id, answer in request.halves:
            line, damage = _capture_line(traffic, rng, request, when, event_id, answer)
            if damage is not None:
                truth.damaged[damage] = truth.damaged.get(damage, 0) + 1
            intact.append(damage is None)
            instance = rng.randrange(traffic.instances)
            bucket = int((when - start_ms + phases[(variant, instance)]) // object_ms)
            buckets[(variant, instance, bucket)].append((when, line))
        _tally(truth, request.outcome, intact)
    return _capture_objects(traffic, rng, buckets), truth


def _request(traffic: SyntheticTraffic, rng: random.Random, pool: list[str], number: int, at: int) -> _Request:
    amount = f"{rng.uniform(1, 5000):.2f}{number % 10}"  # unique per request: fingerprints must differ
    kind = rng.random()
    features = f"{amount},{pool[rng.randrange(FEATURE_POOL_SIZE)]}"
    given = _request_input(traffic, kind, features)
    scores = _scores(rng)
    production_answer = _answer(scores)
    inference_id = f"req-{number:09d}" if rng.random() < traffic.inference_id_share else None
    production_event = _uuid(rng)
    halves = [(traffic.production_variant, at, production_event, production_answer)]
    if rng.random() >= traffic.shadow_share:
        return _Request(given, inference_id, tuple(halves), None)
    roll = rng.random()
    if roll < traffic.disagreement_share:
        outcome, shadow_answer = "disagreement", _answer(_flipped(scores))
    elif roll < traffic.disagreement_share + traffic.noise_share:
        outcome, shadow_answer = "noise", _answer([scores[0] + NOISE, *scores[1:]])
    else:
        outcome, shadow_answer = "identical", production_answer
    shadow_event = production_event if traffic.shared_event_ids else _uuid(rng)
    halves.append((traffic.shadow_variant, at + rng.randint(3, 400), shadow_event, shadow_answer))
    return _Request(given, inference_id, tuple(halves), outcome)


def _request_input(traffic: SyntheticTraffic, kind: float, features: str) -> dict[str, str]:
    """Mostly CSV; `kind` picks a BASE64 float32 array or a JSON document for their shares."""
    if kind < traffic.base64_input_share:
        values = [float(value) for value in features.split(",")]
        return {
            "observedContentType": "application/x-npy",
            "mode": "INPUT",
            "data": base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode(),
            "encoding": "BASE64",
        }
    if kind < traffic.base64_input_share + traffic.json_input_share:
        return {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "data": f'{{"instances":[[{features}]]}}',
            "encoding": "JSON",
        }
    return {"observedContentType": "text/csv", "mode": "INPUT", "data": features, "encoding": "CSV"}


def _capture_line(
    traffic: SyntheticTraffic, rng: random.Random, request: _Request, when: int, event_id: str, answer: str
) -> tuple[bytes, str | None]:
    """One half's capture line as SageMaker writes it, and the reason it was damaged (None: intact)."""
    metadata: dict[str, object] = {"eventId": event_id}
    if request.inference_id is not None:
        metadata["inferenceId"] = request.inference_id
    moment = datetime.fromtimestamp(when / 1000, UTC)
    metadata["inferenceTime"] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when % 1000:03d}Z"
    record: dict[str, object] = {
        "captureData": {
            "endpointInput": request.given,
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": answer,
                "encoding": "JSON",
            },
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }
    line = orjson.dumps(record)
    if rng.random() >= traffic.malformed_share:
        return line, None
    reason, how = DAMAGES[rng.randrange(len(DAMAGES))]
    return _damage(line, how, record), reason


def _tally(truth: SyntheticTruth, outcome: str | None, intact: list[bool]) -> None:
    """Count one request into the truth: a pair when both halves are intact, else its unpaired halves."""
    if outcome is not None:
        truth.mirrored += 1
    production_ok = intact[0]
    shadow_ok = len(intact) > 1 and intact[1]
    if not (production_ok and shadow_ok):
        truth.unpaired_production += production_ok
        truth.unpaired_shadow += shadow_ok
        return
    truth.pairs += 1
    if outcome == "identical":
        truth.identical += 1
    elif outcome == "noise":
        truth.within_noise += 1
    else:
        truth.disagreements += 1


def _capture_objects(
    traffic: SyntheticTraffic, rng: random.Random, buckets: dict[tuple[str, int, int], list[tuple[int, bytes]]]
) -> list[CaptureObject]:
    objects = []
    for (variant, _, _), lines in sorted(buckets.items()):
        lines.sort()
        first_ms, last_ms = lines[0][0], lines[-1][0]
        body = b"\n".join(line for _, line in lines) + b"\n"
        if rng.random() < traffic.gzip_share:
            body = gzip.compress(body, compresslevel=1)
        objects.append(
            CaptureObject(
                key=capture_key(traffic, variant, first_ms, rng),
                etag=hashlib.md5(body, usedforsecurity=False).hexdigest(),
                body=body,
                variant=variant,
                first_ms=first_ms,
                last_ms=last_ms,
                records=len(lines),
            )
        )
    return objects


def capture_key(traffic: SyntheticTraffic, variant: str, at_ms: int, rng: random.Random) -> str:
    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    name = f"{moment:%M-%S}-{at_ms % 1000:03d}-{_uuid(rng)}.jsonl"
    return f"{traffic.prefix}/{traffic.endpoint}/{variant}/{moment:%Y/%m/%d/%H}/{name}"


def delivery_order(objects: list[CaptureObject], max_delay_seconds: float, seed: int = 11) -> list[CaptureObject]:
    """Roughly the order S3 notifications arrive in: an object lands after its last record plus a random
    delay of up to `max_delay_seconds`, so neighbours (and the two variants) arrive shuffled."""
    rng = random.Random(seed)  # noqa: S311 - synthetic delays, reproducible on purpose
    delayed = [(item.last_ms + rng.uniform(0, max_delay_seconds * 1000), item.key, item) for item in objects]
    return [item for _, _, item in sorted(delayed)]


def delivered_at(item: CaptureObject, max_delay_seconds: float) -> datetime:
    """A wall clock no earlier than the object's delivery, for finalise_due() in simulations."""
    return datetime.fromtimestamp(item.last_ms / 1000, UTC) + timedelta(seconds=max_delay_seconds)
