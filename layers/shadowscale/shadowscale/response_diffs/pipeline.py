"""The response-diff pipeline around the engine: capture objects of a batch, grouped by shadow test, each
group one state round trip (read, diff, finalise, commit conditionally, publish).

Per test and commit attempt (one writer id, a fresh uuid, per attempt):
    1. read the state (engine manifest + pipeline ledger, one object) and its version;
    2. re-write the files of the outbox (idempotent: a crash may have cut the last cycle short);
    3. diff every object of the batch; close the windows the event-time watermark has passed (every
       window once the test has ended);
    4. claim the outbox entries whose metrics are still to be emitted and whose claimant's lease ran out,
       add this commit's closed windows, claimed by this writer;
    5. write the new blobs (named by the writer id: they cannot overwrite anything a manifest names), then
       the state, conditionally. A concurrent writer won → its blobs stay whole, ours are orphans (deleted
       at once, best effort), and the attempt starts again at 1 from the state it left;
    6. publish each new closed window's file, emit the metrics of every entry this writer claimed, then
       commit the outbox without them (so a crash anywhere before leaves them for a later claimant, and
       an emitted entry that left the outbox is never emitted again);
    7. rewrite diffs/<test>/summary.json, unless another writer has committed since (its summary is newer).

Outputs, under diffs/<test>/ (or diffs/<test>/backfill/<run>/):
    summary.json                    RunningDiffSummary: closed and open windows merged (the lifecycle reads it)
    windows/<start>-<seq>.json      DiffSummary of one closed window (a window reopened by late data gets another)
    quarantine/<object>.json        the lines of one object that could not be read, with reasons and line numbers
    rejected/<object>.json          an object that is not this test's capture, with the reason
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from shadowscale.response_diffs.engine import DiffEngine, object_identity
from shadowscale.response_diffs.engine_choice import pipeline_engine
from shadowscale.response_diffs.metrics import diff_metrics
from shadowscale.response_diffs.models import (
    CaptureObjectRef,
    ClosedWindow,
    DiffSummary,
    ObjectOutcome,
    ObjectResult,
    PipelineLedger,
    RunningDiffSummary,
)
from shadowscale.response_diffs.ports import DiffMetricsSink, DiffStore, StoredState
from shadowscale.response_diffs.state import Manifest, WindowRef
from shadowscale.shared.clock import Clock
from shadowscale.shared.diff_contract import (
    DIFFS_ROOT,
    CloseDiffs,
    DiffCloser,
    DiffConfig,
    diffs_prefix,
    shadow_test_of_capture_key,
)
from shadowscale.shared.errors import (
    AccountingMismatch,
    CaptureObjectForbidden,
    DiffStateConflict,
    DiffStateCorrupt,
    InvalidCaptureObject,
    TransientAwsError,
)

STATE_MAGIC = b"SSP1"
SUMMARY_FILE = "summary.json"
# Commit attempts per group before its objects are handed back to the queue: each lost race means another
# writer made progress, so a few attempts are plenty with the event source's MaximumConcurrency of 2.
COMMIT_ATTEMPTS = 4
# No invocation outlives Lambda's 15-minute cap: a claim older than this belongs to a writer that is gone.
OUTBOX_LEASE = timedelta(minutes=15)


def new_writer_id() -> str:
    return uuid.uuid4().hex


class _LostRace(Exception):
    """Another writer committed since this attempt read the state; `written`: the blobs it left behind."""

    def __init__(self, written: tuple[WindowRef, ...]) -> None:
        super().__init__("another writer committed first")
        self.written = written


def pack_state(engine_manifest: bytes, ledger: PipelineLedger) -> bytes:
    return STATE_MAGIC + len(engine_manifest).to_bytes(4, "big") + engine_manifest + ledger.model_dump_json().encode()


def unpack_state(blob: bytes | None) -> tuple[bytes | None, PipelineLedger]:
    if blob is None:
        return None, PipelineLedger()
    if not blob.startswith(STATE_MAGIC) or len(blob) < 8:
        raise DiffStateCorrupt(f"not a shadowscale diff state (magic {blob[:4]!r})")
    size = int.from_bytes(blob[4:8], "big")
    engine_manifest, ledger = blob[8 : 8 + size], blob[8 + size :]
    try:
        return engine_manifest, PipelineLedger.model_validate_json(ledger)
    except ValueError as exc:
        raise DiffStateCorrupt(f"unreadable diff ledger: {exc}") from exc


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H-%M-%SZ")


def _json(document: object) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def quarantine_file(prefix: str, result: ObjectResult) -> tuple[str, bytes]:
    """The quarantine document of one object and where it goes. Named by the object's identity: a redelivery
    (or a backfill of the same object) rewrites the same file with the same lines."""
    document = {
        "key": result.key,
        "etag": result.etag,
        "quarantined": result.quarantined,
        "listed": len(result.quarantine),
        "omitted": result.quarantine_omitted,
        "problems": list(result.problems),
        "lines": [line.model_dump(mode="json", by_alias=True) for line in result.quarantine],
    }
    return f"{prefix}quarantine/{object_identity(result.key, result.etag)}.json", _json(document)


def set_aside_file(folder: str, key: str, etag: str | None, reason: str) -> tuple[str, bytes]:
    """The note of an object that is not part of a test (rejected, unrouted) and where it goes, named by
    its key."""
    name = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return f"{folder}{name}.json", _json({"key": key, "etag": etag, "reason": reason})


@dataclass
class _WindowsOf:
    """The engine's WindowSource for one test's prefix."""

    store: DiffStore
    prefix: str

    def load_window(self, ref: WindowRef) -> bytes:
        return self.store.load_window(self.prefix, ref)


@dataclass
class CaptureDiffPipeline:
    store: DiffStore
    metrics: DiffMetricsSink
    clock: Clock
    closer: DiffCloser | None = None
    writer_ids: Callable[[], str] = new_writer_id
    _configs: dict[str, DiffConfig] = field(default_factory=dict)

    # --- live: S3 notifications ----------------------------------------------------------------

    def process(self, refs: Sequence[CaptureObjectRef]) -> list[ObjectOutcome]:
        """Diff a batch of capture objects (any tests, any order). Never raises for one object's sake: an
        object that may succeed later is `failed` (retried by the queue), one that never will is `rejected`."""
        outcomes: dict[str, ObjectOutcome] = {}
        groups: dict[str, list[CaptureObjectRef]] = {}
        for ref in refs:
            test_id = shadow_test_of_capture_key(ref.key)
            if test_id is None:
                outcomes[ref.key] = self._reject_unrouted(ref)
            else:
                groups.setdefault(test_id, []).append(ref)
        for test_id, members in groups.items():
            outcomes.update(self._run_group(test_id, members))
        return [outcomes[ref.key] for ref in refs]

    def close(self, message: CloseDiffs) -> RunningDiffSummary | None:
        """The test has ended: close every window once late capture can no longer land (re-sent if early)."""
        self.metrics.count("CloseRequests", 1)
        config = self._config(message.test_id)
        if config is None:
            self.metrics.count("CloseForUnknownTest", 1)
            return None
        due = message.ended_at + timedelta(seconds=config.allowed_lateness_seconds)
        wait = (due - self.clock.now()).total_seconds()
        if wait > 0 and self.closer is not None:
            self.closer.close(message, delay_seconds=int(wait) + 1)
            return None
        return self._commit_cycle(config, diffs_prefix(message.test_id), [], ended_at=message.ended_at)[1]

    def _run_group(self, test_id: str, refs: list[CaptureObjectRef]) -> dict[str, ObjectOutcome]:
        try:
            config = self._config(test_id)
        except (TransientAwsError, DiffStateCorrupt) as exc:
            return {
                ref.key: ObjectOutcome(key=ref.key, status="failed", test_id=test_id, reason=str(exc)) for ref in refs
            }
        if config is None:
            return {
                ref.key: self._reject(
                    diffs_prefix(test_id), test_id, ref, f"no shadow test {test_id!r}: its diff config is missing"
                )
                for ref in refs
            }
        try:
            return self._commit_cycle(config, diffs_prefix(test_id), refs, ended_at=None)[0]
        except (DiffStateConflict, TransientAwsError, DiffStateCorrupt) as exc:
            # Whatever was committed is in the state: every object is tried again from it (a committed one
            # is then a duplicate).
            self.metrics.count("StateConflicts" if isinstance(exc, DiffStateConflict) else "StateErrors", 1)
            return {
                ref.key: ObjectOutcome(key=ref.key, status="failed", test_id=test_id, reason=str(exc)) for ref in refs
            }

    def _config(self, test_id: str) -> DiffConfig | None:
        # A test's comparison never changes once it has started; an unknown test may still appear.
        if test_id not in self._configs:
            config = self.store.load_config(test_id)
            if config is None:
                return None
            self._configs[test_id] = config
        return self._configs[test_id]

    def _commit_cycle(
        self,
        config: DiffConfig,
        prefix: str,
        refs: Sequence[CaptureObjectRef],
        *,
        ended_at: datetime | None,
    ) -> tuple[dict[str, ObjectOutcome], RunningDiffSummary | None]:
        """One commit of the group, attempted again from the winner's state each time another writer wins."""
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return self._attempt(config, prefix, refs, ended_at=ended_at)
            except _LostRace as lost:
                self.metrics.count("StateConflicts", 1)
                self._drop_orphans(config, prefix, lost.written)
                if attempt == COMMIT_ATTEMPTS:
                    raise DiffStateConflict(
                        f"{prefix}: {COMMIT_ATTEMPTS} commit attempts, each overtaken by another writer"
                    ) from lost
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        config: DiffConfig,
        prefix: str,
        refs: Sequence[CaptureObjectRef],
        *,
        ended_at: datetime | None,
    ) -> tuple[dict[str, ObjectOutcome], RunningDiffSummary | None]:
        """Steps 1 to 7 of the module docstring, once; raises _LostRace if another writer commits first."""
        stored = self.store.load_state(prefix)
        engine_manifest, ledger = unpack_state(stored.manifest)
        writer = self.writer_ids()
        now = self.clock.now()
        self._publish_files(prefix, ledger.outbox)

        ended = ended_at or ledger.ended_at
        # Once the test has ended and late capture has had its time, whatever still waits is unpaired.
        closes_all = ended is not None and now >= ended + timedelta(seconds=config.allowed_lateness_seconds)
        engine, outcomes, closed = self._diff(config, prefix, stored, engine_manifest, refs, now, closes_all=closes_all)

        sequence = ledger.sequence + 1
        outbox = self._claim(ledger.outbox, writer, now) + tuple(
            ClosedWindow(
                sequence=sequence,
                summary=summary,
                metrics_pending=True,
                claimed_by=writer,
                claimed_until=now + OUTBOX_LEASE,
            )
            for summary in closed
        )
        tallies = Counter(outcome.status for outcome in outcomes.values())
        merged = [part for part in (ledger.closed, *closed) if part is not None]
        ledger = ledger.model_copy(
            update={
                "sequence": sequence,
                "closed": DiffSummary.merge(merged, config.mismatch_samples, config.quarantine_samples)
                if merged
                else None,
                "outbox": outbox,
                "ended_at": ended,
                "final": closes_all,
                "objects_processed": ledger.objects_processed + tallies["processed"],
                "objects_duplicate": ledger.objects_duplicate + tallies["duplicate"],
                "objects_rejected": ledger.objects_rejected + tallies["rejected"],
            }
        )
        self._commit(prefix, engine, ledger, writer, stored.version)

        latest = self._emit(prefix, outbox, sequence, writer)
        running = self._running_summary(engine, config, ledger, now)
        if running is not None and latest.sequence == sequence:
            self.store.put(f"{prefix}{SUMMARY_FILE}", _json(running.model_dump(mode="json", by_alias=True)))
        for status, count in tallies.items():
            self.metrics.count(f"CaptureObjects{status.title()}", count)
        return outcomes, running

    def _diff(
        self,
        config: DiffConfig,
        prefix: str,
        stored: StoredState,
        engine_manifest: bytes | None,
        refs: Sequence[CaptureObjectRef],
        now: datetime,
        *,
        closes_all: bool,
    ) -> tuple[DiffEngine, dict[str, ObjectOutcome], list[DiffSummary]]:
        """Step 3 on the stored state: every object diffed, then the windows closed that can be; the engine's
        accounting checked."""
        # The same notification twice in one batch is one object (the engine would call the second a duplicate).
        unique: dict[tuple[str, str | None], CaptureObjectRef] = {}
        for ref in refs:
            unique.setdefault((ref.key, ref.etag), ref)
        try:
            engine = pipeline_engine(config, engine_manifest, _WindowsOf(self.store, prefix))
            outcomes = {ref.key: self._diff_one(engine, config, prefix, ref) for ref in unique.values()}
            closed = engine.close_all() if closes_all else engine.finalise_watermark(now)
        except DiffStateCorrupt:
            # A blob the manifest named is gone: the writer that replaced that manifest deleted it.
            if self.store.load_state(prefix).version != stored.version:
                raise _LostRace(()) from None
            raise
        engine.assert_accounting()
        return engine, outcomes, closed

    def _commit(
        self, prefix: str, engine: DiffEngine, ledger: PipelineLedger, writer: str, version: str | None
    ) -> None:
        """Step 5: the new blobs, then the state if it is still at `version`, then the blobs it no longer names."""
        export = engine.export(writer)
        self.store.write_windows(prefix, export.windows)
        try:
            self.store.commit(prefix, pack_state(export.manifest, ledger), version)
        except DiffStateConflict as exc:
            raise _LostRace(tuple(export.windows)) from exc
        self.store.delete_windows(prefix, export.obsolete)

    def _emit(self, prefix: str, outbox: tuple[ClosedWindow, ...], sequence: int, writer: str) -> PipelineLedger:
        """Step 6: this commit's window files, the metrics this writer claimed, the outbox settled. Returns
        the ledger as it then stands (to tell whether another writer has committed since)."""
        self._publish_files(prefix, tuple(entry for entry in outbox if entry.sequence == sequence))
        mine = [entry for entry in outbox if entry.claimed_by == writer]
        for entry in mine:
            self.metrics.publish(diff_metrics(entry.summary), entry.summary.window_end)
        if mine:
            return self._settle(prefix, writer)
        return unpack_state(self.store.load_state(prefix).manifest)[1]

    @staticmethod
    def _claim(outbox: tuple[ClosedWindow, ...], writer: str, now: datetime) -> tuple[ClosedWindow, ...]:
        """What this commit keeps of the stored outbox: files were rewritten at the start of the cycle, so an
        entry with no metrics to emit leaves; one whose claimant is gone (lease over) becomes this writer's."""
        kept = []
        for entry in outbox:
            if not entry.metrics_pending:
                continue
            if entry.claimed_by is not None and entry.claimed_until is not None and entry.claimed_until > now:
                kept.append(entry)  # its claimant may be emitting it right now
            else:
                kept.append(entry.model_copy(update={"claimed_by": writer, "claimed_until": now + OUTBOX_LEASE}))
        return tuple(kept)

    def _settle(self, prefix: str, writer: str) -> PipelineLedger:
        """Commit the outbox without the entries `writer` claimed, now that their metrics were emitted.
        Returns the ledger as it then stands. Only the ledger changes: the engine's state is kept as stored."""
        for _ in range(COMMIT_ATTEMPTS):
            stored = self.store.load_state(prefix)
            engine_manifest, ledger = unpack_state(stored.manifest)
            kept = tuple(entry for entry in ledger.outbox if entry.claimed_by != writer)
            if engine_manifest is None or len(kept) == len(ledger.outbox):
                return ledger
            ledger = ledger.model_copy(update={"outbox": kept})
            try:
                self.store.commit(prefix, pack_state(engine_manifest, ledger), stored.version)
            except DiffStateConflict:
                continue
            return ledger
        # Still claimed: once the lease runs out another writer emits them again (at least once, never lost).
        self.metrics.count("OutboxSettleConflicts", 1)
        return ledger

    def _drop_orphans(self, config: DiffConfig, prefix: str, written: tuple[WindowRef, ...]) -> None:
        """Delete the blobs of a lost attempt that the committed manifest does not name (it names them only
        if the "lost" commit in fact landed, e.g. an SDK retry of a write that had succeeded)."""
        if not written:
            return
        try:
            engine_manifest, _ = unpack_state(self.store.load_state(prefix).manifest)
            named = (
                Manifest.decode(engine_manifest, config.pairing_window_seconds * 1000).refs()
                if engine_manifest
                else set()
            )
        except (TransientAwsError, DiffStateCorrupt):
            return  # left for good: no manifest will ever name them
        self.store.delete_windows(prefix, tuple(ref for ref in written if ref not in named))

    def _diff_one(self, engine: DiffEngine, config: DiffConfig, prefix: str, ref: CaptureObjectRef) -> ObjectOutcome:
        test_id = config.shadow_test
        try:
            capture = self.store.read_capture(ref.key)
        except TransientAwsError as exc:
            return ObjectOutcome(key=ref.key, status="failed", test_id=test_id, reason=str(exc))
        except CaptureObjectForbidden as exc:
            return self._reject(prefix, test_id, ref, str(exc))
        if capture is None:
            # Expired or deleted since it was announced: nothing to read, and nothing a retry could find.
            return ObjectOutcome(key=ref.key, status="missing", test_id=test_id, reason="the object no longer exists")
        try:
            result = engine.process_object(ref.key, capture.etag, capture.body)
        except InvalidCaptureObject as exc:
            return self._reject(prefix, test_id, ref, str(exc))
        result.assert_accounting()
        if result.quarantine or result.problems:
            self._store_quarantine(prefix, result)
        return ObjectOutcome(
            key=ref.key,
            status=result.status,
            test_id=test_id,
            records_read=result.records_read,
            paired=result.paired,
            quarantined=result.quarantined,
        )

    def _store_quarantine(self, prefix: str, result: ObjectResult) -> None:
        self.store.put(*quarantine_file(prefix, result))

    def _reject(self, prefix: str, test_id: str, ref: CaptureObjectRef, reason: str) -> ObjectOutcome:
        """No retry can make this object part of the test: set aside with its reason, counted, not retried."""
        self._set_aside(f"{prefix}rejected/", ref, reason)
        return ObjectOutcome(key=ref.key, status="rejected", test_id=test_id, reason=reason)

    def _reject_unrouted(self, ref: CaptureObjectRef) -> ObjectOutcome:
        reason = f"{ref.key!r} is not capture/<test>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>"
        self._set_aside(f"{DIFFS_ROOT}/_unrouted/", ref, reason)
        return ObjectOutcome(key=ref.key, status="rejected", reason=reason)

    def _set_aside(self, folder: str, ref: CaptureObjectRef, reason: str) -> None:
        self.store.put(*set_aside_file(folder, ref.key, ref.etag, reason))

    def _publish_files(self, prefix: str, outbox: tuple[ClosedWindow, ...]) -> None:
        for window in outbox:
            summary = window.summary
            key = f"{prefix}windows/{_stamp(summary.window_start)}-{window.sequence}.json"
            self.store.put(key, _json(summary.model_dump(mode="json", by_alias=True)))

    @staticmethod
    def _running_summary(
        engine: DiffEngine, config: DiffConfig, ledger: PipelineLedger, now: datetime
    ) -> RunningDiffSummary | None:
        open_parts = engine.open_summaries()
        parts = [part for part in (ledger.closed, *open_parts) if part is not None]
        if not parts:
            return None
        merged = DiffSummary.merge(parts, config.mismatch_samples, config.quarantine_samples)
        accounting = engine.accounting()
        pending = accounting.pending
        if merged.records_read + pending != accounting.records_read:
            raise AccountingMismatch(
                f"{config.shadow_test}: windows hold {merged.records_read} records and {pending} wait for a twin,"
                f" but {accounting.records_read} were read"
            )
        running = RunningDiffSummary.model_validate(
            {
                **merged.model_dump(exclude=set(DiffSummary.model_computed_fields)),
                "pending": pending,
                "final": ledger.final,
                "sequence": ledger.sequence,
                "updated_at": now,
                "open_windows": len(open_parts),
                "objects_processed": ledger.objects_processed,
                "objects_duplicate": ledger.objects_duplicate,
                "objects_rejected": ledger.objects_rejected,
            }
        )
        running.assert_accounting()
        return running
