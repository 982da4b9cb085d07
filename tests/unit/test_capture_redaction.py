"""What a stored example shows of a redacted payload, and what the report says was redacted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shadowscale.response_diffs.comparators import ExampleRenderer
from shadowscale.response_diffs.models import CaptureObjectRef
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline
from shadowscale.shadow_tests.models import ShadowTestReport
from shadowscale.shadow_tests.report_page import render_html

from tests.capture_factories import PRODUCTION, SHADOW, T0, b64, diff_config, key, lines, record
from tests.fakes import InMemoryDiffStore, ManualClock, RecordingCloser, RecordingDiffMetrics

ROW = '"Doe, John",123-45-6789,SECRET-E,42'


def test_a_quoted_csv_field_with_commas_is_one_column_when_columns_are_redacted() -> None:
    # GIVEN a CSV input whose first field is quoted and holds a comma; columns 1 and 2 are to be blanked
    render = ExampleRenderer(("[1]", "[2]"), 500)

    # WHEN it is rendered for a mismatch sample, as CSV and as BASE64 text/csv
    shown = render("CSV", "text/csv", ROW)
    shown_b64 = render("BASE64", "text/csv", b64(ROW.encode()))

    # THEN the quoted field stays whole and exactly the named columns are blanked
    assert shown == shown_b64 == '"Doe, John",***,***,42'
    assert "SECRET-E" not in shown
    assert "6789" not in shown


def test_quoted_line_breaks_and_several_rows_keep_their_columns() -> None:
    render = ExampleRenderer(("[0]",), 500)

    shown = render("CSV", "text/csv", 'a,"multi\nline",3\n"x,y",2,1\n')

    assert shown == '***,"multi\nline",3\n***,2,1\n'


def _report(diff_summary: dict[str, Any]) -> ShadowTestReport:
    return ShadowTestReport.model_validate(
        {
            "testId": "test-1",
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:shadow:test-1",
            "endpoint": "fraud-detector",
            "outcome": "promoted",
            "reason": "agreement gates passed",
            "finishedAt": T0,
            "diffSummary": diff_summary,
        }
    )


def _diffed_summary(**comparison: Any) -> dict[str, Any]:
    """The running summary.json of a test whose answers disagree (so it holds mismatch samples)."""
    store = InMemoryDiffStore()
    store.configs["test-1"] = diff_config(**comparison)
    pipeline = CaptureDiffPipeline(
        store, RecordingDiffMetrics(), ManualClock(T0 + timedelta(minutes=5)), RecordingCloser()
    )
    refs = []
    for variant, label in ((PRODUCTION, "legit"), (SHADOW, "fraud")):
        object_key = key(variant, T0, variant)
        etag = store.add(object_key, lines(record("e-1", T0, f'{{"label":"{label}"}}', body=ROW)))
        refs.append(CaptureObjectRef(key=object_key, etag=etag))
    pipeline.process(refs)
    summary: dict[str, Any] = store.json("diffs/test-1/summary.json")
    assert summary["mismatchSamples"]
    return summary


def test_the_report_claims_no_redaction_when_nothing_is_configured_to_be_redacted() -> None:
    # GIVEN a test diffed without redactFields
    summary = _diffed_summary()

    # WHEN its report is rendered
    html = render_html(_report(summary), "primary", "candidate")

    # THEN the samples are shown without a claim that anything was redacted
    assert summary["redactedFields"] == []
    assert "Sample of mismatches</h3>" in html
    assert "redacted" not in html


def test_the_report_names_what_was_redacted() -> None:
    # GIVEN a test diffed with two columns redacted
    summary = _diffed_summary(redactFields=["[2]", "[1]"])

    html = render_html(_report(summary), "primary", "candidate")

    # THEN the report says which, and the samples do not hold them
    assert summary["redactedFields"] == ["[1]", "[2]"]
    assert "Sample of mismatches ([1], [2] redacted)</h3>" in html
    assert "SECRET-E" not in html
