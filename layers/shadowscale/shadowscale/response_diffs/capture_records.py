"""Reading SageMaker data-capture objects: the key layout, gzip, and one JSON record per line.

A record (see DESIGN.md):
    {"captureData": {"endpointInput":  {"observedContentType", "mode": "INPUT",  "data", "encoding"},
                     "endpointOutput": {"observedContentType", "mode": "OUTPUT", "data", "encoding"}},
     "eventMetadata": {"eventId", "inferenceTime", optional "inferenceId"}, "eventVersion": "0"}
`encoding` is CSV, JSON or BASE64 and `data` is always a string. A record leaves the reader only when it
is whole: every required field present with the right type, known encodings, and an input that decodes
as its encoding and observedContentType say. Anything else becomes a MalformedLine with a reason, and
reading goes on. The answer (endpointOutput.data) is decoded by the engine, once, where it needs the value
anyway; an answer that does not decode is quarantined there with the same reason ("undecodable-data").

JSON Lines: SageMaker's `application/jsonlines` body is several JSON documents, one per line ("Common data
formats for inference", JSONLINES request format), and data capture records it with encoding JSON when
that type is among the endpoint's JsonContentTypes (CaptureContentTypeHeader). Such a payload decodes to
JsonDocuments, not to one JSON value. No SageMaker document names application/x-ndjson, so that type (like
every other) decodes as its encoding alone says.

This is the hot path (hundreds of thousands of lines per invocation), so records are plain tuples, not
models, and each line is parsed by orjson from a memoryview of the object (no copy per line).
"""

from __future__ import annotations

import binascii
import gzip
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

import orjson

from shadowscale.response_diffs.models import QuarantineReason
from shadowscale.shared.errors import InvalidCaptureObject

GZIP_MAGIC = b"\x1f\x8b"
CSV, JSON, BASE64 = "CSV", "JSON", "BASE64"

# A decoded payload: a JSON value (JSON), bytes (BASE64) or the text itself (CSV). Dynamic by nature.
Decoded = Any

# (line, eventId, inferenceId, inferenceTime as epoch ms,
#  input encoding, input content type, input data, output encoding, output content type, output data)
RawRecord = tuple[int, str, str | None, int, str, str, str, str, str, str]


class MalformedLine(NamedTuple):
    line: int
    reason: QuarantineReason
    detail: str


@dataclass(frozen=True, slots=True)
class CaptureKey:
    """`<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid>.jsonl`, as SageMaker writes it."""

    key: str
    prefix: str
    endpoint: str
    variant: str
    written_at: datetime

    @property
    def written_at_ms(self) -> int:
        return int(self.written_at.timestamp() * 1000)


_FILE_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{3})-[^/]+$")


def parse_capture_key(key: str) -> CaptureKey:
    parts = key.split("/")
    if len(parts) < 7:
        raise InvalidCaptureObject(f"{key!r} is not <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>")
    *prefix, endpoint, variant, year, month, day, hour, name = parts
    match = _FILE_NAME.match(name)
    if not match or not all(part.isdigit() for part in (year, month, day, hour)):
        raise InvalidCaptureObject(f"{key!r}: no yyyy/mm/dd/hh/<mm-ss-mmm-uuid> time in the key")
    minute, second, milli = (int(group) for group in match.groups())
    try:
        written_at = datetime(int(year), int(month), int(day), int(hour), minute, second, milli * 1000, tzinfo=UTC)
    except ValueError as exc:
        raise InvalidCaptureObject(f"{key!r}: {exc}") from exc
    return CaptureKey(key=key, prefix="/".join(prefix), endpoint=endpoint, variant=variant, written_at=written_at)


