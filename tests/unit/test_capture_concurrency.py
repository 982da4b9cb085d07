"""Two diff writers on one test's state (the event source runs up to 2 invocations at once): whatever step
of one the other runs between, the state stays whole, every record is counted once, and the outputs are
byte for byte those of one writer diffing the same batches in the order they were committed."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shadowscale.response_diffs.engine import DiffEngine
from shadowscale.response_diffs.models import CaptureObjectRef, DiffMetrics
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline, unpack_state
from shadowscale.response_diffs.state import Manifest
from shadowscale.shared.diff_contract import CloseDiffs

from tests.capture_factories import PRODUCTION, SHADOW, T0, diff_config, key, lines, record, times
from tests.capture_stores import SharedBucket, SteppedMetrics, WriterView
from tests.fakes import ManualClock, RecordingCloser

TEST = "test-1"
PREFIX = f"diffs/{TEST}/"
MANIFEST = f"{PREFIX}state/manifest.bin"
CONFIG = diff_config()
RECORDS = 10


def _no_step(step: str) -> None:
    return None


@dataclass
class World:
    """One bucket, one clock, the batches to diff and every metric document any writer emitted."""

    batches: dict[str, list[CaptureObjectRef]] = field(default_factory=dict)
    bucket: SharedBucket = field(default_factory=SharedBucket)
    clock: ManualClock = field(default_factory=lambda: ManualClock(T0 + timedelta(hours=1)))
    published: list[tuple[DiffMetrics, datetime]] = field(default_factory=list)
    lines_written: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.bucket.configs[TEST] = CONFIG

    def capture(self, variant: str, start: datetime, name: str, flip_every: int = 0) -> CaptureObjectRef:
        records = []
        for index, at in enumerate(times(start, RECORDS)):
            label = "fraud" if flip_every and variant == SHADOW and index % flip_every == 0 else "legit"
            records.append(
                record(f"e-{name[1:]}-{index}", at, f'{{"label":"{label}","score":0.9}}', body=f"{index},{name[1:]}")
            )
        object_key = key(variant, start, name)
        self.lines_written += len(records)
        return CaptureObjectRef(key=object_key, etag=self.bucket.add(object_key, lines(*records)))

    def batch(self, name: str, start: datetime, *, with_shadow: bool = True, flip_every: int = 3) -> None:
        number = len(self.batches)
        refs = [self.capture(PRODUCTION, start, f"p{number:03d}")]
        if with_shadow:
            refs.append(self.capture(SHADOW, start, f"s{number:03d}", flip_every))
        self.batches[name] = refs

    def writer(self, name: str, before: Callable[[str], None] = _no_step) -> tuple[CaptureDiffPipeline, WriterView]:
        view = WriterView(self.bucket, name, before)
        pipeline = CaptureDiffPipeline(
            view,
            SteppedMetrics(self.published, view.step),
            self.clock,
            RecordingCloser(),
            writer_ids=lambda: f"{name}-{next(self._ids)}",
        )
        return pipeline, view

    def diff(self, pipeline: CaptureDiffPipeline, view: WriterView, name: str) -> None:
        """Diff one batch as the queue would: a failed object comes back until it is not failed."""
        view.label = name
        for _ in range(20):
            outcomes = pipeline.process(self.batches[name])
            if all(outcome.status != "failed" for outcome in outcomes):
                assert all(outcome.status in {"processed", "duplicate"} for outcome in outcomes), outcomes
                return
        raise AssertionError(f"batch {name} kept failing")

    def finish(self) -> None:
        """The test's close request, due (its capture stopped more than the allowed lateness ago)."""
        pipeline, _ = self.writer("closer")
        ended = self.clock.now() - timedelta(seconds=CONFIG.allowed_lateness_seconds + 1)
        assert pipeline.close(CloseDiffs(test_id=TEST, ended_at=ended)) is not None

    # --- what is checked --------------------------------------------------------------------------

    def engine(self) -> DiffEngine:
        manifest, _ = unpack_state(self.bucket.objects[MANIFEST].body)
        view = WriterView(self.bucket, "auditor")
        return DiffEngine(CONFIG, manifest, _Blobs(view))

    def assert_balanced(self) -> None:
        """Records read = paired + unpaired + quarantined + pending, and read = written (none twice)."""
        accounting = self.engine().accounting()
        accounting.assert_balanced()
        assert accounting.records_read == self.lines_written

    def assert_state_tidy(self) -> None:
        """Every blob the manifest names is stored, and nothing else is (a lost attempt's are deleted)."""
        manifest, ledger = unpack_state(self.bucket.objects[MANIFEST].body)
        assert manifest is not None
        named = {f"{PREFIX}state/windows/{ref.name}.bin" for ref in Manifest.decode(manifest, 120_000).refs()}
        assert set(self.bucket.keys(f"{PREFIX}state/windows/")) == named
        assert ledger.outbox == ()

    def metric_documents(self) -> list[str]:
        return sorted(f"{at.isoformat()} {metrics.model_dump_json()}" for metrics, at in self.published)


