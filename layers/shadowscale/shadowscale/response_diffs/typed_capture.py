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

from collections.abc import Iterator

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


class TypedCaptureReader(CaptureReader):
    """CaptureReader's records, lines_read and malformed lines, from typed decoding where a line allows."""

    def records(self) -> Iterator[RawRecord]:
        malformed = self.malformed
        decode = _DECODER.decode
        typed_error = (msgspec.DecodeError, msgspec.ValidationError)
        decoders = DECODERS
        seconds_of = SECONDS_CACHE.get
        millis_of = MILLIS_TAIL.get
        text = self.text
        view = memoryview(text)
        find = text.find
        size = len(text)
        start = line = blank = 0
        while start < size:
            end = find(b"\n", start)
            if end < 0:
                end = size
            line += 1
            raw = view[start:end]
            start = end + 1
            try:
                record = decode(raw)
            except typed_error:
                outcome = read_line(line, raw)
                if outcome is None:
                    blank += 1
                elif type(outcome) is MalformedLine:
                    malformed.append(outcome)
                else:
                    yield outcome  # type: ignore[misc]
                continue
            metadata = record.event_metadata
            given = record.capture_data.endpoint_input
            answered = record.capture_data.endpoint_output
            event_id = metadata.event_id
            when_text = metadata.inference_time
            seconds = seconds_of(when_text[:19])
            millis = millis_of(when_text[19:])
            in_encoding = given.encoding
            out_encoding = answered.encoding
            if seconds is None or millis is None or not event_id:
                # The rare shapes (a second not seen yet, another time format, an empty eventId): the reference.
                outcome = read_line(line, raw)
                if type(outcome) is MalformedLine:
                    malformed.append(outcome)
                elif outcome is not None:
                    yield outcome  # type: ignore[misc]
                continue
            if in_encoding != CSV or out_encoding not in decoders:
                problem = payload_problem(line, in_encoding, given.observed_content_type, out_encoding, given.data)
                if problem is not None:
                    malformed.append(problem)
                    continue
            yield (
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
        self.lines_read = line - blank


class TypedDiffEngine(DiffEngine):
    """DiffEngine (its API, pairing, windows, state and accounting unchanged) reading with TypedCaptureReader."""

    reader_type = TypedCaptureReader