def decompress(body: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The object's JSON lines. Gzip is recognised by its magic bytes, whatever the key's suffix says; a
    damaged stream yields what could be read (its last, cut line is then quarantined as truncated)."""
    if not body.startswith(GZIP_MAGIC):
        return body, ()
    try:
        return gzip.decompress(body), ()
    except (EOFError, OSError, zlib.error) as exc:
        salvaged = _salvage_gzip(body)
        return salvaged, (f"gzip stream damaged ({exc}); read the first {len(salvaged)} bytes",)


def _salvage_gzip(body: bytes) -> bytes:
    pieces: list[bytes] = []
    remaining = body
    while remaining.startswith(GZIP_MAGIC):
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            pieces.append(member.decompress(remaining))
        except zlib.error:
            break
        if not member.eof:
            pieces.append(member.flush())
            break
        remaining = member.unused_data
    return b"".join(pieces)


# ------------------------------------------------------------------------------------------ inferenceTime

SECONDS_CACHE: dict[str, int] = {}
# The usual tail of an inferenceTime (".123Z") -> its milliseconds: one lookup both checks and converts it.
MILLIS_TAIL = {f".{ms:03d}Z": ms for ms in range(1000)}
SECONDS_CACHE_LIMIT = 8192


def inference_time_ms(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 inferenceTime ("2026-01-01T00:00:00Z", ".123Z", offsets).

    Records of one second share their first 19 characters, so the date arithmetic runs once per second of
    traffic, not once per record.
    """
    head = text[:19]
    seconds = SECONDS_CACHE.get(head)
    if seconds is None:
        if len(SECONDS_CACHE) >= SECONDS_CACHE_LIMIT:
            SECONDS_CACHE.clear()
        seconds = int(datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp())
        SECONDS_CACHE[head] = seconds
    size = len(text)
    if size == 20 and text[19] == "Z":
        return seconds * 1000
    if size == 24 and text[19] == "." and text[23] == "Z":
        return seconds * 1000 + int(text[20:23])
    moment = datetime.fromisoformat(text)  # anything else ISO-8601: fractions of any length, offsets
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# ----------------------------------------------------------------------------------------------- lines


class UndecodableAnswer(ValueError):
    """A payload's data does not decode as its encoding says (invalid JSON, invalid base64)."""


# Decoders are C functions (no Python frame per call: they run once per record); each raises ValueError.
# The CSV "decoder" is str(), which returns a str as it is.
DECODERS: dict[str, Callable[[str], Decoded]] = {
    CSV: str,
    JSON: orjson.loads,
    BASE64: partial(binascii.a2b_base64, strict_mode=True),
}


JSON_LINES_MEDIA = frozenset({"application/jsonlines"})


def media_type(content_type: str) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    return content_type.split(";", 1)[0].strip().lower()


class JsonDocuments(tuple[Decoded, ...]):
    """The documents of one JSON Lines payload, in order. A type of its own, so that it is never taken for
    a JSON array (one document whose value is a list)."""

    __slots__ = ()


def decode_json_lines(data: str | bytes) -> JsonDocuments:
    """One JSON document per line; blank lines (and the whitespace around a document, so CRLF) are not
    documents. Raises ValueError naming the payload's line that is not JSON."""
    loads = orjson.loads
    documents = []
    # "\n" only: str.splitlines() would also split at U+2028 and the like, which JSON strings may hold.
    lines: list[str | bytes] = list(data.split("\n") if isinstance(data, str) else data.split(b"\n"))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            documents.append(loads(line))
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"JSON Lines line {number}: {exc}") from exc
    return JsonDocuments(documents)


def _choose_decoder(encoding: str, content_type: str) -> Callable[[str], Decoded]:
    if encoding == JSON and media_type(content_type) in JSON_LINES_MEDIA:
        return decode_json_lines
    return DECODERS[encoding]


DECODER_CACHE_LIMIT = 1024
_DECODER_CHOICE: dict[tuple[str, str], Callable[[str], Decoded]] = {}


