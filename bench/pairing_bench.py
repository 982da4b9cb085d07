"""Pairing speed: the diff engine alone, in process, on the traffic shapes that decide how records pair.

diff_bench.py measures the whole engine against a baseline (and is what `make bench` runs); this one is
for changes to pairing (response_diffs/pairing.py, which the engine calls once per record), where what
matters is CPU time per record on each path:
  shared-event-ids   a shadow record repeats production's eventId; half the requests carry a unique
                     inferenceId (diff_bench.py's traffic: the common path);
  own-event-ids      the shadow's records have eventIds of their own (undocumented either way);
  reused-ids         as own-event-ids, but the clients reuse 8 inferenceIds for all their requests;
  repeated-bodies    as shared-event-ids, but every 10th request sends one and the same body (a health
                     check) under its own eventId and inferenceId.
Each scenario is synthetic capture (shadowscale_localcloud.synthetic_capture) delivered out of order (up to
DELAY_SECONDS late), fed to one DiffEngine with finalise_due() after every object, then closed. Timed with
time.process_time() (CPU, not wall clock: the machine is shared), best of --runs; pinned to one CPU.
Exact matches are checked against the generator's truth, so a speed-up cannot come from wrong pairs.

    .venv/bin/python bench/pairing_bench.py [--pairs 50000] [--runs 5] [--scenario NAME ...]

To compare with another revision, run a copy of this file placed in that revision's tree (it imports the
layer next to itself): e.g. `git archive HEAD | tar -x -C /tmp/old && cp bench/pairing_bench.py /tmp/old/bench/`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "layers" / "shadowscale"), str(REPO / "localcloud")]

from shadowscale.response_diffs.engine import DiffEngine  # noqa: E402
from shadowscale.shared.diff_contract import ClassificationRule, DiffConfig  # noqa: E402
from shadowscale_localcloud.synthetic_capture import (  # noqa: E402
    CaptureObject,
    SyntheticTraffic,
    delivered_at,
    delivery_order,
    generate,
)

DELAY_SECONDS = 300.0
TRAFFIC = SyntheticTraffic(
    requests_per_second=50.0,
    shadow_share=1.0,
    noise_share=0.45,
    disagreement_share=0.05,
    shared_event_ids=True,
    inference_id_share=0.5,
    object_seconds=60.0,
    instances=2,
)
REUSED_IDS = 8
HEALTH_CHECK_EVERY = 10
HEALTH_CHECK_BODY = "0,0,0"


@dataclass(frozen=True)
class Scenario:
    name: str
    traffic: SyntheticTraffic
    reuse_ids: bool = False
    repeat_bodies: bool = False


SCENARIOS = (
    Scenario("shared-event-ids", TRAFFIC),
    Scenario("own-event-ids", replace(TRAFFIC, shared_event_ids=False)),
    Scenario("reused-ids", replace(TRAFFIC, shared_event_ids=False, inference_id_share=1.0), reuse_ids=True),
    Scenario("repeated-bodies", TRAFFIC, repeat_bodies=True),
)


def _rewrite(item: CaptureObject, scenario: Scenario) -> CaptureObject:
    """The object with its records' ids or bodies changed as the scenario says (both halves of a request
    alike: the change is a function of what the generator wrote into each)."""
    rewritten = []
    for line in item.body.splitlines():
        record = orjson.loads(line)
        metadata = record["eventMetadata"]
        if scenario.reuse_ids and "inferenceId" in metadata:
            metadata["inferenceId"] = f"client-{int(metadata['inferenceId'].removeprefix('req-')) % REUSED_IDS}"
        given = record["captureData"]["endpointInput"]
        if scenario.repeat_bodies and given["encoding"] == "CSV" and int(given["data"].split(",", 1)[0][-1]) == 0:
            # The generator makes each request's first feature end in its number modulo 10.
            given["data"] = HEALTH_CHECK_BODY
        rewritten.append(orjson.dumps(record))
    return replace(item, body=b"\n".join(rewritten) + b"\n")


def _config() -> DiffConfig:
    return DiffConfig(
        shadow_test="bench",
        endpoint=TRAFFIC.endpoint,
        production_variant=TRAFFIC.production_variant,
        shadow_variant=TRAFFIC.shadow_variant,
        classification=ClassificationRule(label_path="label", scores_path="scores", top_k=2),
    )


def measure(scenario: Scenario, pairs: int, runs: int) -> dict[str, object]:
    objects, truth = generate(replace(scenario.traffic, requests=pairs))
    if scenario.reuse_ids or scenario.repeat_bodies:
        objects = [_rewrite(item, scenario) for item in objects]
    delivery = [(item, delivered_at(item, DELAY_SECONDS)) for item in delivery_order(objects, DELAY_SECONDS)]
    timings = []
    paired = exact = 0
    for _ in range(runs):
        started = time.process_time()
        engine = DiffEngine(_config())
        summaries = []
        for item, at in delivery:
            engine.process_object(item.key, item.etag, item.body)
            summaries += engine.finalise_due(at)
        summaries += engine.close_all()
        engine.assert_accounting()
        timings.append(time.process_time() - started)
        paired = sum(summary.paired for summary in summaries)
        exact = sum(summary.exact_matches for summary in summaries)
    best = min(timings)
    return {
        "scenario": scenario.name,
        "pairs": paired,
        "truth_pairs": truth.pairs,
        "exact": exact,
        "truth_exact": truth.identical,
        "cpu_seconds": round(best, 3),
        "pairs_per_cpu_second": round(paired / best),
        "runs": [round(timing, 3) for timing in timings],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", action="append", choices=[scenario.name for scenario in SCENARIOS])
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario")
    arguments = parser.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    for scenario in SCENARIOS:
        if arguments.scenario and scenario.name not in arguments.scenario:
            continue
        result = measure(scenario, arguments.pairs, arguments.runs)
        if arguments.json:
            print(json.dumps(result))
            continue
        print(
            f"{result['scenario']:<18} pairs {result['pairs']}/{result['truth_pairs']}"
            f"  exact {result['exact']}/{result['truth_exact']}  {result['cpu_seconds']:.3f} s CPU"
            f"  {result['pairs_per_cpu_second']} pairs/s  runs {result['runs']}"
        )


if __name__ == "__main__":
    main()