@dataclass
class _Blobs:
    view: WriterView

    def load_window(self, ref: object) -> bytes:
        return self.view.load_window(PREFIX, ref)  # type: ignore[arg-type]


def three_batches() -> World:
    """A window opened by earlier capture (production only), then two batches that each close something:
    A's capture moves the watermark past the first window, B's (half an hour later) past A's."""
    world = World()
    world.batch("setup", T0 - timedelta(minutes=30), with_shadow=False)
    world.batch("A", T0, flip_every=3)
    world.batch("B", T0 + timedelta(minutes=30), flip_every=4)
    return world


def single_writer(make: Callable[[], World], order: list[str]) -> World:
    world = make()
    pipeline, view = world.writer("solo")
    for name in order:
        world.diff(pipeline, view, name)
    world.finish()
    return world


def interleaved(first: str, second: str, at_step: int) -> tuple[World, str | None]:
    """`first` diffs its batch; before its `at_step`-th step, `second` diffs its own batch from start to end."""
    world = three_batches()
    setup, setup_view = world.writer("setup")
    world.diff(setup, setup_view, "setup")
    other, other_view = world.writer(second)
    fired: list[str] = []
    count = 0

    def before(step: str) -> None:
        nonlocal count
        count += 1
        if count == at_step:
            fired.append(step)
            world.diff(other, other_view, second)

    pipeline, view = world.writer(first, before)
    world.diff(pipeline, view, first)
    if not fired:
        world.diff(other, other_view, second)
    return world, (fired[0] if fired else None)


def steps_of_one_cycle(first: str) -> list[str]:
    """The store and metric calls of one undisturbed cycle of `first`, after the setup batch."""
    probe = three_batches()
    setup, setup_view = probe.writer("setup")
    probe.diff(setup, setup_view, "setup")
    pipeline, view = probe.writer(first)
    probe.diff(pipeline, view, first)
    return list(view.steps)


def test_a_second_writer_at_every_step_of_a_commit_leaves_one_writers_outputs_and_counts_once() -> None:
    for first, second in (("A", "B"), ("B", "A")):
        # GIVEN the steps of one undisturbed cycle of `first` (read, load blobs, read capture, write blobs,
        # commit, delete, files, metrics, settle the outbox, summary)
        steps = steps_of_one_cycle(first)
        assert {"load_state", "load_window", "read_capture", "write_window", "commit", "emit_metrics"} <= {
            step.split(" ")[0] for step in steps
        }
        references: dict[tuple[str, ...], World] = {}

        for at_step in range(1, len(steps) + 2):
            # WHEN `second` diffs its whole batch just before that step of `first`
            world, where = interleaved(first, second, at_step)
            context = f"{second} ran before step {at_step} ({where}) of {first}"

            # THEN the state balances and holds each record once, no blob is left that no manifest names
            world.assert_balanced()
            order = tuple(label for _, label in world.bucket.main_commits)
            assert sorted(order) == sorted(("setup", first, second)), context
            world.finish()
            world.assert_balanced()
            world.assert_state_tidy()
            assert world.engine().accounting().pending == 0

            # AND its outputs and metric documents are byte for byte a single writer's, in the commit order
            if order not in references:
                references[order] = single_writer(three_batches, list(order))
            reference = references[order]
            assert world.bucket.files(PREFIX) == reference.bucket.files(PREFIX), context
            assert world.metric_documents() == reference.metric_documents(), context
        assert len(references) == 2  # both commit orders happened