def payload_decoder(encoding: str, content_type: str) -> Callable[[str], Decoded]:
    """The decoder of a payload with this encoding and observedContentType (KeyError for an unknown
    encoding). Chosen once per combination: callers on the hot path keep the one they last used."""
    chosen = _DECODER_CHOICE.get((encoding, content_type))
    if chosen is None:
        chosen = _choose_decoder(encoding, content_type)
        if len(_DECODER_CHOICE) >= DECODER_CACHE_LIMIT:
            _DECODER_CHOICE.clear()
        _DECODER_CHOICE[(encoding, content_type)] = chosen
    return chosen


def decode_payload(encoding: str, data: str, content_type: str = "") -> Decoded:
    """A payload as its encoding and content type say: JSON -> the parsed value (JsonDocuments for JSON
    Lines), BASE64 -> bytes, CSV -> the text itself. Raises UndecodableAnswer. Decoding is validating: it
    runs once per payload that needs it."""
    try:
        return payload_decoder(encoding, content_type)(data)
    except (ValueError, TypeError) as exc:  # orjson and binascii errors are ValueErrors
        raise UndecodableAnswer(f"not {encoding}: {exc}") from exc


def read_line(line: int, raw: memoryview) -> RawRecord | MalformedLine | None:
    """One line: its record, its MalformedLine (why it cannot be read), or None if it is blank. Every step
    and check a line gets, in the order the reference reader and the typed reader's fallback rely on."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return unparsable_line(line, raw, exc)
    try:
        capture = record["captureData"]
        given = capture["endpointInput"]
        answered = capture["endpointOutput"]
        metadata = record["eventMetadata"]
        event_id = metadata["eventId"]
        inference_id = metadata.get("inferenceId")
        when_text = metadata["inferenceTime"]
        in_encoding = given["encoding"]
        in_type = given["observedContentType"]
        in_data = given["data"]
        out_encoding = answered["encoding"]
        out_type = answered["observedContentType"]
        out_data = answered["data"]
        seconds = SECONDS_CACHE.get(when_text[:19])
        millis = MILLIS_TAIL.get(when_text[19:])
        when = record_time_ms(when_text, seconds) if seconds is None or millis is None else seconds * 1000 + millis
    except (KeyError, TypeError, AttributeError, ValueError, IndexError):
        return diagnose(line, record)
    if not (
        type(event_id)
        is type(in_data)
        is type(out_data)
        is type(in_type)
        is type(out_type)
        is type(in_encoding)
        is type(out_encoding)
        is str
        and event_id
        and (inference_id is None or type(inference_id) is str)
    ):
        return diagnose(line, record)
    if in_encoding != CSV or out_encoding not in DECODERS:
        problem = payload_problem(line, in_encoding, in_type, out_encoding, in_data)
        if problem is not None:
            return problem
    return (line, event_id, inference_id or None, when, in_encoding, in_type, in_data, out_encoding, out_type, out_data)


class CaptureReader:
    """Reads one object's lines. `records()` yields every record whose structure is whole and whose
    *input* decodes; answers are decoded (so validated) by the engine, which decodes each at most once.

    Line numbers count physical lines from 1. Blank lines are not records: skipped, not counted.
    `lines_read` (every non-blank line) is counted here, apart from every outcome, so that the
    accounting invariant compares two independent tallies.

    The rare outcomes (a line that is not JSON, a record whose shape or payload is wrong) are settled by the
    helpers below, so that the loop holds only what every line costs.
    """

    # One line's outcome; a subclass reads lines another way, with the same outcomes.
    read_line: Callable[[int, memoryview], RawRecord | MalformedLine | None] = staticmethod(read_line)

    def __init__(self, text: bytes) -> None:
        self.text = text
        self.lines_read = 0
        self.malformed: list[MalformedLine] = []

    def records(self) -> Iterator[RawRecord]:
        malformed = self.malformed
        read = self.read_line
        text = self.text
        view = memoryview(text)  # each line is parsed in place, not copied
        find = text.find
        size = len(text)
        start = line = blank = 0
        while start < size:
            end = find(b"\n", start)
            if end < 0:
                end = size
            line += 1
            outcome = read(line, view[start:end])
            start = end + 1
            if outcome is None:
                blank += 1
            elif type(outcome) is MalformedLine:
                malformed.append(outcome)
            else:
                yield outcome  # type: ignore[misc]
        self.lines_read = line - blank


def unparsable_line(line: int, raw: memoryview, exc: orjson.JSONDecodeError) -> MalformedLine | None:
    """Why a line orjson rejected is not a record, or None if it is blank (skipped, not counted)."""
    stripped = bytes(raw).rstrip()
    if not stripped:
        return None
    reason: QuarantineReason = "truncated-line" if exc.pos >= len(stripped) else "invalid-json"
    return MalformedLine(line, reason, f"{exc.msg} at char {exc.pos}")


def record_time_ms(text: str, seconds: int | None) -> int:
    """A record's inferenceTime when the fast path (cached second, ".mmmZ" tail) did not settle it."""
    if seconds is not None and len(text) == 24 and text[19] == "." and text[23] == "Z":
        # Shaped like ".mmmZ" but not three ASCII digits: a record the reader rejects (by its diagnosis).
        raise KeyError(text[20:23])
    return inference_time_ms(text)


