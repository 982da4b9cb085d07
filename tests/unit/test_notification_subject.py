"""SNS refuses a subject of 100 characters or more, or with a line break or control character (Publish
API reference): the shadow-test notices always carry one it accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shadowscale.shadow_tests.models import Evaluation, ShadowTestReport
from shadowscale.shadow_tests.report_page import notification, pairs_line, render_html, sns_subject

LONGEST_ENDPOINT = "fraud-detector-" + "x" * 48  # SageMaker's limit: 63 characters


def valid_for_sns(subject: str) -> bool:
    return len(subject) < 100 and subject.isascii() and subject.isprintable() and subject[:1].strip() != ""


def report(endpoint: str, reason: str) -> ShadowTestReport:
    return ShadowTestReport.model_validate(
        {
            "testId": "t-1",
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:shadowscale-dev-shadow-test:t-1",
            "endpoint": endpoint,
            "outcome": "timed-out",
            "reason": reason,
            "finishedAt": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        }
    )


def test_given_the_longest_endpoint_name_and_a_long_reason_when_notified_then_the_subject_is_valid() -> None:
    subject, message = notification(report(LONGEST_ENDPOINT, "the execution timed out\n" * 20))
    assert valid_for_sns(subject), subject
    assert subject.startswith("shadowscale: timed-out: ")  # the outcome survives the cut
    assert subject.endswith("...")
    assert "the execution timed out" in message  # the whole story is in the message


def test_given_an_approval_prefix_when_made_a_subject_then_it_is_still_valid() -> None:
    subject, _ = notification(report(LONGEST_ENDPOINT, "awaiting approval"))
    assert valid_for_sns(sns_subject(f"[approval needed] {subject}"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shadowscale: promoted: shadow test on fraud", "shadowscale: promoted: shadow test on fraud"),
        ("line one\nline two\r\tend", "line one line two end"),
        ("  leading spaces", "leading spaces"),
        ("caf\u00e9 \u2028 na\u00efve", "cafe naive"),
        ("word " * 30, ("word " * 19).rstrip() + "..."),
        ("x" * 150, "x" * 96 + "..."),
    ],
)
def test_sns_subject_cuts_on_a_word_boundary_and_drops_what_sns_refuses(text: str, expected: str) -> None:
    assert sns_subject(text) == expected
    assert valid_for_sns(sns_subject(text))


def with_pairs(paired: int, gate_counted: float | None, state: str = "final") -> ShadowTestReport:
    at = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    gates = (
        [] if gate_counted is None else [{"name": "min-paired-responses", "status": "pass", "observed": gate_counted}]
    )
    return report("fraud-detector", "approved").model_copy(
        update={
            "diff_summary": {"paired": paired},
            "diff_summary_state": state,
            "evaluation": Evaluation.model_validate(
                {
                    "at": at,
                    "stepIndex": 0,
                    "stepStartedAt": at,
                    "windowStart": at,
                    "production": {},
                    "shadow": {},
                    "gates": gates,
                    "verdict": "pass",
                    "next": "decide",
                    "waitSeconds": 0,
                }
            ),
        }
    )


def test_given_the_gate_counted_fewer_pairs_than_the_final_summary_when_reported_then_both_are_named() -> None:
    # GIVEN a gate that saw 120 pairs at 11:00 and a final summary with 180 (capture landed after the gate)
    line = pairs_line(with_pairs(180, 120))
    # THEN the one sentence every surface uses says which number is which
    assert line == (
        "Response diffs (final): 180 pairs (the min-paired-responses gate counted 120 when it was evaluated at"
        " 2026-11-23T11:00:00+00:00: pairs diffed by then)"
    )
    _, message = notification(with_pairs(180, 120))
    assert line in message
    assert "180 pairs" in render_html(with_pairs(180, 120), "primary", "shadow")


def test_given_the_same_count_everywhere_when_reported_then_one_number_is_shown() -> None:
    assert pairs_line(with_pairs(150, 150)) == "Response diffs (final): 150 pairs"
    assert pairs_line(with_pairs(150, None, "provisional")) == "Response diffs (provisional): 150 pairs"
    assert pairs_line(report("fraud-detector", "x")) is None