def test_the_metrics_of_a_window_are_emitted_once_when_both_writers_see_it_in_the_outbox() -> None:
    # GIVEN writer A's commit closed the first window and A is about to emit its metrics
    world, where = interleaved("A", "B", at_step=steps_of_one_cycle("A").index("emit_metrics") + 1)
    assert where == "emit_metrics"

    # WHEN B diffed its whole batch in between (it saw A's entry, claimed by A, in the outbox)
    world.finish()

    # THEN every closed window was emitted exactly once
    ends = [at for _, at in world.published]
    assert len(ends) == len(set(ends)) == 3
    world.assert_state_tidy()


def test_two_threads_diffing_interleaved_batches_match_one_writer_in_commit_order() -> None:
    # GIVEN eight batches four minutes apart, split between two invocations running at once
    def eight_batches() -> World:
        world = World(clock=ManualClock(T0 + timedelta(hours=2)))
        for number in range(8):
            world.batch(f"b{number}", T0 + timedelta(minutes=4 * number), flip_every=2 + number % 3)
        return world

    world = eight_batches()
    failures: list[BaseException] = []

    def invocation(name: str, batches: list[str], seed: int) -> None:
        rng = random.Random(seed)

        def jitter(step: str) -> None:
            time.sleep(rng.random() * 0.002)

        pipeline, view = world.writer(name, jitter)
        try:
            for batch in batches:
                world.diff(pipeline, view, batch)
        except BaseException as exc:
            failures.append(exc)

    # WHEN both run on real threads, each one batch after another
    threads = [
        threading.Thread(target=invocation, args=("even", ["b0", "b2", "b4", "b6"], 1)),
        threading.Thread(target=invocation, args=("odd", ["b1", "b3", "b5", "b7"], 2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    world.assert_balanced()
    order = [label for _, label in world.bucket.main_commits]
    world.finish()

    # THEN nothing is lost or doubled, and the outputs are a single writer's in the order of the commits
    world.assert_balanced()
    world.assert_state_tidy()
    assert sorted(order) == [f"b{number}" for number in range(8)]
    reference = single_writer(eight_batches, order)
    assert world.bucket.files(PREFIX) == reference.bucket.files(PREFIX)
    assert world.metric_documents() == reference.metric_documents()
    summary = world.bucket.json(f"{PREFIX}summary.json")
    assert (summary["recordsRead"], summary["pending"], summary["final"]) == (world.lines_written, 0, True)


def test_two_writers_from_one_manifest_never_name_the_same_blob() -> None:
    # GIVEN a committed state with a window open
    world = World(clock=ManualClock(T0 + timedelta(minutes=5)))
    world.batch("A", T0, with_shadow=False)
    writer, view = world.writer("setup")
    world.diff(writer, view, "A")
    manifest, _ = unpack_state(world.bucket.objects[MANIFEST].body)
    blobs = _Blobs(WriterView(world.bucket, "reader"))

    # WHEN two writers read it, change the same window and export their next state
    exports = []
    for name in ("one", "two"):
        engine = DiffEngine(CONFIG, manifest, blobs)
        engine.process_object(key(SHADOW, T0, name), f"etag-{name}", lines(record(f"e-{name}", T0)))
        exports.append(engine.export(name))

    # THEN their blobs are disjoint: the loser's writes cannot overwrite what the winner's manifest names
    first, second = (set(export.windows) for export in exports)
    assert first
    assert second
    assert first.isdisjoint(second)
    assert {ref.name for ref in first}.isdisjoint(ref.name for ref in second)
