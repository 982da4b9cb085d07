"""Pairing production and shadow halves of one request, in whatever order and object they arrive.

A half waits here until its twin from the other side turns up. The twin is looked for by, in order:
inferenceId (when the record has one), eventId, then a fingerprint of the request body; twins must be
within the pairing window of each other on inferenceTime (a reused inferenceId or a repeated request
cannot pair with something from hours ago). Among several requests with the same body, the twin nearest
in time wins: whichever it is, the two answered the same input, so the comparison stays meaningful.

Halves are compact tuples (Half below) indexed by three dicts per side; the request body itself is not
kept, only its 64-bit fingerprint (the half that completes a pair brings the body along). The engine
runs the cascade inline on these indexes (engine.py); this class owns them and everything done less
often than once per record: holding a loaded window, evicting, grouping for storage.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Final

PRODUCTION: Final = 0
SHADOW: Final = 1
SIDE_NAMES: Final = ("production", "shadow")
# Why a half that waited in vain is unpaired: production's twin would have come from the shadow.
UNPAIRED_REASON: Final = ("no-shadow-twin", "no-production-twin")
DUPLICATE: Final = "duplicate-record"
BY_INFERENCE_ID: Final = "inferenceId"
BY_EVENT_ID: Final = "eventId"
BY_FINGERPRINT: Final = "fingerprint"

# A waiting half: (eventId, inferenceId, fingerprint, inferenceTime ms, window index,
#                  output encoding, output content type, output data, object key, line)
Half = tuple[str, str | None, int, int, int, str, str, str, str, int]
# Positions in a Half (Final literals, so that the type checker knows each field's type).
EVENT: Final = 0
INFERENCE: Final = 1
FINGERPRINT: Final = 2
TIME: Final = 3
WINDOW: Final = 4
OUT_ENCODING: Final = 5
OUT_TYPE: Final = 6
OUT_DATA: Final = 7
KEY: Final = 8
LINE: Final = 9


def fingerprint(body: str) -> int:
    """A stable 64-bit fingerprint of a request body (Python's hash() changes with every process).

    CRC-32 and Adler-32 are independent checks computed in C at memory speed; together they make an
    accidental collision between two bodies inside one pairing window vanishingly rare, at a fraction of
    the cost of a cryptographic hash.
    """
    raw = body.encode()
    return (zlib.crc32(raw) << 32) | zlib.adler32(raw)


class PendingHalves:
    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._by_event: tuple[dict[str, Half], dict[str, Half]] = ({}, {})
        self._by_inference: tuple[dict[str, Half], dict[str, Half]] = ({}, {})
        self._by_fingerprint: tuple[dict[int, Half | list[Half]], dict[int, Half | list[Half]]] = ({}, {})

    def __len__(self) -> int:
        return len(self._by_event[PRODUCTION]) + len(self._by_event[SHADOW])

    def indexes(self, side: int) -> tuple[dict[str, Half], dict[str, Half], dict[int, Half | list[Half]]]:
        """The side's three indexes (by eventId, inferenceId, fingerprint), for the engine's inlined hot
        loop. A fingerprint maps to a half, or to a list of halves when several bodies were identical."""
        return self._by_event[side], self._by_inference[side], self._by_fingerprint[side]

    def hold(self, side: int, half: Half) -> None:
        """Let `half` wait (its eventId must not be waiting on that side already)."""
        self._by_event[side][half[EVENT]] = half
        inference_id = half[INFERENCE]
        if inference_id is not None:
            # A second waiting half with the same inferenceId stays reachable by eventId and fingerprint.
            self._by_inference[side].setdefault(inference_id, half)
        if half[FINGERPRINT] in self._by_fingerprint[side]:
            self.add_print_collision(side, half)
        else:
            self._by_fingerprint[side][half[FINGERPRINT]] = half

    def hold_all(self, side: int, halves: list[Half]) -> None:
        """hold() for many halves at once (a window's state being loaded): bulk dict updates where they
        are safe, one by one where fingerprints collide."""
        by_event = self._by_event[side]
        before = len(by_event)
        by_event.update({half[EVENT]: half for half in halves})
        if len(by_event) != before + len(halves):
            raise ValueError(f"{len(halves)} halves to hold, but eventIds repeat or are already waiting")
        by_inference = self._by_inference[side]
        for half in halves:
            if half[INFERENCE] is not None and half[INFERENCE] not in by_inference:
                by_inference[half[INFERENCE]] = half
        prints = self._by_fingerprint[side]
        fresh = {half[FINGERPRINT]: half for half in halves}
        if len(fresh) == len(halves) and prints.keys().isdisjoint(fresh):
            prints.update(fresh)
            return
        for half in halves:
            if half[FINGERPRINT] in prints:
                self.add_print_collision(side, half)
            else:
                prints[half[FINGERPRINT]] = half

    def add_print_collision(self, side: int, half: Half) -> None:
        prints = self._by_fingerprint[side]
        existing = prints[half[FINGERPRINT]]
        if type(existing) is list:
            existing.append(half)
        else:
            prints[half[FINGERPRINT]] = [existing, half]  # type: ignore[list-item]

    def drop_print_collision(self, side: int, half: Half) -> None:
        prints = self._by_fingerprint[side]
        existing = prints[half[FINGERPRINT]]
        assert type(existing) is list, "a waiting half is always in the fingerprint index"
        existing.remove(half)
        if len(existing) == 1:
            prints[half[FINGERPRINT]] = existing[0]

    def nearest(self, candidates: Half | list[Half], when: int) -> Half | None:
        """Of the halves with one fingerprint, the one nearest `when`, if within one window."""
        tolerance = self.window_ms
        if type(candidates) is not list:
            half: Half = candidates  # type: ignore[assignment]
            return half if -tolerance <= half[TIME] - when <= tolerance else None
        best: Half | None = None
        for half in candidates:
            gap = abs(half[TIME] - when)
            if gap <= tolerance and (best is None or gap < abs(best[TIME] - when)):
                best = half
        return best

    def take(self, side: int, half: Half) -> None:
        """Stop waiting: `half` (of `side`) found its twin, or its window closed."""
        del self._by_event[side][half[EVENT]]
        inference_id = half[INFERENCE]
        if inference_id is not None and self._by_inference[side].get(inference_id) is half:
            del self._by_inference[side][inference_id]
        if self._by_fingerprint[side].get(half[FINGERPRINT]) is half:
            del self._by_fingerprint[side][half[FINGERPRINT]]
        else:
            self.drop_print_collision(side, half)

    def evict(self, windows: Iterable[int]) -> list[tuple[int, Half]]:
        """Take every waiting half of these windows out: their twins are not coming any more."""
        closing = set(windows)
        evicted = [
            (side, half)
            for side in (PRODUCTION, SHADOW)
            for half in self._by_event[side].values()
            if half[WINDOW] in closing
        ]
        for side, half in evicted:
            self.take(side, half)
        return evicted

    def in_windows(self, windows: Iterable[int]) -> dict[int, tuple[list[Half], list[Half]]]:
        """The waiting halves of these windows, per window and side (for saving state)."""
        wanted = set(windows)
        grouped: dict[int, tuple[list[Half], list[Half]]] = {window: ([], []) for window in wanted}
        for side in (PRODUCTION, SHADOW):
            for half in self._by_event[side].values():
                if half[WINDOW] in wanted:
                    grouped[half[WINDOW]][side].append(half)
        return grouped
