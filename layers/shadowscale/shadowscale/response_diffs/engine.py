"""The response-diff engine of one shadow test: capture objects in, window summaries out.

    engine = DiffEngine(config, manifest=stored_manifest_or_None, windows=window_source)
    result = engine.process_object(key, etag, body)       # ObjectResult: what this object yielded
    closed = engine.finalise_watermark(now)               # DiffSummary per window that can no longer change
    export = engine.export(writer)                        # StateExport: bytes to store (see state.py)

Records are bucketed into windows of `pairing_window_seconds` on inferenceTime. A half waits for its
twin in its window's state; twins are never further apart than one window, so the engine keeps the
windows around each record loaded (index - 1 .. index + 1). A window closes once `until` has passed its
end plus one pairing window: its waiting halves become unpaired, its tally a DiffSummary, and its state
is dropped. The live pipeline's `until` is the event-time watermark (the latest inferenceTime read, minus
the allowed lateness, never ahead of the wall clock): a backlog read hours late closes its windows exactly
where it would have on time. A record that arrives for a window closed earlier reopens it (it counts as
late), so nothing is ever lost or counted twice: summaries of the same window simply merge.

Not thread-safe, and one engine (one writer) per test at a time: see state.py for the commit protocol.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shadowscale.response_diffs.capture_records import (
    JSON,
    CaptureKey,
    CaptureReader,
    MalformedLine,
    RawRecord,
    decompress,
    parse_capture_key,
    payload_decoder,
)
from shadowscale.response_diffs.comparators import Comparator, ComparatorChoice, ExampleRenderer, Verdict
from shadowscale.response_diffs.models import Accounting, DiffSummary, ObjectResult, QuarantinedLine
from shadowscale.response_diffs.pairing import (
    DUPLICATE,
    EVENT,
    INFERENCE,
    KEY,
    LINE,
    OUT_DATA,
    OUT_ENCODING,
    OUT_TYPE,
    PRODUCTION,
    SHADOW,
    SIDE_NAMES,
    TIME,
    UNPAIRED_REASON,
    WINDOW,
    Half,
    PendingHalves,
    fingerprint,
    how_paired,
)
from shadowscale.response_diffs.state import (
    HOUR_MS,
    OBJECTS,
    Manifest,
    ObjectSetEntry,
    StateExport,
    WindowEntry,
    WindowRef,
    WindowSource,
    decode_objects,
    decode_window,
    encode_objects,
    encode_window,
    object_digest,
)
from shadowscale.response_diffs.summary import WindowTally
from shadowscale.shared.diff_contract import DiffConfig
from shadowscale.shared.errors import DiffStateCorrupt, InvalidCaptureObject

# An ObjectResult lists at most this many quarantined lines (all are counted).
QUARANTINE_LISTING_CAP = 1000


@dataclass(slots=True)
class OpenWindow:
    tally: WindowTally
    stored: str | None  # the writer of its stored blob; None = not stored
    dirty: bool = False


@dataclass(slots=True)
class ObjectSet:
    """The processed objects of one capture hour."""

    digests: set[bytes]
    stored: str | None
    dirty: bool = False


def object_identity(key: str, etag: str) -> str:
    """The same object delivered twice has one identity; a rewritten object (new ETag) has a new one."""
    return hashlib.blake2b(f"{key}\n{etag}".encode(), digest_size=12).hexdigest()


def _pair_priority(production_event: str, shadow_event: str) -> int:
    digest = hashlib.blake2b(f"{production_event}\n{shadow_event}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) >> 1  # 63 bits: fits every JSON number reader


def _undecodable(encoding: str, exc: Exception) -> str:
    return f"captureData.endpointOutput.data is not {encoding}: {exc}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _iso(epoch_ms: int) -> str:
    return _moment(epoch_ms).isoformat()


type Sampler = Callable[[WindowTally, Half, Half, str, Verdict, str, str, str], None]


class ObjectRead:
    """One capture object's records through the engine: each pairs with the twin waiting for it, waits for
    its own, or is quarantined; and what the object did, counted. DiffEngine.process_object makes one per
    object and owns everything else (windows, state, the ledger).

    The loop of pair_records() runs once per record, on names bound once per object: a record costs one
    call each of pairing's fingerprint() and WaitingSide.twin_of(), then one of wait() (which holds it:
    WaitingSide.hold()) or pair() (which takes its twin: WaitingSide.take()). Pairing itself lives only in
    pairing.py."""

    __slots__ = (
        "checked",
        "choose",
        "duplicates",
        "finalised",
        "held",
        "hold",
        "identical_pairs",
        "key",
        "latest",
        "malformed",
        "paired",
        "producing",
        "sample",
        "take",
        "theirs",
        "touched",
        "window_around",
        "windows",
    )

    def __init__(
        self,
        key: str,
        side: int,
        pending: PendingHalves,
        windows: dict[int, OpenWindow],
        window_around: Callable[[int], OpenWindow],
        finalised: int | None,
        choose: ComparatorChoice,
        sample: Sampler,
        malformed: list[MalformedLine],
    ) -> None:
        self.key = key
        self.producing = side == PRODUCTION
        self.hold = pending.sides[side].hold
        self.theirs = pending.sides[1 - side]
        self.take = self.theirs.take
        self.windows = windows
        self.window_around = window_around
        self.finalised = finalised
        self.choose = choose
        self.sample = sample
        self.malformed = malformed
        self.paired = self.held = self.duplicates = 0
        self.latest = -1
        self.touched: set[int] = set()
        # Identical pairs are counted in bulk at the end, by the production answer's encoding and content
        # type: their verdict is the constant of the comparator those choose.
        self.identical_pairs: dict[tuple[WindowTally, str, str, str], int] = {}
        # The answers' usual encoding, content type and decoder (chosen again only when either changes).
        self.checked = (JSON, "application/json", payload_decoder(JSON, "application/json"))

    def pair_records(self, records: Iterable[RawRecord], window_ms: int) -> None:
        key = self.key
        twin_of, wait, pair, enter = self.theirs.twin_of, self.wait, self.pair, self.enter
        current = latest = -1
        here = OpenWindow(WindowTally(), stored=None)  # a placeholder until the first record
        late = False
        for line, event_id, inference_id, when, in_encoding, in_type, body, out_encoding, out_type, out_data in records:
            if when > latest:
                latest = when
            index = when // window_ms
            if index != current:
                current = index
                here, late = enter(index)
            if late:
                here.tally.late_records += 1
            # The twin has this body (fingerprint) and is within one window of time; the ids rank several.
            body_print = fingerprint(body)
            half: Half = (event_id, inference_id, body_print, when, index, out_encoding, out_type, out_data, key, line)
            twin = twin_of(body_print, event_id, inference_id, when)
            if twin is None:
                wait(half, here)
            else:
                pair(half, twin, here, in_encoding, in_type, body)
        self.latest = latest
        for (tally, how, encoding, content_type), count in self.identical_pairs.items():
            tally.add_pairs(how, self.choose(encoding, content_type).identical, count)

    def enter(self, index: int) -> tuple[OpenWindow, bool]:
        """Window `index` (and whether it closed before: its records are late), with its neighbours loaded."""
        here = self.window_around(index)
        here.dirty = True
        self.touched.add(index)
        return here, self.finalised is not None and index <= self.finalised

    def wait(self, half: Half, here: OpenWindow) -> None:
        """No twin waits for this record: it waits for its own, unless an exact copy of it waits already (a
        duplicate). Its answer is decoded now, once, so that a bad one is caught."""
        encoding, content_type, decoder = self.checked
        if half[OUT_TYPE] != content_type or half[OUT_ENCODING] != encoding:
            encoding, content_type = half[OUT_ENCODING], half[OUT_TYPE]
            decoder = payload_decoder(encoding, content_type)
            self.checked = (encoding, content_type, decoder)
        try:
            decoder(half[OUT_DATA])
        except ValueError as exc:
            self.malformed.append(MalformedLine(half[LINE], "undecodable-data", _undecodable(encoding, exc)))
            return
        if self.hold(half):
            self.held += 1
        else:
            self.duplicates += 1
            here.tally.add_unpaired(DUPLICATE)

    def pair(self, half: Half, twin: Half, here: OpenWindow, in_encoding: str, in_type: str, body: str) -> None:
        """`twin` waits for this record: the pair counts in the production half's window, and the twin stops
        waiting. If this record's answer does not decode, it is quarantined and the twin goes on waiting (a
        good copy of the line may still come)."""
        producing = self.producing
        waited = self.windows[twin[WINDOW]]
        production, shadow = (half, twin) if producing else (twin, half)
        tally = here.tally if producing else waited.tally
        how = how_paired(twin, half[EVENT], half[INFERENCE])
        if half[OUT_DATA] == twin[OUT_DATA] and half[OUT_ENCODING] == twin[OUT_ENCODING]:
            # The common case. (The twin's answer was decoded, hence validated, when it began to wait.)
            counts = self.identical_pairs
            group = (tally, how, production[OUT_ENCODING], production[OUT_TYPE])
            counts[group] = counts.get(group, 0) + 1
        else:
            verdict = self.compare(self.choose(production[OUT_ENCODING], production[OUT_TYPE]), half, twin)
            if verdict is None:
                return
            tally.add_pair(how, verdict)
            if not verdict[1]:  # not within tolerance
                self.sample(tally, production, shadow, how, verdict, in_encoding, in_type, body)
        self.take(twin)
        waited.dirty = True
        self.paired += 1

    def compare(self, comparator: Comparator, half: Half, twin: Half) -> Verdict | None:
        """The comparator's verdict on two answers that differ; None (and this record quarantined) if this
        record's answer does not decode. The twin's decoded when it began to wait."""
        encoding = half[OUT_ENCODING]
        try:
            mine = payload_decoder(encoding, half[OUT_TYPE])(half[OUT_DATA])
        except ValueError as exc:
            self.malformed.append(MalformedLine(half[LINE], "undecodable-data", _undecodable(encoding, exc)))
            return None
        theirs = payload_decoder(twin[OUT_ENCODING], twin[OUT_TYPE])(twin[OUT_DATA])
        if self.producing:
            return comparator.compare(encoding, mine, twin[OUT_ENCODING], theirs)
        return comparator.compare(twin[OUT_ENCODING], theirs, encoding, mine)


class DiffEngine:
    # How capture objects are read: the reference reader (a subclass may read faster, with its outcomes).
    reader_type: type[CaptureReader] = CaptureReader

    def __init__(self, config: DiffConfig, manifest: bytes | None = None, windows: WindowSource | None = None) -> None:
        self.config = config
        self._window_ms = config.pairing_window_seconds * 1000
        self._manifest = Manifest.decode(manifest, self._window_ms) if manifest else Manifest(self._window_ms)
        self._source = windows
        self._pending = PendingHalves(self._window_ms)
        self._windows: dict[int, OpenWindow] = {}
        self._object_sets: dict[int, ObjectSet] = {}
        self._obsolete: list[WindowRef] = []
        self._choose = ComparatorChoice(config)
        self._render = ExampleRenderer(config.redact_fields, config.max_example_chars)

    # ---------------------------------------------------------------------------------- objects

    def process_object(self, key: str, etag: str, body: bytes) -> ObjectResult:
        """Read one capture object of the production or the shadow variant. Raises InvalidCaptureObject if
        the key is not a capture key of this test's endpoint and variants. Idempotent per (key, etag)."""
        capture = parse_capture_key(key)
        side = self._side_of(capture)
        digest = object_digest(key, etag)
        seen = self._objects_of(capture.written_at_ms // HOUR_MS)
        if digest in seen.digests or object_identity(key, etag) in self._manifest.processed:
            return ObjectResult(key=key, etag=etag, side=SIDE_NAMES[side], status="duplicate")

        text, problems = decompress(body)
        reader = self.reader_type(text)
        read = ObjectRead(
            key,
            side,
            self._pending,
            self._windows,
            self._window_around,
            self._manifest.finalised_through,
            self._choose,
            self._sample,
            reader.malformed,
        )
        read.pair_records(reader.records(), self._window_ms)
        malformed = reader.malformed
        quarantine = self._quarantine(capture, malformed, read.touched)
        unpaired = {DUPLICATE: read.duplicates} if read.duplicates else {}
        ledger = self._manifest
        ledger.records_read += reader.lines_read
        ledger.paired_halves += 2 * read.paired
        ledger.unpaired += read.duplicates
        ledger.quarantined += len(malformed)
        if read.latest >= 0 and (ledger.max_event_ms is None or read.latest > ledger.max_event_ms):
            ledger.max_event_ms = read.latest
        seen.digests.add(digest)
        seen.dirty = True
        return ObjectResult(
            key=key,
            etag=etag,
            side=SIDE_NAMES[side],
            status="processed",
            records_read=reader.lines_read,
            paired=read.paired,
            pending=read.held,
            unpaired=unpaired,
            quarantined=len(malformed),
            quarantine=quarantine,
            quarantine_omitted=len(malformed) - len(quarantine),
            problems=problems,
            windows=tuple(_moment(index * self._window_ms) for index in sorted(read.touched)),
        )

    def _side_of(self, capture: CaptureKey) -> int:
        config = self.config
        if capture.endpoint != config.endpoint:
            raise InvalidCaptureObject(f"{capture.key!r} is endpoint {capture.endpoint!r}, not {config.endpoint!r}")
        if capture.variant == config.production_variant:
            return PRODUCTION
        if capture.variant == config.shadow_variant:
            return SHADOW
        raise InvalidCaptureObject(
            f"{capture.key!r} is variant {capture.variant!r}, neither production {config.production_variant!r}"
            f" nor shadow {config.shadow_variant!r}"
        )

    def _quarantine(
        self, capture: CaptureKey, malformed: list[MalformedLine], touched: set[int]
    ) -> tuple[QuarantinedLine, ...]:
        if not malformed:
            return ()
        # A bad line may carry no time of its own: it counts in the window of its object's key time.
        index = capture.written_at_ms // self._window_ms
        window = self._window(index)
        window.dirty = True
        touched.add(index)
        keep = self.config.quarantine_samples
        for line, reason, detail in malformed:
            window.tally.add_quarantined(capture.key, line, reason, detail, keep)
        return tuple(
            QuarantinedLine(key=capture.key, line=line, reason=reason, detail=detail)
            for line, reason, detail in malformed[:QUARANTINE_LISTING_CAP]
        )

    def _sample(
        self,
        tally: WindowTally,
        production: Half,
        shadow: Half,
        how: str,
        verdict: Verdict,
        in_encoding: str,
        in_type: str,
        body: str,
    ) -> None:
        keep = self.config.mismatch_samples
        priority = _pair_priority(production[0], shadow[0])
        if not tally.wants_sample(priority, keep):
            return
        render = self._render
        sample = {
            "production": {"key": production[KEY], "line": production[LINE]},
            "shadow": {"key": shadow[KEY], "line": shadow[LINE]},
            "paired_by": how,
            "inference_time": _iso(production[TIME]),
            "input": render(in_encoding, in_type, body),
            "production_output": render(production[OUT_ENCODING], production[OUT_TYPE], production[OUT_DATA]),
            "shadow_output": render(shadow[OUT_ENCODING], shadow[OUT_TYPE], shadow[OUT_DATA]),
            "fields": list(verdict.fields[:20]),
            "abs_diff": verdict.abs_diff,
            "rel_diff": verdict.rel_diff,
            "priority": priority,
        }
        tally.add_sample(priority, sample, keep)

    # ---------------------------------------------------------------------------------- windows

    def _window_around(self, index: int) -> OpenWindow:
        """Window `index`, with both neighbours loaded too: a twin may wait in either."""
        windows = self._windows
        for neighbour in (index - 1, index + 1):
            if neighbour not in windows:
                self._window(neighbour)
        return self._window(index)

    def _window(self, index: int) -> OpenWindow:
        window = self._windows.get(index)
        if window is not None:
            return window
        entry = self._manifest.windows.get(index)
        if entry is None:
            window = OpenWindow(WindowTally(), stored=None)
        else:
            if self._source is None:
                raise DiffStateCorrupt(f"the manifest names window {index} but no window source was given")
            content = decode_window(self._source.load_window(WindowRef(index * self._window_ms, entry.writer)), index)
            if len(content.production) + len(content.shadow) != entry.pending:
                raise DiffStateCorrupt(
                    f"window {index} holds {len(content.production) + len(content.shadow)} halves,"
                    f" the manifest says {entry.pending}"
                )
            try:
                self._pending.sides[PRODUCTION].hold_all(content.production)
                self._pending.sides[SHADOW].hold_all(content.shadow)
            except ValueError as exc:
                raise DiffStateCorrupt(f"window {index}: {exc}") from exc
            window = OpenWindow(WindowTally.from_state(content.tally), stored=entry.writer)
        self._windows[index] = window
        return window

    def _objects_of(self, hour: int) -> ObjectSet:
        """The processed objects of capture hour `hour` (loaded once per engine)."""
        found = self._object_sets.get(hour)
        if found is not None:
            return found
        entry = self._manifest.objects.get(hour)
        if entry is None:
            found = ObjectSet(set(), stored=None)
        else:
            if self._source is None:
                raise DiffStateCorrupt(f"the manifest names object set {hour} but no window source was given")
            digests = decode_objects(self._source.load_window(WindowRef(hour * HOUR_MS, entry.writer, OBJECTS)), hour)
            if len(digests) != entry.count:
                raise DiffStateCorrupt(
                    f"object set {hour} holds {len(digests)} objects, the manifest says {entry.count}"
                )
            found = ObjectSet(digests, stored=entry.writer)
        self._object_sets[hour] = found
        return found

    # --------------------------------------------------------------------------------- closing

    def finalise_due(self, now: datetime) -> list[DiffSummary]:
        """finalise() up to the wall clock `now` minus the configured allowed lateness (simulations)."""
        return self.finalise(now - timedelta(seconds=self.config.allowed_lateness_seconds))

    @property
    def watermark(self) -> datetime | None:
        """Event time: the latest inferenceTime read minus the allowed lateness (None before any record)."""
        latest = self._manifest.max_event_ms
        if latest is None:
            return None
        return datetime.fromtimestamp(latest / 1000, UTC) - timedelta(seconds=self.config.allowed_lateness_seconds)

    def finalise_watermark(self, now: datetime) -> list[DiffSummary]:
        """finalise() up to the event-time watermark, never ahead of the wall clock `now` minus the allowed
        lateness (a record stamped in the future must not close windows whose capture is still to come).
        Windows close where the data says, not when it happens to be read: a backlog diffed hours late
        pairs exactly as it would have on time."""
        watermark = self.watermark
        if watermark is None:
            return []
        return self.finalise(min(watermark, now - timedelta(seconds=self.config.allowed_lateness_seconds)))

    def finalise(self, until: datetime) -> list[DiffSummary]:
        """Close every window whose end plus one pairing window is at or before `until`: no twin of its
        halves can arrive any more (if `until` leaves room for delivery delays). Returns their summaries,
        oldest first. Windows with nothing in them yield no summary."""
        last = _ms(until) // self._window_ms - 2
        closing = sorted(index for index in {*self._windows, *self._manifest.windows} if index <= last)
        if not closing:
            return []
        for index in closing:
            self._window(index)
        ledger = self._manifest
        for side, half in self._pending.evict(closing):
            self._windows[half[WINDOW]].tally.add_unpaired(UNPAIRED_REASON[side])
            ledger.unpaired += 1
        summaries = []
        for index in closing:
            window = self._windows.pop(index)
            ledger.windows.pop(index, None)
            if window.stored is not None:
                self._obsolete.append(WindowRef(index * self._window_ms, window.stored))
            if window.tally.is_empty:
                continue
            summary = window.tally.to_summary(self.config, index * self._window_ms, (index + 1) * self._window_ms)
            summary.assert_accounting()
            summaries.append(summary)
        if ledger.finalised_through is None or last > ledger.finalised_through:
            ledger.finalised_through = last
        if ledger.processed:  # a version-1 state's identities, forgotten as version 1 did
            forget_before = _ms(until) - self.config.object_retention_hours * HOUR_MS
            ledger.processed = {identity: at for identity, at in ledger.processed.items() if at >= forget_before}
        return summaries

    def open_summaries(self) -> list[DiffSummary]:
        """Provisional summaries of the windows still open, oldest first: their pairs are final, their
        waiting halves are not counted yet (see accounting().pending). Loads every open window."""
        for index in list(self._manifest.windows):
            self._window(index)
        window_ms = self._window_ms
        return [
            window.tally.to_summary(self.config, index * window_ms, (index + 1) * window_ms)
            for index, window in sorted(self._windows.items())
            if not window.tally.is_empty
        ]

    def close_all(self) -> list[DiffSummary]:
        """Close every window now (the end of a test): whatever still waits is unpaired."""
        latest = max({*self._windows, *self._manifest.windows}, default=0)
        return self.finalise(datetime.fromtimestamp((latest + 3) * self._window_ms / 1000, UTC))

    # ------------------------------------------------------------------------------------ state

    def export(self, writer: str | None = None) -> StateExport:
        """The state to store now: new blobs named by `writer` (unique per commit attempt; a fresh uuid if
        not given), the manifest that names them, the blobs it no longer names."""
        writer = writer or uuid.uuid4().hex
        dirty = [index for index, window in self._windows.items() if window.dirty]
        waiting = self._pending.in_windows(dirty)
        blobs: dict[WindowRef, bytes] = {}
        manifest = self._manifest
        for index in dirty:
            window = self._windows[index]
            production, shadow = waiting[index]
            if window.stored is not None:
                self._obsolete.append(WindowRef(index * self._window_ms, window.stored))
            if not production and not shadow and window.tally.is_empty:
                manifest.windows.pop(index, None)
                window.stored = None
            else:
                window.stored = writer
                ref = WindowRef(index * self._window_ms, writer)
                blobs[ref] = encode_window(index, production, shadow, window.tally.to_state())
                manifest.windows[index] = WindowEntry(writer, len(production) + len(shadow))
            window.dirty = False
        for hour, objects in self._object_sets.items():
            if not objects.dirty:
                continue
            if objects.stored is not None:
                self._obsolete.append(WindowRef(hour * HOUR_MS, objects.stored, OBJECTS))
            objects.stored = writer
            blobs[WindowRef(hour * HOUR_MS, writer, OBJECTS)] = encode_objects(hour, objects.digests)
            manifest.objects[hour] = ObjectSetEntry(writer, len(objects.digests))
            objects.dirty = False
        obsolete, self._obsolete = tuple(self._obsolete), []
        return StateExport(manifest=manifest.encode(), windows=blobs, obsolete=obsolete)

    # ------------------------------------------------------------------------------- accounting

    def accounting(self) -> Accounting:
        ledger = self._manifest
        stored_elsewhere = sum(entry.pending for index, entry in ledger.windows.items() if index not in self._windows)
        return Accounting(
            records_read=ledger.records_read,
            paired_halves=ledger.paired_halves,
            unpaired=ledger.unpaired,
            quarantined=ledger.quarantined,
            pending=len(self._pending) + stored_elsewhere,
        )

    def assert_accounting(self) -> None:
        """Raise AccountingMismatch unless every record read so far is paired, unpaired, quarantined or
        waiting, exactly once."""
        self.accounting().assert_balanced()
