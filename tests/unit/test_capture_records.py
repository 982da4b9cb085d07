"""Reading data capture: key layout, gzip by magic bytes, every encoding, and every kind of malformed line."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from shadowscale.response_diffs.capture_records import (
    CaptureReader,
    JsonDocuments,
    MalformedLine,
    RawRecord,
    UndecodableAnswer,
    decode_payload,
    decompress,
    inference_time_ms,
    parse_capture_key,
)
from shadowscale.response_diffs.engine import DiffEngine
from shadowscale.shared.errors import InvalidCaptureObject

from tests.capture_factories import PRODUCTION, SHADOW, T0, CaptureRun, b64, diff_config, key, lines, record


def read(body: bytes) -> tuple[list[RawRecord], list[MalformedLine], int]:
    reader = CaptureReader(body)
    records = list(reader.records())
    return records, reader.malformed, reader.lines_read


class TestCaptureKey:
    def test_given_sagemaker_key_when_parsed_then_endpoint_variant_and_time(self) -> None:
        parsed = parse_capture_key("capture/test-1/fraud-detector/candidate/2026/03/01/09/58-07-123-ab12cd.jsonl")
        assert (parsed.prefix, parsed.endpoint, parsed.variant) == ("capture/test-1", "fraud-detector", "candidate")
        assert parsed.written_at == datetime(2026, 3, 1, 9, 58, 7, 123000, tzinfo=UTC)

    def test_given_no_prefix_and_gz_suffix_when_parsed_then_accepted(self) -> None:
        parsed = parse_capture_key("ep/v1/2026/03/01/23/59-59-999-uuid.jsonl.gz")
        assert (parsed.prefix, parsed.endpoint, parsed.variant) == ("", "ep", "v1")

    @pytest.mark.parametrize(
        "bad",
        [
            "fraud-detector/candidate/2026/03/01/file.jsonl",  # too short
            "p/ep/v/2026/03/01/09/no-time-here.jsonl",
            "p/ep/v/2026/13/01/09/58-07-123-x.jsonl",  # month 13
            "p/ep/v/yyyy/03/01/09/58-07-123-x.jsonl",
        ],
    )
    def test_given_other_layout_when_parsed_then_invalid_capture_object(self, bad: str) -> None:
        with pytest.raises(InvalidCaptureObject):
            parse_capture_key(bad)


class TestDecompress:
    def test_given_plain_jsonl_when_decompressed_then_unchanged(self) -> None:
        assert decompress(b'{"a":1}\n') == (b'{"a":1}\n', ())

    def test_given_gzip_named_jsonl_when_decompressed_then_detected_by_magic(self) -> None:
        body = lines(record("e1", T0))
        assert decompress(gzip.compress(body)) == (body, ())

    def test_given_two_gzip_members_when_decompressed_then_both_read(self) -> None:
        first, second = lines(record("e1", T0)), lines(record("e2", T0))
        assert decompress(gzip.compress(first) + gzip.compress(second))[0] == first + second

    def test_given_cut_gzip_when_decompressed_then_prefix_salvaged_and_problem_named(self) -> None:
        body = lines(*(record(f"e{i}", T0) for i in range(200)))
        packed = gzip.compress(body)
        text, problems = decompress(packed[: len(packed) // 2])
        assert body.startswith(text)
        assert 0 < len(text) < len(body)
        assert problems
        assert "gzip stream damaged" in problems[0]


class TestEncodings:
    def test_given_csv_json_and_base64_inputs_when_read_then_all_yielded_as_captured(self) -> None:
        body = lines(
            record("csv", T0, body="1,2,3"),
            record("json", T0, body='{"features":[1,2,3]}', input_encoding="JSON", input_type="application/json"),
            record("b64", T0, body=b64(b"\x00\x01\x02"), input_encoding="BASE64", input_type="application/x-npy"),
        )
        records, malformed, read_count = read(body)
        assert malformed == []
        assert read_count == 3
        assert [(r[1], r[4], r[6]) for r in records] == [
            ("csv", "CSV", "1,2,3"),
            ("json", "JSON", '{"features":[1,2,3]}'),
            ("b64", "BASE64", b64(b"\x00\x01\x02")),
        ]

    def test_given_content_type_with_parameters_when_read_then_kept_verbatim(self) -> None:
        records, _, _ = read(
            lines(record("e", T0, output="0.5", output_encoding="CSV", output_type="text/csv; charset=utf-8"))
        )
        assert records[0][8] == "text/csv; charset=utf-8"

    def test_given_missing_inference_id_when_read_then_none(self) -> None:
        records, _, _ = read(lines(record("e1", T0), record("e2", T0, inference_id="req-7")))
        assert [r[2] for r in records] == [None, "req-7"]

    def test_given_payload_decoders_when_decoding_then_each_encoding(self) -> None:
        assert decode_payload("JSON", '{"a":[1]}') == {"a": [1]}
        assert decode_payload("CSV", "1,2") == "1,2"
        assert decode_payload("BASE64", b64(b"xyz")) == b"xyz"


class TestJsonLines:
    """SageMaker's `application/jsonlines` bodies hold several JSON documents, one per line (Common data
    formats for inference, "JSONLINES request format"); capture records them with encoding JSON when the
    type is among the endpoint's JsonContentTypes. They decode by observedContentType, to the documents."""

    LINES = '{"label":"legit","score":0.9}\n{"label":"fraud","score":0.2}\n'

    def test_given_json_lines_when_decoded_then_the_documents_in_order(self) -> None:
        documents = decode_payload("JSON", self.LINES, "application/jsonlines")
        assert isinstance(documents, JsonDocuments)
        assert list(documents) == [{"label": "legit", "score": 0.9}, {"label": "fraud", "score": 0.2}]
        assert list(decode_payload("JSON", '{"a":1}\r\n\n{"a":2}', "application/jsonlines; charset=utf-8")) == [
            {"a": 1},
            {"a": 2},
        ]

    def test_given_json_lines_input_when_read_then_yielded_not_quarantined(self) -> None:
        body = lines(
            record("e1", T0, body=self.LINES, input_encoding="JSON", input_type="application/jsonlines"),
            record("e2", T0, body=self.LINES, input_encoding="JSON", input_type="application/json"),  # not one document
        )
        records, malformed, read_count = read(body)
        assert [r[1] for r in records] == ["e1"]
        assert [(m.line, m.reason) for m in malformed] == [(2, "undecodable-data")]
        assert read_count == 2

    def test_given_json_lines_answers_when_processed_then_paired_and_compared_document_by_document(self) -> None:
        run = CaptureRun()
        shadow_answer = '{"label":"legit","score":0.9}\n{"label":"legit","score":0.6}\n'
        run.feed(PRODUCTION, T0, lines(record("e1", T0, self.LINES, output_type="application/jsonlines")))
        result = run.feed(SHADOW, T0, lines(record("e1", T0, shadow_answer, output_type="application/jsonlines")))
        assert (result.paired, result.quarantined) == (1, 0)
        total = run.close()
        assert (total.paired, total.quarantined_total, total.exact_matches) == (1, 0, 0)
        assert total.field_differences == {"[1].label": 1, "[1].score": 1}

    def test_given_a_bad_document_in_json_lines_when_processed_then_quarantined_with_line_and_document(self) -> None:
        bad = '{"label":"legit"}\n{"label": nope}\n'
        body = lines(
            record("ok", T0, self.LINES, output_type="application/jsonlines"),
            record("bad", T0, bad, output_type="application/jsonlines"),
        )
        result = DiffEngine(diff_config()).process_object(key(PRODUCTION, T0), "etag", body)
        assert (result.records_read, result.pending, result.quarantined) == (2, 1, 1)
        (problem,) = result.quarantine
        assert (problem.line, problem.reason) == (2, "undecodable-data")
        assert "JSON Lines line 2" in problem.detail

    def test_given_ndjson_type_when_read_then_one_document_as_json_says(self) -> None:
        # SageMaker's documentation names application/jsonlines only; other JSON types stay one document.
        with pytest.raises(UndecodableAnswer):
            decode_payload("JSON", self.LINES, "application/x-ndjson")