def payload_problem(line: int, in_encoding: str, in_type: str, out_encoding: str, in_data: str) -> MalformedLine | None:
    """For a record whose structure is whole: an unknown encoding, or an input that does not decode."""
    if in_encoding not in DECODERS or out_encoding not in DECODERS:
        which, found = ("Input", in_encoding) if in_encoding not in DECODERS else ("Output", out_encoding)
        return MalformedLine(line, "unknown-encoding", f"captureData.endpoint{which}.encoding is {found!r}")
    in_decoder = payload_decoder(in_encoding, in_type)
    if in_decoder is not str:
        try:
            in_decoder(in_data)
        except ValueError as exc:
            return MalformedLine(
                line, "undecodable-data", f"captureData.endpointInput.data is not {in_encoding}: {exc}"
            )
    return None


_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("captureData",),
    ("captureData", "endpointInput"),
    ("captureData", "endpointInput", "observedContentType"),
    ("captureData", "endpointInput", "encoding"),
    ("captureData", "endpointInput", "data"),
    ("captureData", "endpointOutput"),
    ("captureData", "endpointOutput", "observedContentType"),
    ("captureData", "endpointOutput", "encoding"),
    ("captureData", "endpointOutput", "data"),
    ("eventMetadata",),
    ("eventMetadata", "eventId"),
    ("eventMetadata", "inferenceTime"),
)
_OBJECTS = {("captureData",), ("captureData", "endpointInput"), ("captureData", "endpointOutput"), ("eventMetadata",)}


def diagnose(line: int, record: Decoded) -> MalformedLine:
    """Why a parsed line is not a usable record: the first missing or ill-typed field, by its path. Slow
    and thorough on purpose: it only runs for lines the fast path rejected."""
    if not isinstance(record, dict):
        return MalformedLine(line, "not-a-record", f"the line is a JSON {type(record).__name__}, not an object")
    for path in _REQUIRED:
        node: Any = record
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        name = ".".join(path)
        if node is None:
            return MalformedLine(line, "missing-field", f"{name} is missing")
        wanted = dict if path in _OBJECTS else str
        if not isinstance(node, wanted):
            return MalformedLine(line, "invalid-field", f"{name} is a {type(node).__name__}, not {wanted.__name__}")
        if path[-1] == "eventId" and not node:
            return MalformedLine(line, "invalid-field", f"{name} is empty")
        if path[-1] == "inferenceTime" and isinstance(node, str):
            try:
                inference_time_ms(node)
            except (ValueError, IndexError) as exc:
                return MalformedLine(line, "invalid-field", f"{name} {node!r} is not an ISO-8601 time: {exc}")
    inference_id = record["eventMetadata"].get("inferenceId")
    if inference_id is not None and not isinstance(inference_id, str):
        return MalformedLine(line, "invalid-field", "eventMetadata.inferenceId is not a string")
    return MalformedLine(line, "invalid-field", "the record does not have the data-capture shape")
