"""A faster reader of capture objects with the reference reader's exact outcomes, and the engine that uses it.

capture_records.CaptureReader parses each line into dicts (orjson) and then checks every field by hand.
TypedCaptureReader lets msgspec decode a line straight into typed structs of the data-capture shape, which
validates the structure and the types in C, in one pass. Only a line that decodes cleanly as *exactly*
that shape takes this path: every struct forbids unknown fields and every field is a string (or null for
inferenceId), so such a line is a JSON document of strings alone, on which msgspec and orjson agree
(escapes, surrogates, UTF-8, duplicate keys: the last wins in both). Every other line (extra fields, a
number anywhere, malformed JSON, a blank line) is read by the reference's own per-line logic, so its
outcome (record, quarantine reason and detail, line number, blank) is the reference's by construction.
tests/unit/test_diff_engine_differential.py feeds both engines the same data and requires identical results.
"""

from __future__ import annotations

import msgspec

from shadowscale.response_diffs.capture_records import (
    CSV,
    DECODERS,
    MILLIS_TAIL,
    SECONDS_CACHE,
    CaptureReader,
    MalformedLine,
    RawRecord,
    payload_problem,
    read_line,
)
from shadowscale.response_diffs.engine import DiffEngine


class _Payload(msgspec.Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    observed_content_type: str
    data: str
    encoding: str
    mode: str | None = None


class _Capture(msgspec.Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    endpoint_input: _Payload
    endpoint_output: _Payload


class _Metadata(msgspec.Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    event_id: str
    inference_time: str
    inference_id: str | None = None


class _Record(msgspec.Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    capture_data: _Capture
    event_metadata: _Metadata
    event_version: str | None = None


_DECODER = msgspec.json.Decoder(_Record)


_TYPED_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


def typed_line(line: int, raw: memoryview) -> RawRecord | MalformedLine | None:
    """read_line's outcome for one line: decoded typed where the line has exactly the capture shape, by
    read_line itself otherwise."""
    try:
        record = _DECODER.decode(raw)
    except _TYPED_ERRORS:
        return read_line(line, raw)
    metadata = record.event_metadata
    given = record.capture_data.endpoint_input
    answered = record.capture_data.endpoint_output
    event_id = metadata.event_id
    when_text = metadata.inference_time
    seconds = SECONDS_CACHE.get(when_text[:19])
    millis = MILLIS_TAIL.get(when_text[19:])
    if seconds is None or millis is None or not event_id:
        # The rare shapes (a second not seen yet, another time format, an empty eventId): the reference.
        return read_line(line, raw)
    in_encoding = given.encoding
    out_encoding = answered.encoding
    if in_encoding != CSV or out_encoding not in DECODERS:
        problem = payload_problem(line, in_encoding, given.observed_content_type, out_encoding, given.data)
        if problem is not None:
            return problem
    return (
        line,
        event_id,
        metadata.inference_id or None,
        seconds * 1000 + millis,
        in_encoding,
        given.observed_content_type,
        given.data,
        out_encoding,
        answered.observed_content_type,
        answered.data,
    )


class TypedCaptureReader(CaptureReader):
    """CaptureReader's records, lines_read and malformed lines, from typed decoding where a line allows."""

    read_line = staticmethod(typed_line)


class TypedDiffEngine(DiffEngine):
    """DiffEngine (its API, pairing, windows, state and accounting unchanged) reading with TypedCaptureReader."""

    reader_type = TypedCaptureReader