class TestInferenceTime:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-03-01T09:58:07Z", datetime(2026, 3, 1, 9, 58, 7, tzinfo=UTC)),
            ("2026-03-01T09:58:07.123Z", datetime(2026, 3, 1, 9, 58, 7, 123000, tzinfo=UTC)),
            ("2026-03-01T09:58:07.123456Z", datetime(2026, 3, 1, 9, 58, 7, 123000, tzinfo=UTC)),
            ("2026-03-01T10:58:07+01:00", datetime(2026, 3, 1, 9, 58, 7, tzinfo=UTC)),
            ("2026-03-01T09:58:07", datetime(2026, 3, 1, 9, 58, 7, tzinfo=UTC)),
        ],
    )
    def test_given_iso_forms_when_parsed_then_epoch_ms(self, text: str, expected: datetime) -> None:
        assert inference_time_ms(text) == int(expected.timestamp() * 1000)


class TestMalformedLines:
    def test_given_every_kind_of_bad_line_when_read_then_each_quarantined_with_reason_and_line(self) -> None:
        good = record("good", T0)
        missing = record("x", T0)
        del missing["eventMetadata"]["eventId"]
        no_output = record("x", T0)
        del no_output["captureData"]["endpointOutput"]
        wrong_type = record("x", T0)
        wrong_type["captureData"]["endpointInput"]["data"] = 42
        bad_time = record("x", T0)
        bad_time["eventMetadata"]["inferenceTime"] = "yesterday"
        empty_id = record("", T0)
        numeric_inference_id = record("x", T0)
        numeric_inference_id["eventMetadata"]["inferenceId"] = 7
        body = lines(
            good,
            orjson.dumps(good)[:40],  # 2: truncated
            b'{"captureData": nope}',  # 3: invalid JSON
            b"[1, 2, 3]",  # 4: not an object
            missing,  # 5
            no_output,  # 6
            wrong_type,  # 7
            bad_time,  # 8
            record("x", T0, output_encoding="XML"),  # 9: unknown encoding
            record("x", T0, body="%%%", input_encoding="BASE64"),  # 10: undecodable input
            record("x", T0, body="{not json", input_encoding="JSON"),  # 11: undecodable input
            empty_id,  # 12
            numeric_inference_id,  # 13
            good,  # 14
        )
        records, malformed, read_count = read(body)
        assert [r[0] for r in records] == [1, 14]
        assert [(m.line, m.reason) for m in malformed] == [
            (2, "truncated-line"),
            (3, "invalid-json"),
            (4, "not-a-record"),
            (5, "missing-field"),
            (6, "missing-field"),
            (7, "invalid-field"),
            (8, "invalid-field"),
            (9, "unknown-encoding"),
            (10, "undecodable-data"),
            (11, "undecodable-data"),
            (12, "invalid-field"),
            (13, "invalid-field"),
        ]
        assert "eventMetadata.eventId is missing" in malformed[3].detail
        assert "captureData.endpointOutput is missing" in malformed[4].detail
        assert "captureData.endpointInput.data is a int" in malformed[5].detail
        assert read_count == len(records) + len(malformed) == 14

    def test_given_blank_lines_and_crlf_when_read_then_blanks_skipped_but_numbered(self) -> None:
        body = b"\n" + orjson.dumps(record("a", T0)) + b"\r\n\n   \n" + orjson.dumps(record("b", T0))
        records, malformed, read_count = read(body)
        assert [(r[0], r[1]) for r in records] == [(2, "a"), (5, "b")]
        assert malformed == []
        assert read_count == 2

    def test_given_last_line_cut_without_newline_when_read_then_truncated(self) -> None:
        body = lines(record("a", T0)) + orjson.dumps(record("b", T0))[:-5]
        records, malformed, _ = read(body)
        assert len(records) == 1
        assert [(m.line, m.reason) for m in malformed] == [(2, "truncated-line")]

    def test_given_key_helper_when_used_then_it_parses(self) -> None:
        assert parse_capture_key(key("primary", T0)).variant == "primary"


