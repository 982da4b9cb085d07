"""The engine's durable state, as bytes an adapter stores: one small manifest per shadow test and one
object per open time window. Never one write per record.

The contract with the adapter (S3 keys are a suggestion):

    manifest                  diffs/<test>/state/manifest.bin          the commit point
    window (start, gen)       diffs/<test>/state/windows/<ref.name>.bin  immutable once written

1. Read the manifest (absent for a new test) and build `DiffEngine(config, manifest, source)`, where
   `source.load_window(ref)` returns the bytes of a window the manifest names; the engine loads only
   the windows it touches.
2. `process_object(...)`, `finalise(...)`, then `export()` gives a StateExport.
3. Write every `export.windows` object (new generations: they never overwrite a live window), then the
   manifest (conditionally, If-Match on the ETag read in step 1, or under one writer per test, e.g. an
   SQS FIFO group per test), then delete `export.obsolete` (best effort; a lifecycle rule can sweep).

A crash before the manifest is written leaves the old state whole: the object is processed again on
retry, and its identity, recorded only in the new manifest, cannot have been counted twice.

Encoding: a 4-byte magic, then orjson. A window's waiting halves travel as columns (one JSON array per
field, transposed in C both ways) with a per-window table of object keys; the content is not compressed:
zlib, even at level 1, cost more CPU than the rest of a state round trip (measured with
bench/diff_bench.py), and S3 does not charge by size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Protocol

import orjson

from shadowscale.diffing.pairing import (
    Half,
)
from shadowscale.errors import DiffStateCorrupt

MANIFEST_MAGIC = b"SSM1"
WINDOW_MAGIC = b"SSW1"
WINDOW_VERSION = 2  # halves stored as columns; version 1 (one array per half) is still read


@dataclass(frozen=True, order=True)
class WindowRef:
    """One stored version of one window's state."""

    start_ms: int
    generation: int

    @property
    def name(self) -> str:
        return f"{self.start_ms}-{self.generation}"


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
    generation: int
    pending: int


@dataclass
class Manifest:
    window_ms: int
    windows: dict[int, WindowEntry] = field(default_factory=dict)  # open windows with stored state
    processed: dict[str, int] = field(default_factory=dict)  # object identity -> key time (ms)
    finalised_through: int | None = None  # every window index up to this one has been closed once
    records_read: int = 0
    paired_halves: int = 0
    unpaired: int = 0
    quarantined: int = 0

    def encode(self) -> bytes:
        payload = {
            "v": 1,
            "window_ms": self.window_ms,
            "windows": [[index, entry.generation, entry.pending] for index, entry in sorted(self.windows.items())],
            "processed": self.processed,
            "finalised_through": self.finalised_through,
            "ledger": [self.records_read, self.paired_halves, self.unpaired, self.quarantined],
        }
        return MANIFEST_MAGIC + orjson.dumps(payload)

    @classmethod
    def decode(cls, blob: bytes, window_ms: int) -> Manifest:
        payload = _open(blob, MANIFEST_MAGIC, "manifest")
        if payload["window_ms"] != window_ms:
            raise DiffStateCorrupt(
                f"state was kept in {payload['window_ms']} ms windows, the config now says {window_ms} ms"
            )
        records_read, paired_halves, unpaired, quarantined = payload["ledger"]
        return cls(
            window_ms=window_ms,
            windows={index: WindowEntry(generation, pending) for index, generation, pending in payload["windows"]},
            processed=payload["processed"],
            finalised_through=payload["finalised_through"],
            records_read=records_read,
            paired_halves=paired_halves,
            unpaired=unpaired,
            quarantined=quarantined,
        )


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
