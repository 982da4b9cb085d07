"""Pairing production and shadow halves of one request, in whatever order and object they arrive.

A half waits here until its twin from the other side turns up. A twin answered the same request, so it
carries the same request body: the fingerprint of the body (a 64-bit hash of endpointInput.data) is what
confirms a twin, and inferenceId and eventId only say which of several confirmed candidates is the one.
Neither id is unique: SageMaker adds a client's InferenceId to the capture without requiring it to be
unique, and whether a shadow record repeats production's eventId is not documented. Every record read has
an input (the reader rejects one without), so the fingerprint is available on both halves, always.

Among the waiting halves of the other side with the same fingerprint and within the pairing window on
inferenceTime, the twin is the first by:
    1. inferenceId equal (both halves carry one), then eventId equal: both ids equal beats either alone,
       and inferenceId alone beats eventId alone (the client's id is the stronger claim);
    2. nearest in inferenceTime;
    3. then by what the candidate is, never where or when it was read (eventId, answer, object key, line),
       so the choice does not depend on arrival order, on hold order or on which object or hour a half is in.
A half pairs at once with the best candidate already waiting. Pairs are therefore exact whenever requests
differ in body, whatever ids they reuse and whatever order they arrive in. Copies of one request (same
body, e.g. a client's retries under one InferenceId) are interchangeable: each pairs with the nearest
copy of the other side that is waiting when it is read, and the two answered the same input, so the
comparison stays meaningful (if the model answers every copy alike, the summary is the same whichever copy
pairs).

A record is a duplicate ("duplicate-record") only if an exact copy waits on its side: same eventId, same
input (fingerprint) and same answer (encoding and data). The same eventId with another input or another
answer is a distinct record and pairs on its own merits; several halves may wait under one eventId.

Halves are compact tuples (Half below) indexed by two dicts per side (WaitingSide), by eventId and by
fingerprint; a key maps to a half, or to a list of halves when several share it. The request body itself
is not kept, only its fingerprint (the half that completes a pair brings the body along). This module is
the only implementation of pairing: the engine calls fingerprint(), WaitingSide.twin_of(), .hold() and
.take() once per record, through local names bound once per object.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
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

# An index: a key (eventId or fingerprint) -> the half waiting under it, or the halves when several do.
type Index[K: (str, int)] = dict[K, Half | list[Half]]


def fingerprint(body: str) -> int:
    """A stable 64-bit fingerprint of a request body (Python's hash() changes with every process).

    CRC-32 and Adler-32 are independent checks computed in C at memory speed; together they make an
    accidental collision between two bodies inside one pairing window vanishingly rare, at a fraction of
    the cost of a cryptographic hash.
    """
    raw = body.encode()
    return (zlib.crc32(raw) << 32) | zlib.adler32(raw)


def how_paired(twin: Half, event_id: str, inference_id: str | None) -> str:
    """The strongest id the twins share (paired_by): inferenceId, eventId, else the fingerprint alone."""
    if inference_id is not None and twin[INFERENCE] == inference_id:
        return BY_INFERENCE_ID
    return BY_EVENT_ID if twin[EVENT] == event_id else BY_FINGERPRINT


def is_copy(waiting: Half | list[Half], half: Half) -> bool:
    """Whether `half` is an exact copy (input and answer) of a half waiting under its eventId."""
    body_print, encoding, data = half[FINGERPRINT], half[OUT_ENCODING], half[OUT_DATA]
    for held in waiting if type(waiting) is list else (waiting,):
        if held[FINGERPRINT] == body_print and held[OUT_DATA] == data and held[OUT_ENCODING] == encoding:
            return True
    return False


def _add_collision[K: (str, int)](index: Index[K], key: K, half: Half) -> None:
    existing = index[key]
    if type(existing) is list:
        existing.append(half)
    else:
        index[key] = [existing, half]  # type: ignore[list-item]


def _drop_collision[K: (str, int)](index: Index[K], key: K, half: Half) -> None:
    existing = index[key]
    assert type(existing) is list, "a waiting half is in both indexes"
    existing.remove(half)
    if len(existing) == 1:
        index[key] = existing[0]


class WaitingSide:
    """The halves of one side (production or shadow) waiting for their twins, indexed by eventId and by
    fingerprint. `twin_of()`, `hold()` and `take()` run once per record: the engine binds them to local
    names once per object, and each settles the common case (one candidate, no shared key) in a few
    dict operations before anything slower."""

    __slots__ = ("by_event", "by_print", "shared_events", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.by_event: Index[str] = {}
        self.by_print: Index[int] = {}
        self.shared_events = 0  # halves waiting under an eventId another half waits under too

    def __len__(self) -> int:
        return len(self.by_event) + self.shared_events

    def twin_of(self, body_print: int, event_id: str, inference_id: str | None, when: int) -> Half | None:
        """The twin of a record of the other side (its fingerprint, ids and inferenceTime) among the halves
        waiting here, or None: the best by the ranking in the module docstring."""
        candidates = self.by_print.get(body_print)
        if candidates is None:
            return None
        if type(candidates) is tuple:
            tolerance = self.window_ms
            return candidates if -tolerance <= candidates[TIME] - when <= tolerance else None
        return self.best_twin(candidates, event_id, inference_id, when)  # type: ignore[arg-type]

    def best_twin(self, candidates: list[Half], event_id: str, inference_id: str | None, when: int) -> Half | None:
        """Of several halves with the fingerprint of the record (`event_id`, `inference_id`, `when`), its
        twin by the ranking in the module docstring, or None if none is within one window."""
        tolerance = self.window_ms
        body_print = candidates[0][FINGERPRINT]
        # The one half waiting under this eventId, if it has this body too (and this inferenceId, when the
        # record has one), outranks every other candidate: a dict lookup instead of a scan (a body repeated
        # thousands of times, such as a health check, must not make pairing quadratic).
        same_event = self.by_event.get(event_id)
        if (
            type(same_event) is tuple
            and same_event[FINGERPRINT] == body_print
            and (inference_id is None or same_event[INFERENCE] == inference_id)
            and -tolerance <= same_event[TIME] - when <= tolerance
        ):
            return same_event
        best: Half | None = None
        best_rank: tuple[bool, bool, int, str, str, str, int] | None = None
        for half in candidates:
            gap = abs(half[TIME] - when)
            if gap > tolerance:
                continue
            rank = (
                inference_id is None or half[INFERENCE] != inference_id,
                half[EVENT] != event_id,
                gap,
                half[EVENT],
                half[OUT_DATA],
                half[KEY],
                half[LINE],
            )
            if best_rank is None or rank < best_rank:
                best, best_rank = half, rank
        return best

    def hold(self, half: Half) -> bool:
        """Let `half` wait; False (and nothing held) if an exact copy of it waits already (a duplicate)."""
        by_event = self.by_event
        waiting = by_event.get(half[EVENT])
        if waiting is None:
            by_event[half[EVENT]] = half
        elif is_copy(waiting, half):
            return False
        else:
            _add_collision(by_event, half[EVENT], half)
            self.shared_events += 1
        by_print = self.by_print
        if half[FINGERPRINT] in by_print:
            _add_collision(by_print, half[FINGERPRINT], half)
        else:
            by_print[half[FINGERPRINT]] = half
        return True

    def hold_all(self, halves: list[Half]) -> None:
        """hold() for many halves at once (a window's state being loaded): bulk dict updates where no key
        repeats, one by one where keys are shared. Raises ValueError if two halves are exact copies (stored
        state never holds a duplicate)."""
        by_event, by_print = self.by_event, self.by_print
        events = {half[EVENT]: half for half in halves}
        if len(events) != len(halves) or not by_event.keys().isdisjoint(events):
            for half in halves:
                if not self.hold(half):
                    raise ValueError(f"{len(halves)} halves to hold, but eventId {half[EVENT]!r} repeats an exact copy")
            return
        by_event.update(events)
        fresh = {half[FINGERPRINT]: half for half in halves}
        if len(fresh) == len(halves) and by_print.keys().isdisjoint(fresh):
            by_print.update(fresh)
            return
        for half in halves:
            if half[FINGERPRINT] in by_print:
                _add_collision(by_print, half[FINGERPRINT], half)
            else:
                by_print[half[FINGERPRINT]] = half

    def take(self, half: Half) -> None:
        """Stop waiting: `half` found its twin, or its window closed."""
        by_event = self.by_event
        if by_event.get(half[EVENT]) is half:
            del by_event[half[EVENT]]
        else:
            _drop_collision(by_event, half[EVENT], half)
            self.shared_events -= 1
        by_print = self.by_print
        if by_print.get(half[FINGERPRINT]) is half:
            del by_print[half[FINGERPRINT]]
        else:
            _drop_collision(by_print, half[FINGERPRINT], half)

    def waiting(self) -> Iterator[Half]:
        """Every half waiting on this side."""
        for held in self.by_event.values():
            if type(held) is list:
                yield from held
            else:
                yield held  # type: ignore[misc]


class PendingHalves:
    """Both sides' waiting halves (`sides[PRODUCTION]`, `sides[SHADOW]`), and what is done to them by
    window: evicting a closed window's halves, grouping them for storage."""

    __slots__ = ("sides",)

    def __init__(self, window_ms: int) -> None:
        self.sides = (WaitingSide(window_ms), WaitingSide(window_ms))

    def __len__(self) -> int:
        return len(self.sides[PRODUCTION]) + len(self.sides[SHADOW])

    def evict(self, windows: Iterable[int]) -> list[tuple[int, Half]]:
        """Take every waiting half of these windows out: their twins are not coming any more."""
        closing = set(windows)
        evicted = [
            (side, half)
            for side in (PRODUCTION, SHADOW)
            for half in self.sides[side].waiting()
            if half[WINDOW] in closing
        ]
        for side, half in evicted:
            self.sides[side].take(half)
        return evicted

    def in_windows(self, windows: Iterable[int]) -> dict[int, tuple[list[Half], list[Half]]]:
        """The waiting halves of these windows, per window and side (for saving state)."""
        wanted = set(windows)
        grouped: dict[int, tuple[list[Half], list[Half]]] = {window: ([], []) for window in wanted}
        for side in (PRODUCTION, SHADOW):
            for half in self.sides[side].waiting():
                if half[WINDOW] in wanted:
                    grouped[half[WINDOW]][side].append(half)
        return grouped