class TestEngineReadsAsTheReader:
    """DiffEngine.process_object reads through CaptureReader.records(): what it quarantines, and holds, is
    exactly what the reader rejects and yields."""

    def test_given_every_kind_of_line_when_processed_then_engine_quarantines_as_the_reader(self) -> None:
        def changed(path: tuple[str, ...], value: Any, event_id: str = "x") -> dict[str, Any]:
            document = record(event_id, T0)
            node = document
            for part in path[:-1]:
                node = node[part]
            if value is KeyError:
                del node[path[-1]]
            else:
                node[path[-1]] = value
            return document

        body = lines(
            record("good-1", T0),
            b"",
            b"   ",
            b"[1, 2]",
            b'"text"',
            b"{not json}",
            orjson.dumps(record("cut", T0))[:50],
            changed(("eventMetadata", "inferenceTime"), "2026-03-01T09:58:07.12aZ", "t1"),
            changed(("eventMetadata", "inferenceTime"), "2026-03-01T09:58:00.-12Z", "t2"),
            changed(("eventMetadata", "inferenceTime"), "2026-03-01T10:58:07.123+01:00", "t3"),
            changed(("eventMetadata", "inferenceTime"), "2026-03-01T09:58:07Z", "t4"),
            changed(("eventMetadata", "inferenceTime"), 5, "t5"),
            changed(("eventMetadata", "inferenceTime"), ["2026"], "t6"),
            changed(("eventMetadata", "inferenceId"), 7, "i1"),
            changed(("eventMetadata", "inferenceId"), "", "i2"),
            changed(("eventMetadata", "eventId"), ""),
            changed(("eventMetadata", "eventId"), KeyError),
            changed(("captureData", "endpointInput", "encoding"), "XML", "e1"),
            changed(("captureData", "endpointOutput", "encoding"), 3, "e2"),
            changed(("captureData", "endpointOutput", "encoding"), ["JSON"], "e3"),
            changed(("captureData", "endpointInput", "encoding"), {"CSV": 1}, "e4"),
            changed(("captureData", "endpointInput", "data"), 42, "d1"),
            changed(("captureData", "endpointOutput", "observedContentType"), None, "d2"),
            changed(("captureData", "endpointInput", "encoding"), "JSON", "j1"),  # "1.5,2.5,3.5" is not JSON
            changed(("captureData", "endpointInput", "encoding"), "BASE64", "b1"),
            record("good-2", T0, body=b64(b"\x01"), input_encoding="BASE64", input_type="application/x-npy"),
            changed(("captureData",), [], "c1"),
            b"{}",
        )
        reader = CaptureReader(body)
        records = list(reader.records())
        result = DiffEngine(diff_config()).process_object(key(PRODUCTION, T0), "etag", body)
        assert result.records_read == reader.lines_read
        assert [(q.line, q.reason, q.detail) for q in result.quarantine] == [tuple(m) for m in reader.malformed]
        assert result.pending == len(records)
        assert ("invalid-field", "captureData.endpointOutput.encoding is a list, not str") in {
            (q.reason, q.detail) for q in result.quarantine
        }
