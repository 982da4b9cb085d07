"""The engine's durable state, as bytes an adapter stores: one small manifest per shadow test, one object
per open time window and one compact set of processed objects per capture hour. Never one write per record.

The contract with the adapter (S3 keys are a suggestion):

    manifest                      diffs/<test>/state/manifest.bin            the commit point
    window / object set (ref)     diffs/<test>/state/windows/<ref.name>.bin  immutable once written

1. Read the manifest (absent for a new test) and build `DiffEngine(config, manifest, source)`, where
   `source.load_window(ref)` returns the bytes of a blob the manifest names; the engine loads only the
   blobs it touches.
2. `process_object(...)`, `finalise(...)`, then `export(writer)` gives a StateExport.
3. Write every `export.windows` blob, then the manifest (conditionally, If-Match on the ETag read in step
   1), then delete `export.obsolete` (best effort).

Blobs are named by the writer that wrote them (`writer`: unique per commit attempt, e.g. a uuid), never by
a counter: two writers that read the same manifest write different keys, so the one that loses the
conditional commit cannot overwrite a blob the winner's manifest names. A blob is reachable only through
the committed manifest; a loser's blobs are garbage that no manifest will ever name.

A crash before the manifest is written leaves the old state whole: the object is processed again on
retry, and its identity, recorded only in the new manifest's object sets, cannot have been counted twice.

Processed objects are remembered for the test's whole life, by capture hour (the key's yyyy/mm/dd/hh):
an 8-byte digest of key and ETag per object, one blob per hour, loaded only when an object of that hour
is read. A week of capture (~100k objects) is under a megabyte in 168 blobs, and the manifest holds one
line per hour; so a redelivery weeks later (a dead-letter redrive) is still recognised.

Encoding: a 4-byte magic, then orjson (object sets: the sorted digests, raw). A window's waiting halves
travel as columns (one JSON array per field, transposed in C both ways) with a per-window table of object
keys; the content is not compressed: zlib, even at level 1, cost more CPU than the rest of a state round
trip (measured with bench/diff_bench.py), and S3 does not charge by size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Protocol

import orjson

from shadowscale.response_diffs.pairing import (
    Half,
)
from shadowscale.shared.errors import DiffStateCorrupt

MANIFEST_MAGIC = b"SSM1"
WINDOW_MAGIC = b"SSW1"
OBJECTS_MAGIC = b"SSO1"
WINDOW_VERSION = 2  # halves stored as columns; version 1 (one array per half) is still read
MANIFEST_VERSION = 2  # writer-named blobs, object sets per hour; version 1 is still read
HOUR_MS = 3_600_000
DIGEST_BYTES = 8
WINDOW = "window"
OBJECTS = "objects"


@dataclass(frozen=True, order=True)
class WindowRef:
    """One stored blob: a window's state (`kind` window) or a capture hour's processed objects (`kind`
    objects), as written by one commit attempt (`writer`)."""

    start_ms: int
    writer: str
    kind: str = WINDOW

    @property
    def name(self) -> str:
        # A version-1 state named its window blobs <start>-<generation>: a writer "3" is that blob.
        return f"{self.start_ms}-{self.writer}" if self.kind == WINDOW else f"objects-{self.start_ms}-{self.writer}"


@dataclass(frozen=True)
class StateExport:
    manifest: bytes
    windows: dict[WindowRef, bytes]  # write these before the manifest
    obsolete: tuple[WindowRef, ...]  # delete these after it


class WindowSource(Protocol):
    def load_window(self, ref: WindowRef) -> bytes:
        """The bytes stored for `ref` (a window the manifest names)."""
        ...


@dataclass
class WindowEntry:
    writer: str  # of its stored blob
    pending: int


@dataclass
class ObjectSetEntry:
    writer: str  # of its stored blob
    count: int


@dataclass
class Manifest:
    window_ms: int
    windows: dict[int, WindowEntry] = field(default_factory=dict)  # open windows with stored state
    objects: dict[int, ObjectSetEntry] = field(default_factory=dict)  # capture hour -> its processed objects
    # Version 1 kept object identities here (identity -> key time, forgotten after objectRetentionHours);
    # still consulted, never added to, so a state written before the upgrade keeps its duplicates out.
    processed: dict[str, int] = field(default_factory=dict)
    finalised_through: int | None = None  # every window index up to this one has been closed once
    max_event_ms: int | None = None  # the latest inferenceTime read: the event-time clock of the watermark
    records_read: int = 0
    paired_halves: int = 0
    unpaired: int = 0
    quarantined: int = 0

    def encode(self) -> bytes:
        payload = {
            "v": MANIFEST_VERSION,
            "window_ms": self.window_ms,
            "windows": [[index, entry.writer, entry.pending] for index, entry in sorted(self.windows.items())],
            "objects": [[hour, entry.writer, entry.count] for hour, entry in sorted(self.objects.items())],
            "processed": self.processed,
            "finalised_through": self.finalised_through,
            "max_event_ms": self.max_event_ms,
            "ledger": [self.records_read, self.paired_halves, self.unpaired, self.quarantined],
        }
        return MANIFEST_MAGIC + orjson.dumps(payload)

    @classmethod
    def decode(cls, blob: bytes, window_ms: int) -> Manifest:
        payload = _open(blob, MANIFEST_MAGIC, "manifest", (1, MANIFEST_VERSION))
        if payload["window_ms"] != window_ms:
            raise DiffStateCorrupt(
                f"state was kept in {payload['window_ms']} ms windows, the config now says {window_ms} ms"
            )
        records_read, paired_halves, unpaired, quarantined = payload["ledger"]
        return cls(
            window_ms=window_ms,
            windows={index: WindowEntry(str(writer), pending) for index, writer, pending in payload["windows"]},
            objects={hour: ObjectSetEntry(writer, count) for hour, writer, count in payload.get("objects", [])},
            processed=payload["processed"],
            finalised_through=payload["finalised_through"],
            max_event_ms=payload.get("max_event_ms"),
            records_read=records_read,
            paired_halves=paired_halves,
            unpaired=unpaired,
            quarantined=quarantined,
        )

    def refs(self) -> set[WindowRef]:
        """Every blob this manifest names (whatever else is stored under the state prefix is garbage)."""
        named = {WindowRef(index * self.window_ms, entry.writer) for index, entry in self.windows.items()}
        named.update(WindowRef(hour * HOUR_MS, entry.writer, OBJECTS) for hour, entry in self.objects.items())
        return named


def object_digest(key: str, etag: str) -> bytes:
    """8 bytes per object: among the few thousand objects of one capture hour, a collision is ~1e-12."""
    return hashlib.blake2b(f"{key}\n{etag}".encode(), digest_size=DIGEST_BYTES).digest()


def encode_objects(hour: int, digests: set[bytes]) -> bytes:
    return OBJECTS_MAGIC + hour.to_bytes(8, "big", signed=True) + b"".join(sorted(digests))


def decode_objects(blob: bytes, hour: int) -> set[bytes]:
    if not blob.startswith(OBJECTS_MAGIC) or len(blob) < 12 or (len(blob) - 12) % DIGEST_BYTES:
        raise DiffStateCorrupt(f"not a shadowscale processed-object set (magic {blob[:4]!r}, {len(blob)} bytes)")
    stored_hour = int.from_bytes(blob[4:12], "big", signed=True)
    if stored_hour != hour:
        raise DiffStateCorrupt(f"object set blob holds hour {stored_hour}, expected {hour}")
    return {blob[offset : offset + DIGEST_BYTES] for offset in range(12, len(blob), DIGEST_BYTES)}


@dataclass
class WindowContent:
    production: list[Half]
    shadow: list[Half]
    tally: dict[str, Any]


def encode_window(index: int, production: list[Half], shadow: list[Half], tally: dict[str, Any]) -> bytes:
    keys: dict[str, int] = {}
    payload = {
        "v": WINDOW_VERSION,
        "index": index,
        "production": _columns(production, keys),
        "shadow": _columns(shadow, keys),
        "keys": list(keys),
        "tally": tally,
    }
    return WINDOW_MAGIC + orjson.dumps(payload)


def _columns(halves: list[Half], keys: dict[str, int]) -> list[Any]:
    """Halves as columns (transposed in C, not rebuilt one by one), without the window index, which the
    window implies; each object key becomes its position in `keys`."""
    if not halves:
        return []
    events, inferences, prints, times, _, encodings, types, data, object_keys, lines = zip(*halves, strict=True)
    for object_key in dict.fromkeys(object_keys):
        keys.setdefault(object_key, len(keys))
    return [events, inferences, prints, times, encodings, types, data, list(map(keys.__getitem__, object_keys)), lines]


def decode_window(blob: bytes, index: int) -> WindowContent:
    payload = _open(blob, WINDOW_MAGIC, "window", (1, WINDOW_VERSION))
    if payload["index"] != index:
        raise DiffStateCorrupt(f"window blob holds window {payload['index']}, expected {index}")
    keys = payload["keys"]
    try:
        if payload["v"] == 1:
            production = _rows_v1(payload["production"], index, keys)
            shadow = _rows_v1(payload["shadow"], index, keys)
        else:
            production = _rows(payload["production"], index, keys)
            shadow = _rows(payload["shadow"], index, keys)
    except (ValueError, IndexError, TypeError) as exc:
        raise DiffStateCorrupt(f"window {index}: malformed waiting half ({exc})") from exc
    return WindowContent(production=production, shadow=shadow, tally=payload["tally"])


def _rows(columns: list[Any], index: int, keys: list[str]) -> list[Half]:
    if not columns:
        return []
    events, inferences, prints, times, encodings, types, data, key_ids, lines = columns
    return list(
        zip(
            events,
            inferences,
            prints,
            times,
            repeat(index, len(events)),
            encodings,
            types,
            data,
            map(keys.__getitem__, key_ids),
            lines,
            strict=True,
        )
    )


def _rows_v1(rows: list[Any], index: int, keys: list[str]) -> list[Half]:
    """Version 1 stored one array per half (windows written before version 2 still load)."""
    return [
        (event, inference, body_print, when, index, encoding, content_type, data, keys[key], line)
        for event, inference, body_print, when, encoding, content_type, data, key, line in rows
    ]


def _open(blob: bytes, magic: bytes, what: str, versions: tuple[int, ...] = (1,)) -> dict[str, Any]:
    if not blob.startswith(magic):
        raise DiffStateCorrupt(f"not a shadowscale diff {what} (magic {blob[:4]!r})")
    try:
        payload: dict[str, Any] = orjson.loads(memoryview(blob)[len(magic) :])
    except orjson.JSONDecodeError as exc:
        raise DiffStateCorrupt(f"unreadable diff {what}: {exc}") from exc
    if payload.get("v") not in versions:
        raise DiffStateCorrupt(f"diff {what} version {payload.get('v')!r} is not one of {versions}")
    return payload
