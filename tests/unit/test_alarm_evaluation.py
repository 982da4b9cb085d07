"""The local cloud's alarm evaluation follows CloudWatch's documented rules for M of N and missing data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shadowscale_localcloud.alarm_evaluation import Datapoint, MissingData, decide

START = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
TREATMENTS: tuple[MissingData, ...] = ("missing", "ignore", "breaching", "notBreaching")


def points(pattern: str) -> list[Datapoint]:
    """The User Guide's notation, oldest first: 0 not breaching, X breaching, - missing."""
    values = {"0": 1.0, "X": 9.0, "-": None}
    return [
        Datapoint(START + timedelta(minutes=i), values[mark], 1.0 if values[mark] is not None else 0.0)
        for i, mark in enumerate(pattern.split())
    ]


def states(pattern: str, n: int, m: int) -> list[str | None]:
    return [
        decide(
            points(pattern),
            evaluation_periods=n,
            datapoints_to_alarm=m,
            treat_missing_data=treatment,
            breaches=lambda value: value > 5.0,
        ).state
        for treatment in TREATMENTS
    ]


# Both tables of "How alarm state is evaluated when data is missing" (None: the state is kept).
@pytest.mark.parametrize(
    ("pattern", "n", "m", "expected"),
    [
        ("0 - X - X", 3, 3, ["OK", "OK", "OK", "OK"]),
        ("0 - - - -", 3, 3, ["OK", "OK", "OK", "OK"]),
        ("- - - - -", 3, 3, ["INSUFFICIENT_DATA", None, "ALARM", "OK"]),
        ("0 X X - X", 3, 3, ["ALARM", "ALARM", "ALARM", "ALARM"]),
        ("- - X - -", 3, 3, ["ALARM", None, "ALARM", "OK"]),
        ("0 - X - X", 3, 2, ["ALARM", "ALARM", "ALARM", "ALARM"]),
        ("0 0 X 0 X", 3, 2, ["ALARM", "ALARM", "ALARM", "ALARM"]),
        ("0 - X - -", 3, 2, ["OK", "OK", "ALARM", "OK"]),
        ("- - - - 0", 3, 2, ["OK", "OK", "ALARM", "OK"]),
        ("- - - X -", 3, 2, ["ALARM", None, "ALARM", "OK"]),
    ],
)
def test_given_user_guide_example_when_decided_then_state_matches_the_table(
    pattern: str, n: int, m: int, expected: list[str | None]
) -> None:
    assert states(pattern, n, m) == expected


def test_given_premature_breach_when_not_old_enough_then_no_alarm_on_missing_data() -> None:
    # "- - - - X" with 3 of 3: the next datapoint may be fine, so CloudWatch does not alarm yet.
    assert states("- - - - X", 3, 3)[0] == "OK"


def test_given_enough_real_datapoints_then_only_the_newest_n_are_evaluated() -> None:
    verdict = decide(
        points("X X 0 - 0"),
        evaluation_periods=2,
        datapoints_to_alarm=1,
        treat_missing_data="breaching",
        breaches=lambda value: value > 5.0,
    )
    assert verdict.state == "OK"
    assert [point.start.minute for point in verdict.evaluated] == [4, 2]  # newest first, the gap skipped
    assert verdict.filled == 0


def test_given_shortfall_then_only_as_many_datapoints_as_missing_are_filled() -> None:
    verdict = decide(
        points("0 - X - -"),
        evaluation_periods=3,
        datapoints_to_alarm=3,
        treat_missing_data="breaching",
        breaches=lambda value: value > 5.0,
    )
    assert (verdict.state, verdict.filled, verdict.breaching) == ("OK", 1, 2)
