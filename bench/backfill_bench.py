"""Backfill benchmark: one hour-item of the sliced capture backfill at 1,000 req/s, then the day it implies.

Data. shadowscale_localcloud.synthetic_capture writes real capture objects (both variants, two instances
each, an object per instance and minute) for the hour 10:00-11:00 plus the item's reach on both sides
(pairing window + allowed lateness of the default DiffConfig: 17 minutes each way), generated a minute of
traffic at a time (the generator holds one minute in memory) into bench-output/backfill-capture-<rate>/,
kept between runs (its truth.json says what it holds). Every request is mirrored and no line is damaged, so
the generator's truth for the hour's minutes is exactly what the hour's windows must say.

Measurement. A fresh interpreter pinned to one CPU (os.sched_setaffinity) runs BackfillTasks.diff_slice()
on the hour, the real slice task, over a file-backed store that counts S3 requests and bytes as S3 would
bill them (GET per object read, LIST per 1,000 keys, PUT per output); timed from inside (perf_counter,
after imports); peak memory is the child's VmHWM. Its partial summary is checked against the truth.

Projection. A day is 24 such items; the Distributed Map runs MaxConcurrency of them at once, so its wall
time is ceil(24 / N) item times plus a fixed overhead (start, finish, child executions). A 1,769 MB Lambda
has one full vCPU, taken as this machine's pinned core (the machine is shared, so this errs slow). Cost:
Lambda GB-s (arm64) and requests, S3 requests, Step Functions state transitions of the parent and of
every child execution.

Targets (issue 15): projected day <= 15 min; peak memory <= 1,769 MB (the function's MemorySize); the
hour item within Lambda's 900 s timeout; results equal to the truth.

    .venv/bin/python bench/backfill_bench.py                 # the full hour at 1,000 req/s (3.6M pairs)
    .venv/bin/python bench/backfill_bench.py --rate 50       # a quick run (180k pairs in the hour)
    .venv/bin/python bench/backfill_bench.py --pairs 200000  # the rate that gives that many in the hour
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "layers" / "shadowscale"), str(REPO / "localcloud")]

from shadowscale.shared.diff_contract import ClassificationRule, DiffConfig  # noqa: E402
from shadowscale.shared.stored_bytes import StoredBytes  # noqa: E402

OUTPUT = REPO / "bench-output" / "backfill_bench.json"
HOUR_START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TEST = "bench"
DAY_ITEMS = 24
MEMORY_MB = 1769  # template.yaml: CaptureBackfillFunction MemorySize
LAMBDA_TIMEOUT_S = 900
DAY_TARGET_S = 15 * 60
# us-east-1 list prices: Lambda arm64 per GB-s and per request; S3 Standard per request; Step Functions
# Standard per state transition.
LAMBDA_GB_S = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
S3_GET = 0.0004 / 1000
S3_PUT_LIST = 0.005 / 1000
SFN_TRANSITION = 0.025 / 1000
# Parent: Validate, the Map, Finish (entered and exited); each child: its start and its one Task.
PARENT_TRANSITIONS = 4
CHILD_TRANSITIONS = 2
# Starting and finishing the run and the Map's child executions: measured seconds on AWS are a few; taken
# generously (the projection must not flatter).
MAP_OVERHEAD_S = 30.0


def config() -> DiffConfig:
    return DiffConfig(
        shadow_test=TEST,
        endpoint="fraud-detector",
        production_variant="primary",
        shadow_variant="candidate",
        classification=ClassificationRule(label_path="label", scores_path="scores", top_k=2),
    )


# --------------------------------------------------------------------------------------------- data


def generate_capture(directory: Path, rate: float) -> dict[str, Any]:
    """The hour and its reach, a minute of traffic per generate() call, written as files named by key."""
    from shadowscale.response_diffs.backfill import reach
    from shadowscale_localcloud.synthetic_capture import SyntheticTraffic, generate

    margin = reach(config())
    first, last = HOUR_START - margin, HOUR_START + timedelta(hours=1) + margin
    truth: dict[str, float] = {
        "pairs": 0,
        "identical": 0,
        "within_noise": 0,
        "disagreements": 0,
        "lines": 0,
        "bytes_in_hour": 0,
    }
    total_bytes = 0
    minute = first
    while minute < last:
        traffic = SyntheticTraffic(
            requests=round(rate * 60),
            start=minute,
            requests_per_second=rate,
            prefix=f"capture/{TEST}",
            shared_event_ids=True,
            seed=int(minute.timestamp()),
        )
        objects, facts = generate(traffic)
        in_hour = HOUR_START <= minute < HOUR_START + timedelta(hours=1)
        for item in objects:
            path = directory / item.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.body)
            total_bytes += len(item.body)
            if in_hour:
                truth["bytes_in_hour"] += len(item.body)
        if in_hour:  # a pair counts in its production half's window: the request's minute
            for name in ("pairs", "identical", "within_noise", "disagreements", "lines"):
                truth[name] += getattr(facts, name)
        minute += timedelta(minutes=1)
    truth["bytes_total"] = total_bytes
    truth["rate"] = rate
    return truth


# ----------------------------------------------------------------------------------- measured child


class FileBackedS3:
    """The slice task's S3 (DiffStore for reads and puts, BackfillStorage for listings) over files named by
    key, counting what S3 would bill: a GET per object read, a LIST per page of 1,000 keys, a PUT per write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gets = self.lists = self.puts = 0
        self.bytes_read = 0
        self.written: dict[str, bytes] = {}

    def read_capture(self, key: str) -> StoredBytes | None:
        path = self.root / key
        if not path.exists():
            return None
        body = path.read_bytes()
        self.gets += 1
        self.bytes_read += len(body)
        return StoredBytes(body, key)

    def load_config(self, test_id: str) -> DiffConfig | None:
        return config()

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        self.puts += 1
        self.written[key] = body

    def folders(self, prefix: str) -> list[str]:
        self.lists += 1
        folder = self.root / prefix
        return (
            sorted(f"{prefix}{entry.name}/" for entry in folder.iterdir() if entry.is_dir()) if folder.is_dir() else []
        )

    def keys(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        found = sorted(f"{prefix}{entry.name}" for entry in folder.iterdir()) if folder.is_dir() else []
        self.lists += max(1, math.ceil(len(found) / 1000))
        return found

    def read(self, key: str) -> bytes | None:
        self.gets += 1
        return self.written.get(key)

    # The rest of the DiffStore port: the slice task keeps no state, so none of it may be called.
    def load_state(self, prefix: str) -> Any:  # noqa: ANN401
        raise AssertionError("a slice loads no state")

    def load_window(self, prefix: str, ref: Any) -> bytes:  # noqa: ANN401
        raise AssertionError("a slice loads no state")

    def write_windows(self, prefix: str, blobs: dict[Any, bytes]) -> None:
        raise AssertionError("a slice writes no state")

    def commit(self, prefix: str, manifest: bytes, expected_version: str | None) -> None:
        raise AssertionError("a slice commits no state")

    def delete_windows(self, prefix: str, refs: tuple[Any, ...]) -> None:
        raise AssertionError("a slice deletes no state")


class _Clock:
    def now(self) -> datetime:
        return HOUR_START + timedelta(days=2)

    def sleep(self, seconds: float) -> None:
        return None


class _NoMetrics:
    def publish(self, metrics: Any, at: datetime) -> None:  # noqa: ANN401
        return None

    def count(self, name: str, value: float) -> None:
        return None


def peak_memory_mb() -> float:
    """VmHWM: unlike ru_maxrss it starts afresh at exec, so the parent's memory is not counted."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_item(directory: Path, cpu: int) -> dict[str, Any]:
    from shadowscale.response_diffs.backfill import BackfillTasks, SliceTask, TimeSlice
    from shadowscale.response_diffs.pipeline import CaptureDiffPipeline

    os.sched_setaffinity(0, {cpu})
    s3 = FileBackedS3(directory)
    tasks = BackfillTasks(CaptureDiffPipeline(s3, _NoMetrics(), _Clock()), s3)
    task = SliceTask(
        test_id=TEST,
        run="bench",
        comparison=config(),
        slice=TimeSlice(start=HOUR_START, end=HOUR_START + timedelta(hours=1)),
    )
    started = time.perf_counter()
    diffed = tasks.diff_slice(task)
    wall = time.perf_counter() - started
    partial = json.loads(s3.written[f"diffs/{TEST}/backfill/bench/slices/{task.slice.name}.json"])
    summary = partial["summary"]
    return {
        "wall_s": wall,
        "peak_memory_mb": peak_memory_mb(),
        "s3_bytes_read": s3.bytes_read,
        "s3_gets": s3.gets,
        "s3_lists": s3.lists,
        "s3_puts": s3.puts,
        "objects_read": diffed.objects_read,
        "windows": diffed.windows,
        "result": {
            "pairs": summary["paired"],
            "exact": summary["exactMatches"],
            "within": summary["withinTolerance"],
            "records_read": summary["recordsRead"],
            "unpaired": sum(summary["unpaired"].values()),
            "quarantined": sum(summary["quarantined"].values()),
        },
    }


# --------------------------------------------------------------------------------------- projection


def projection(item: dict[str, Any], concurrency: int) -> dict[str, Any]:
    waves = math.ceil(DAY_ITEMS / concurrency)
    wall = waves * item["wall_s"] + MAP_OVERHEAD_S
    lambda_gb_s = DAY_ITEMS * item["wall_s"] * MEMORY_MB / 1024
    invocations = DAY_ITEMS + 2  # the items, start and finish
    gets = DAY_ITEMS * item["s3_gets"] + DAY_ITEMS  # finish reads every partial
    put_list = DAY_ITEMS * (item["s3_lists"] + item["s3_puts"]) + 1 + DAY_ITEMS  # + summary, Map results
    transitions = PARENT_TRANSITIONS + DAY_ITEMS * CHILD_TRANSITIONS
    cost = {
        "lambda_compute": lambda_gb_s * LAMBDA_GB_S,
        "lambda_requests": invocations * LAMBDA_REQUEST,
        "s3_requests": gets * S3_GET + put_list * S3_PUT_LIST,
        "step_functions": transitions * SFN_TRANSITION,
    }
    return {
        "max_concurrency": concurrency,
        "waves": waves,
        "wall_s": wall,
        "lambda_gb_s": lambda_gb_s,
        "s3_get_requests": gets,
        "s3_put_list_requests": put_list,
        "state_transitions": transitions,
        "child_executions": DAY_ITEMS,
        "cost_usd": cost,
        "cost_total_usd": sum(cost.values()),
    }


def figures(item: dict[str, Any], truth: dict[str, Any], day: dict[str, Any], matches: bool) -> list[dict[str, Any]]:
    read_ratio = item["s3_bytes_read"] / truth["bytes_in_hour"] if truth["bytes_in_hour"] else 0.0
    return [
        {
            "figure": "backfill day wall (projected)",
            "value": round(day["wall_s"], 1),
            "unit": "s",
            "target": f"<= {DAY_TARGET_S} s (15 min)",
            "passed": day["wall_s"] <= DAY_TARGET_S,
            "detail": f"{DAY_ITEMS} hour items, MaxConcurrency {day['max_concurrency']}, rate {truth['rate']:g} req/s",
        },
        {
            "figure": "backfill item peak memory",
            "value": round(item["peak_memory_mb"], 1),
            "unit": "MB",
            "target": f"<= {MEMORY_MB} MB",
            "passed": item["peak_memory_mb"] <= MEMORY_MB,
            "detail": "VmHWM of the pinned child",
        },
        {
            "figure": "backfill hour item wall",
            "value": round(item["wall_s"], 1),
            "unit": "s",
            "target": f"<= {LAMBDA_TIMEOUT_S} s (Lambda timeout)",
            "passed": item["wall_s"] <= LAMBDA_TIMEOUT_S,
            "detail": f"{item['result']['pairs']:,} pairs, {item['result']['pairs'] / item['wall_s']:,.0f} pairs/s",
        },
        {
            "figure": "backfill results equal the truth",
            "value": matches,
            "unit": "",
            "target": "true",
            "passed": matches,
            "detail": "",
        },
        {
            "figure": "backfill item S3 read",
            "value": round(item["s3_bytes_read"] / 1e9, 3),
            "unit": "GB",
            "target": "",
            "passed": None,
            "detail": f"{read_ratio:.2f}x the hour's capture (its reach on both sides); {item['s3_gets']} GET",
        },
        {
            "figure": "backfill day cost (projected)",
            "value": round(day["cost_total_usd"], 4),
            "unit": "$",
            "target": "",
            "passed": None,
            "detail": f"{day['lambda_gb_s']:,.0f} GB-s, {day['state_transitions']} transitions",
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second (default 1000)")
    parser.add_argument("--pairs", type=int, help="pairs in the hour (sets --rate to pairs / 3600)")
    parser.add_argument("--max-concurrency", type=int, default=24, help="the Map's MaxConcurrency (default 24)")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU the measured child is pinned to")
    parser.add_argument("--fresh", action="store_true", help="generate the capture again")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child is not None:
        print(json.dumps(run_item(options.child, options.cpu)))
        return 0

    rate = options.pairs / 3600 if options.pairs else options.rate
    directory = REPO / "bench-output" / f"backfill-capture-{rate:g}"
    truth_file = directory / "truth.json"
    if options.fresh or not truth_file.exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        started = time.perf_counter()
        truth = generate_capture(directory, rate)
        truth_file.write_text(json.dumps(truth))
        print(f"generated {truth['bytes_total'] / 1e9:.2f} GB of capture in {time.perf_counter() - started:.0f} s")
    truth = json.loads(truth_file.read_text())

    child = subprocess.run(
        [sys.executable, __file__, "--child", str(directory), "--cpu", str(options.cpu)],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        print(child.stderr, file=sys.stderr)
        return 1
    item = json.loads(child.stdout)
    result = item["result"]
    expected = {
        "pairs": truth["pairs"],
        "exact": truth["identical"],
        "within": truth["identical"] + truth["within_noise"],
        "records_read": truth["lines"],
        "unpaired": 0,
        "quarantined": 0,
    }
    matches = result == expected
    day = projection(item, options.max_concurrency)
    report = {
        "rate": rate,
        "truth": truth,
        "expected": expected,
        "item": item,
        "day": day,
        "figures": figures(item, truth, day, matches),
    }
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2))
    print(
        f"hour item at {rate:g} req/s: {result['pairs']:,} pairs in {item['wall_s']:.1f} s, "
        f"peak {item['peak_memory_mb']:.0f} MB, read {item['s3_bytes_read'] / 1e9:.2f} GB in {item['s3_gets']} GET, "
        f"{item['s3_lists']} LIST, {item['s3_puts']} PUT"
    )
    print(
        f"day: {DAY_ITEMS} items at MaxConcurrency {day['max_concurrency']}: {day['wall_s']:.0f} s wall, "
        f"${day['cost_total_usd']:.4f} ({day['lambda_gb_s']:,.0f} GB-s)"
    )
    if not matches:
        print(f"results differ from the truth: {result} != {expected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
