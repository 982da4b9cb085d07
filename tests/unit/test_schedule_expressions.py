"""EventBridge Scheduler expressions: parsing, cron/rate/at evaluation, DST, and a brute-force cross-check."""

from __future__ import annotations

import calendar
import random
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from shadowscale.capacity.schedule_expressions import (
    HORIZON,
    AtExpression,
    CronExpression,
    RateExpression,
    ScheduleExpression,
    ScheduleExpressionError,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC_ZONE = ZoneInfo("UTC")
MINUTE = timedelta(minutes=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def latest(
    text: str,
    moment: datetime,
    tz: ZoneInfo = UTC_ZONE,
    anchor: datetime | None = None,
) -> datetime | None:
    return ScheduleExpression.parse(text).latest_fire_at_or_before(moment, tz, anchor)


def following(
    text: str,
    moment: datetime,
    tz: ZoneInfo = UTC_ZONE,
    anchor: datetime | None = None,
) -> datetime | None:
    return ScheduleExpression.parse(text).next_fire_after(moment, tz, anchor)


def fires_after(text: str, moment: datetime, count: int, tz: ZoneInfo = UTC_ZONE) -> list[datetime]:
    expression = ScheduleExpression.parse(text)
    fires: list[datetime] = []
    for _ in range(count):
        fire = expression.next_fire_after(moment, tz)
        assert fire is not None
        fires.append(fire)
        moment = fire
    return fires


def first_fire_day_in_month(text: str, year: int, month: int) -> int:
    """Day of the month on which `text` (in UTC) first fires in the given month."""
    fire = following(text, utc(year, month, 1) - MINUTE)
    assert fire is not None
    assert (fire.year, fire.month) == (year, month), f"{text} did not fire in {year}-{month:02d}: {fire}"
    return fire.day


# ------------------------------------------------------------------------------------ parsing


def test_given_each_kind_when_parsed_then_the_matching_subclass_keeps_the_original_text() -> None:
    # GIVEN / WHEN
    cron = ScheduleExpression.parse("cron(0 8 ? * MON-FRI *)")
    rate = ScheduleExpression.parse("rate(5 minutes)")
    once = ScheduleExpression.parse("at(2024-03-01T10:00:00)")
    # THEN
    assert isinstance(cron, CronExpression)
    assert isinstance(rate, RateExpression)
    assert isinstance(once, AtExpression)
    assert cron.text == "cron(0 8 ? * MON-FRI *)"
    assert cron == ScheduleExpression.parse("cron(0 8 ? * MON-FRI *)")
    assert hash(cron) == hash(ScheduleExpression.parse("cron(0 8 ? * MON-FRI *)"))


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("cron(0 8 * *)", ["cron needs 6 fields", "got 4"]),
        ("cron(0 8 * * ? * *)", ["cron needs 6 fields", "got 7"]),
        ("cron(0 8 ? * FOO *)", ["cron day-of-week field 'FOO'", "unknown day name"]),
        ("cron(0 8 ? * 8 *)", ["cron day-of-week field '8'", "outside 1-7"]),
        ("cron(0 8 ? * 0 *)", ["cron day-of-week field '0'", "outside 1-7"]),
        ("cron(60 8 * * ? *)", ["cron minutes field '60'", "outside 0-59"]),
        ("cron(a 8 * * ? *)", ["cron minutes field 'a'", "not a number"]),
        ("cron(0 24 * * ? *)", ["cron hours field '24'", "outside 0-23"]),
        ("cron(0 8 32 * ? *)", ["cron day-of-month field '32'", "outside 1-31"]),
        ("cron(0 8 0 * ? *)", ["cron day-of-month field '0'", "outside 1-31"]),
        ("cron(0 8 * 13 ? *)", ["cron month field '13'", "outside 1-12"]),
        ("cron(0 8 * FOO ? *)", ["cron month field 'FOO'", "unknown month name"]),
        ("cron(0 8 * * ? 1969)", ["cron year field '1969'", "outside 1970-2199"]),
        ("cron(0 8 * * ? 2200)", ["cron year field '2200'", "outside 1970-2199"]),
        ("cron(0 8 * * ? 2025-2020)", ["cron year field '2025-2020'", "runs backwards"]),
        ("cron(0 8 * * * *)", ["day-of-month field '*'", "day-of-week field '*'", "exactly one"]),
        ("cron(0 8 ? * ? *)", ["day-of-month field '?'", "day-of-week field '?'", "exactly one"]),
        ("cron(*/60 * * * ? *)", ["cron minutes field '*/60'", "increment '60'"]),
        ("cron(0/0 * * * ? *)", ["cron minutes field '0/0'", "increment '0'"]),
        ("cron(0 */24 * * ? *)", ["cron hours field '*/24'", "increment '24'"]),
        ("cron(0 8 , * ? *)", ["cron day-of-month field ','", "a value is missing"]),
        ("cron(0 8 1,? * ? *)", ["cron day-of-month field '1,?'", "'?' must stand alone"]),
        ("cron(0 ? * * ? *)", ["cron hours field '?'", "only allowed in day-of-month and day-of-week"]),
        ("cron(0 8 W * ? *)", ["cron day-of-month field 'W'", "W needs a day"]),
        ("cron(0 8 L-2 * ? *)", ["cron day-of-month field 'L-2'", "L and W"]),
        ("cron(0 8 32W * ? *)", ["cron day-of-month field '32W'", "outside 1-31"]),
        ("cron(0 8 ? * 2/2 *)", ["cron day-of-week field '2/2'", "increments (/) are not allowed"]),
        ("cron(0 8 ? * 3#6 *)", ["cron day-of-week field '3#6'", "occurrence 1-5"]),
        ("cron(0 8 ? * 3# *)", ["cron day-of-week field '3#'", "occurrence 1-5"]),
        ("cron(0 8 ? * 9#2 *)", ["cron day-of-week field '9#2'", "outside 1-7"]),
        ("cron(0 8 ? * 2-6L *)", ["cron day-of-week field '2-6L'", "L needs a single day"]),
        ("cron(0 8 ? * XL *)", ["cron day-of-week field 'XL'", "unknown day name 'X'"]),
        ("cron(0 8 * * ? *", ["is not cron(...), rate(...) or at(...)"]),
        ("CRON(0 8 * * ? *)", ["keywords are lower case"]),
        ("every day at 8", ["is not cron(...), rate(...) or at(...)"]),
        ("", ["is not cron(...), rate(...) or at(...)"]),
        ("rate(2 weeks)", ["rate unit 'weeks' is not one of minute(s), hour(s), day(s)"]),
        ("rate(5 secs)", ["rate unit 'secs' is not one of minute(s), hour(s), day(s)"]),
        ("rate(0 minutes)", ["rate value '0' must be a positive integer"]),
        ("rate(-5 minutes)", ["rate value '-5' must be a positive integer"]),
        ("rate(1.5 hours)", ["rate value '1.5' must be a positive integer"]),
        ("rate(1 hours)", ["rate unit 'hours' must be singular ('hour')"]),
        ("rate(5 hour)", ["rate unit 'hour' must be plural ('hours')"]),
        ("rate(5)", ["rate needs 'value unit'"]),
        ("rate(5 minutes later)", ["rate needs 'value unit'"]),
        ("at(2024-02-30T10:00:00)", ["at timestamp '2024-02-30T10:00:00'", "day is out of range"]),
        ("at(2024-03-01T24:00:00)", ["at timestamp '2024-03-01T24:00:00'", "hour must be in 0..23"]),
        ("at(2024-03-01 10:00)", ["at timestamp '2024-03-01 10:00' is not yyyy-mm-ddThh:mm:ss"]),
    ],
)
def test_given_a_malformed_expression_when_parsed_then_the_error_names_the_field(
    text: str, fragments: list[str]
) -> None:
    # WHEN
    with pytest.raises(ScheduleExpressionError) as caught:
        ScheduleExpression.parse(text)
    # THEN
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


def test_given_a_schedule_expression_error_then_it_is_a_value_error() -> None:
    # Pydantic validators turn ValueError into field errors, so callers may rely on this.
    assert issubclass(ScheduleExpressionError, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "cron(0 8 ? * mon-fri *)",
        "cron(0 8 ? * Mon-Fri *)",
        "cron(0 8 ? * 2-6 *)",
    ],
)
def test_given_day_names_in_any_case_when_parsed_then_they_mean_the_numbered_days(text: str) -> None:
    # GIVEN a Sunday  WHEN listing the next fires  THEN Monday to Friday, same as 2-6
    weekdays_at_eight = [utc(2024, 1, day, 8) for day in (15, 16, 17, 18, 19, 22)]
    assert fires_after(text, utc(2024, 1, 14), 6) == weekdays_at_eight


def test_given_a_naive_moment_when_evaluated_then_value_error() -> None:
    expression = ScheduleExpression.parse("cron(0 8 * * ? *)")
    with pytest.raises(ValueError, match="moment must be timezone-aware"):
        expression.latest_fire_at_or_before(datetime(2024, 1, 1), UTC_ZONE)
    with pytest.raises(ValueError, match="moment must be timezone-aware"):
        expression.next_fire_after(datetime(2024, 1, 1), UTC_ZONE)


# --------------------------------------------------------------------------- cron: weekdays


def test_given_weekday_0800_berlin_when_saturday_noon_then_latest_is_friday_0700_utc() -> None:
    # GIVEN 2024-01-13 is a Saturday, winter time (CET, UTC+1)
    moment = local(BERLIN, 2024, 1, 13, 12)
    # WHEN / THEN
    assert latest("cron(0 8 ? * MON-FRI *)", moment, BERLIN) == utc(2024, 1, 12, 7)


def test_given_weekday_0800_berlin_when_monday_0759_then_latest_is_the_previous_friday() -> None:
    moment = local(BERLIN, 2024, 1, 15, 7, 59)
    assert latest("cron(0 8 ? * MON-FRI *)", moment, BERLIN) == utc(2024, 1, 12, 7)


def test_given_weekday_0800_berlin_when_exactly_0800_then_latest_is_that_instant() -> None:
    moment = local(BERLIN, 2024, 1, 15, 8, 0)
    assert latest("cron(0 8 ? * MON-FRI *)", moment, BERLIN) == moment
    # ... and the next fire is strictly after it: Tuesday
    assert following("cron(0 8 ? * MON-FRI *)", moment, BERLIN) == utc(2024, 1, 16, 7)


def test_given_weekday_0800_berlin_when_summer_then_fire_is_0600_utc() -> None:
    # GIVEN 2024-07-13 is a Saturday in CEST (UTC+2)
    assert latest("cron(0 8 ? * MON-FRI *)", local(BERLIN, 2024, 7, 13, 12), BERLIN) == utc(2024, 7, 12, 6)


def test_given_a_moment_with_seconds_when_evaluated_then_fires_are_whole_minutes() -> None:
    moment = utc(2024, 1, 15, 8, 0, 59) + timedelta(microseconds=5)
    assert latest("cron(0 8 ? * MON-FRI *)", moment) == utc(2024, 1, 15, 8)
    assert following("cron(0 8 ? * MON-FRI *)", utc(2024, 1, 15, 7, 59, 59)) == utc(2024, 1, 15, 8)


def test_given_the_result_when_returned_then_it_is_aware_utc() -> None:
    fire = latest("cron(0 8 ? * MON-FRI *)", local(BERLIN, 2024, 1, 13, 12), BERLIN)
    assert fire is not None
    assert fire.tzinfo is UTC


def test_given_day_of_week_1_when_evaluated_then_it_is_sunday() -> None:
    # GIVEN Monday 2024-01-15  THEN "1" is Sunday the 21st and "7" is Saturday the 20th
    assert following("cron(0 12 ? * 1 *)", utc(2024, 1, 15)) == utc(2024, 1, 21, 12)
    assert following("cron(0 12 ? * 7 *)", utc(2024, 1, 15)) == utc(2024, 1, 20, 12)
    assert following("cron(0 12 ? * SUN *)", utc(2024, 1, 15)) == utc(2024, 1, 21, 12)


def test_given_a_day_list_when_evaluated_then_only_those_days_fire() -> None:
    assert fires_after("cron(0 9 ? * MON,WED,FRI *)", utc(2024, 1, 14), 4) == [
        utc(2024, 1, 15, 9),
        utc(2024, 1, 17, 9),
        utc(2024, 1, 19, 9),
        utc(2024, 1, 22, 9),
    ]


def test_given_a_range_across_the_weekend_when_evaluated_then_it_wraps_from_friday_to_monday() -> None:
    # GIVEN Thursday 2024-01-18
    assert fires_after("cron(0 9 ? * FRI-MON *)", utc(2024, 1, 18), 5) == [
        utc(2024, 1, day, 9) for day in (19, 20, 21, 22, 26)
    ]


def test_given_day_of_week_l_alone_when_evaluated_then_it_is_saturday() -> None:
    assert fires_after("cron(0 9 ? * L *)", utc(2024, 1, 14), 2) == [utc(2024, 1, 20, 9), utc(2024, 1, 27, 9)]


# -------------------------------------------------------------------- cron: lists, increments


def test_given_minute_increment_0_15_when_evaluated_then_quarter_hours() -> None:
    fires = fires_after("cron(0/15 * * * ? *)", utc(2024, 1, 1, 9, 50), 5)
    assert fires == [utc(2024, 1, 1, 10, m) for m in (0, 15, 30, 45)] + [utc(2024, 1, 1, 11)]


def test_given_minute_increment_with_offset_when_evaluated_then_it_starts_at_the_offset() -> None:
    fires = fires_after("cron(5/20 10 * * ? *)", utc(2024, 1, 1), 4)
    assert fires == [utc(2024, 1, 1, 10, m) for m in (5, 25, 45)] + [utc(2024, 1, 2, 10, 5)]


def test_given_a_stepped_range_when_evaluated_then_only_steps_inside_the_range() -> None:
    fires = fires_after("cron(10-20/5 8-9 * * ? *)", utc(2024, 1, 1), 7)
    assert fires == [
        utc(2024, 1, 1, 8, 10),
        utc(2024, 1, 1, 8, 15),
        utc(2024, 1, 1, 8, 20),
        utc(2024, 1, 1, 9, 10),
        utc(2024, 1, 1, 9, 15),
        utc(2024, 1, 1, 9, 20),
        utc(2024, 1, 2, 8, 10),
    ]


def test_given_a_month_increment_and_names_when_evaluated_then_every_third_month() -> None:
    expected = [utc(2024, month, 1) for month in (1, 4, 7, 10)]
    assert fires_after("cron(0 0 1 */3 ? *)", utc(2023, 12, 31), 4) == expected
    assert fires_after("cron(0 0 1 jan,APR,Jul,OcT ? *)", utc(2023, 12, 31), 4) == expected


def test_given_an_hour_range_across_midnight_when_evaluated_then_it_wraps() -> None:
    fires = fires_after("cron(0 22-1 * * ? *)", utc(2024, 1, 1, 12), 5)
    assert fires == [
        utc(2024, 1, 1, 22),
        utc(2024, 1, 1, 23),
        utc(2024, 1, 2, 0),
        utc(2024, 1, 2, 1),
        utc(2024, 1, 2, 22),
    ]


# ------------------------------------------------------------------------------ cron: L W #


def test_given_day_of_month_l_when_evaluated_then_last_day_of_each_month() -> None:
    fires = fires_after("cron(0 0 L * ? *)", utc(2024, 2, 1), 4)
    assert fires == [utc(2024, 2, 29), utc(2024, 3, 31), utc(2024, 4, 30), utc(2024, 5, 31)]


def test_given_5l_when_evaluated_then_last_thursday_of_the_month() -> None:
    # November 2024: Thursdays 7, 14, 21, 28; December 2024: 5 ... 26
    assert fires_after("cron(0 18 ? * 5L *)", utc(2024, 11, 1), 2) == [
        utc(2024, 11, 28, 18),
        utc(2024, 12, 26, 18),
    ]
    # May 2024 ends on Friday the 31st, so the last Friday (6L) is the last day itself
    assert first_fire_day_in_month("cron(0 0 ? * FRIL *)", 2024, 5) == 31


def test_given_3_hash_2_when_evaluated_then_second_tuesday() -> None:
    # October 2024 starts on a Tuesday, so its second Tuesday is the 8th
    assert first_fire_day_in_month("cron(0 10 ? * 3#2 *)", 2024, 10) == 8
    assert first_fire_day_in_month("cron(0 10 ? * TUE#2 *)", 2024, 11) == 12


def test_given_fifth_monday_when_evaluated_then_months_without_one_are_skipped() -> None:
    fires = fires_after("cron(0 0 ? * 2#5 *)", utc(2024, 1, 1), 4)
    assert fires == [utc(2024, 1, 29), utc(2024, 4, 29), utc(2024, 7, 29), utc(2024, 9, 30)]


@pytest.mark.parametrize(
    ("text", "year", "month", "day"),
    [
        ("cron(0 0 15W * ? *)", 2024, 5, 15),  # Wednesday 15th: itself
        ("cron(0 0 15W * ? *)", 2024, 6, 14),  # Saturday 15th: Friday before
        ("cron(0 0 15W * ? *)", 2024, 9, 16),  # Sunday 15th: Monday after
        ("cron(0 0 1W * ? *)", 2024, 6, 3),  # Saturday 1st: Monday the 3rd, never the previous month
        ("cron(0 0 1W * ? *)", 2024, 9, 2),  # Sunday 1st: Monday the 2nd
        ("cron(0 0 30W * ? *)", 2024, 6, 28),  # Sunday 30th is the last day: Friday, never July
        ("cron(0 0 31W * ? *)", 2024, 8, 30),  # Saturday 31st: Friday the 30th
        ("cron(0 0 LW * ? *)", 2024, 3, 29),  # ends on Sunday 31st
        ("cron(0 0 LW * ? *)", 2024, 8, 30),  # ends on Saturday 31st
        ("cron(0 0 LW * ? *)", 2024, 7, 31),  # ends on Wednesday 31st
        ("cron(0 0 LW * ? *)", 2024, 2, 29),  # leap-year Thursday 29th
    ],
)
def test_given_nearest_weekday_forms_when_evaluated_then_they_pick_the_right_weekday(
    text: str, year: int, month: int, day: int
) -> None:
    assert first_fire_day_in_month(text, year, month) == day


def test_given_31w_when_the_month_has_30_days_then_it_does_not_fire_that_month() -> None:
    # June 2024 has 30 days; the next fire after the May one is in July
    assert following("cron(0 0 31W * ? *)", utc(2024, 6, 1)) == utc(2024, 7, 31)


# -------------------------------------------------------------------- cron: year and horizon


def test_given_year_2020_only_when_after_2021_then_no_next_fire() -> None:
    assert following("cron(0 0 1 1 ? 2020)", utc(2021, 1, 1)) is None
    assert following("cron(0 0 1 1 ? 2020)", utc(2019, 6, 1)) == utc(2020, 1, 1)


def test_given_year_2020_only_when_within_five_years_then_latest_is_found_and_beyond_it_is_not() -> None:
    assert latest("cron(0 0 1 1 ? 2020)", utc(2024, 6, 1)) == utc(2020, 1, 1)
    assert latest("cron(0 0 1 1 ? 2020)", utc(2026, 6, 1)) is None


def test_given_the_last_cron_year_when_evaluated_then_nothing_fires_after_2199() -> None:
    assert following("cron(0 0 1 1 ? 2199)", utc(2195, 6, 1)) == utc(2199, 1, 1)
    assert following("cron(0 0 1 1 ? 2199)", utc(2190, 6, 1)) is None  # more than five years ahead
    assert following("cron(0 0 * * ? *)", utc(2199, 12, 31, 1)) is None
    assert latest("cron(0 0 * * ? *)", utc(2250, 1, 1)) is None


def test_given_a_fire_exactly_at_the_horizon_edge_when_evaluated_then_the_edge_is_inclusive() -> None:
    fire = utc(2020, 1, 1)
    assert latest("cron(0 0 1 1 ? 2020)", fire + HORIZON) == fire
    assert latest("cron(0 0 1 1 ? 2020)", fire + HORIZON + MINUTE) is None
    last_fire = utc(2024, 12, 31, 23)
    assert following("cron(0 23 31 12 ? 2024)", last_fire - HORIZON) == last_fire
    assert following("cron(0 23 31 12 ? 2024)", last_fire - HORIZON - MINUTE) is None


def test_given_february_29_when_evaluated_then_it_finds_leap_years() -> None:
    assert following("cron(0 0 29 2 ? *)", utc(2024, 3, 1)) == utc(2028, 2, 29)
    assert latest("cron(0 0 29 2 ? *)", utc(2024, 3, 1)) == utc(2024, 2, 29)
    assert latest("cron(0 0 29 2 ? *)", utc(2027, 12, 31)) == utc(2024, 2, 29)


def test_given_a_date_that_never_exists_when_evaluated_then_none() -> None:
    assert following("cron(0 0 31 2 ? *)", utc(2024, 1, 1)) is None
    assert latest("cron(0 0 31 2 ? *)", utc(2024, 1, 1)) is None


def test_given_the_horizon_then_it_is_five_years() -> None:
    assert timedelta(days=5 * 365) < HORIZON <= timedelta(days=5 * 366)


# ------------------------------------------------------------------------------- cron: DST


def test_given_berlin_spring_forward_when_0230_does_not_exist_then_that_day_is_skipped() -> None:
    # GIVEN 2024-03-31: 02:00 CET jumps to 03:00 CEST, so 02:30 never happens (AWS skips it)
    text = "cron(30 2 * * ? *)"
    # WHEN asking at 04:00 local that day  THEN the latest fire is the day before (02:30 CET = 01:30 UTC)
    assert latest(text, local(BERLIN, 2024, 3, 31, 4), BERLIN) == utc(2024, 3, 30, 1, 30)
    # WHEN asking the day before  THEN the next fire is on April 1st at 02:30 CEST = 00:30 UTC
    assert following(text, local(BERLIN, 2024, 3, 30, 3), BERLIN) == utc(2024, 4, 1, 0, 30)


def test_given_berlin_spring_forward_when_hourly_then_the_missing_hour_is_skipped() -> None:
    fires = fires_after("cron(0 * * * ? *)", utc(2024, 3, 30, 23, 30), 4, BERLIN)
    # 01:00 CET (00:00 UTC), then 03:00 CEST (01:00 UTC): one hour of real time apart
    assert fires == [utc(2024, 3, 31, 0), utc(2024, 3, 31, 1), utc(2024, 3, 31, 2), utc(2024, 3, 31, 3)]
    assert following("cron(* * * * ? *)", utc(2024, 3, 31, 0, 59), BERLIN) == utc(2024, 3, 31, 1)


def test_given_berlin_fall_back_when_0230_happens_twice_then_only_the_first_fires() -> None:
    # GIVEN 2024-10-27: 03:00 CEST falls back to 02:00 CET, so 02:30 happens at 00:30 and 01:30 UTC
    text = "cron(30 2 * * ? *)"
    assert latest(text, local(BERLIN, 2024, 10, 27, 4), BERLIN) == utc(2024, 10, 27, 0, 30)
    assert following(text, utc(2024, 10, 27, 0, 30), BERLIN) == utc(2024, 10, 28, 1, 30)


def test_given_berlin_fall_back_when_moment_is_in_the_repeated_hour_then_latest_uses_real_time() -> None:
    # GIVEN 02:20 CET (second pass, 01:20 UTC); the first-pass fires at 02:00..02:45 CEST all came before it
    moment = local(BERLIN, 2024, 10, 27, 2, 20).replace(fold=1)
    assert moment.astimezone(UTC) == utc(2024, 10, 27, 1, 20)
    assert latest("cron(*/15 2 * * ? *)", moment, BERLIN) == utc(2024, 10, 27, 0, 45)
    assert following("cron(*/15 2 * * ? *)", moment, BERLIN) == utc(2024, 10, 28, 1, 0)


def test_given_new_york_spring_forward_when_0230_does_not_exist_then_that_day_is_skipped() -> None:
    # GIVEN 2024-03-10: 02:00 EST jumps to 03:00 EDT
    text = "cron(30 2 * * ? *)"
    assert latest(text, local(NEW_YORK, 2024, 3, 10, 12), NEW_YORK) == utc(2024, 3, 9, 7, 30)
    assert following(text, local(NEW_YORK, 2024, 3, 9, 3), NEW_YORK) == utc(2024, 3, 11, 6, 30)


def test_given_new_york_fall_back_when_0130_happens_twice_then_only_the_first_fires() -> None:
    # GIVEN 2024-11-03: 02:00 EDT falls back to 01:00 EST, so 01:30 happens at 05:30 and 06:30 UTC
    text = "cron(30 1 * * ? *)"
    assert fires_after(text, utc(2024, 11, 2, 12), 2, NEW_YORK) == [
        utc(2024, 11, 3, 5, 30),
        utc(2024, 11, 4, 6, 30),
    ]
    assert latest(text, utc(2024, 11, 3, 6, 45), NEW_YORK) == utc(2024, 11, 3, 5, 30)


# ------------------------------------------------------------------------------------- rate


def test_given_rate_without_anchor_in_utc_when_evaluated_then_aligned_to_1970_midnight() -> None:
    assert latest("rate(5 minutes)", utc(2024, 1, 1, 12, 7, 30)) == utc(2024, 1, 1, 12, 5)
    assert latest("rate(5 minutes)", utc(2024, 1, 1, 12, 5)) == utc(2024, 1, 1, 12, 5)
    assert following("rate(5 minutes)", utc(2024, 1, 1, 12, 5)) == utc(2024, 1, 1, 12, 10)
    assert latest("rate(1 minute)", utc(2024, 1, 1, 12, 5, 59)) == utc(2024, 1, 1, 12, 5)


def test_given_rate_days_without_anchor_when_summer_then_it_stays_24_hours_apart() -> None:
    # GIVEN the default anchor is local midnight 1970-01-01 in New York (EST, 05:00 UTC)
    # THEN a day is 24 hours, so in summer (EDT) the fire lands at 01:00 local, still 05:00 UTC
    assert latest("rate(1 day)", utc(2024, 7, 4, 12), NEW_YORK) == utc(2024, 7, 4, 5)
    assert following("rate(1 day)", utc(2024, 7, 4, 12), NEW_YORK) == utc(2024, 7, 5, 5)


def test_given_rate_with_anchor_when_evaluated_then_fires_are_anchor_plus_whole_periods() -> None:
    anchor = local(BERLIN, 2024, 1, 1, 10, 30)  # 09:30 UTC
    assert latest("rate(2 hours)", utc(2024, 1, 1, 12), BERLIN, anchor) == utc(2024, 1, 1, 11, 30)
    assert latest("rate(2 hours)", utc(2024, 1, 1, 9, 30), BERLIN, anchor) == utc(2024, 1, 1, 9, 30)
    assert following("rate(2 hours)", utc(2024, 1, 1, 9, 30), BERLIN, anchor) == utc(2024, 1, 1, 11, 30)
    assert latest("rate(7 days)", utc(2024, 1, 20), BERLIN, anchor) == utc(2024, 1, 15, 9, 30)


def test_given_rate_with_anchor_when_before_the_anchor_then_no_latest_and_next_is_the_anchor() -> None:
    anchor = utc(2024, 1, 1, 9, 30)
    assert latest("rate(2 hours)", utc(2024, 1, 1, 9, 29), UTC_ZONE, anchor) is None
    assert following("rate(2 hours)", utc(2024, 1, 1, 9, 29), UTC_ZONE, anchor) == anchor
    assert following("rate(2 hours)", anchor - HORIZON - MINUTE, UTC_ZONE, anchor) is None


def test_given_rate_longer_than_the_horizon_when_evaluated_then_none_beyond_it() -> None:
    # GIVEN fires on 2020-01-01 and then 3000 days later, on 2028-03-19
    anchor = utc(2020, 1, 1)
    assert latest("rate(3000 days)", utc(2024, 6, 1), UTC_ZONE, anchor) == anchor
    assert latest("rate(3000 days)", utc(2026, 6, 1), UTC_ZONE, anchor) is None  # over five years back
    assert following("rate(3000 days)", utc(2024, 1, 1), UTC_ZONE, anchor) == utc(2028, 3, 19)
    assert following("rate(3000 days)", utc(2020, 1, 2), UTC_ZONE, anchor) is None  # over five years ahead


@pytest.mark.parametrize(
    "text",
    [
        "rate(1 minute)",
        "rate(1 hour)",
        "rate(1 day)",
        "rate(2 minutes)",
        "rate(10 days)",
    ],
)
def test_given_the_aws_singular_plural_rule_when_followed_then_the_rate_parses(text: str) -> None:
    assert isinstance(ScheduleExpression.parse(text), RateExpression)


def test_given_a_naive_anchor_when_evaluated_then_value_error() -> None:
    with pytest.raises(ValueError, match="anchor must be timezone-aware"):
        latest("rate(1 hour)", utc(2024, 1, 1), UTC_ZONE, datetime(2024, 1, 1))


# --------------------------------------------------------------------------------------- at


def test_given_a_one_time_expression_when_evaluated_then_it_fires_once_at_local_time() -> None:
    text = "at(2024-03-01T10:00:00)"  # 09:00 UTC in Berlin
    assert latest(text, utc(2024, 3, 1, 9), BERLIN) == utc(2024, 3, 1, 9)
    assert latest(text, utc(2024, 3, 1, 8, 59), BERLIN) is None
    assert following(text, utc(2024, 3, 1, 8, 59), BERLIN) == utc(2024, 3, 1, 9)
    assert following(text, utc(2024, 3, 1, 9), BERLIN) is None
    assert latest(text, utc(2024, 3, 1, 9) + HORIZON + MINUTE, BERLIN) is None


def test_given_a_one_time_expression_in_dst_edges_then_the_same_rule_as_cron_applies() -> None:
    # inside the spring-forward gap: never fires; in the fall-back overlap: the first occurrence
    assert following("at(2024-03-31T02:30:00)", utc(2024, 3, 1), BERLIN) is None
    assert following("at(2024-10-27T02:30:00)", utc(2024, 10, 1), BERLIN) == utc(2024, 10, 27, 0, 30)


def test_given_a_one_time_expression_with_seconds_then_they_are_kept() -> None:
    assert following("at(2024-03-01T10:00:30)", utc(2024, 3, 1), UTC_ZONE) == utc(2024, 3, 1, 10, 0, 30)


# ------------------------------------------------------------- cross-check against brute force


def _last_weekday_of_month(moment: datetime) -> bool:
    days_in_month = calendar.monthrange(moment.year, moment.month)[1]
    last = date(moment.year, moment.month, days_in_month)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return moment.day == last.day


def _last_friday_of_month(moment: datetime) -> bool:
    days_in_month = calendar.monthrange(moment.year, moment.month)[1]
    return moment.weekday() == 4 and moment.day + 7 > days_in_month


def _nearest_weekday_to_15th(moment: datetime) -> bool:
    fifteenth = date(moment.year, moment.month, 15)
    shift = {5: -1, 6: 1}.get(fifteenth.weekday(), 0)
    return moment.day == 15 + shift


# Each expression with an independent reference: does it fire at this local wall-clock minute?
REFERENCES: list[tuple[str, ZoneInfo, Callable[[datetime], bool]]] = [
    ("cron(0 8 ? * MON-FRI *)", BERLIN, lambda t: t.weekday() < 5 and (t.hour, t.minute) == (8, 0)),
    ("cron(*/15 1-3 * * ? *)", BERLIN, lambda t: 1 <= t.hour <= 3 and t.minute % 15 == 0),
    ("cron(30 2 * * ? *)", NEW_YORK, lambda t: (t.hour, t.minute) == (2, 30)),
    ("cron(0,30 1 * * ? *)", NEW_YORK, lambda t: t.hour == 1 and t.minute in (0, 30)),
    (
        "cron(30 2 ? * 6L *)",
        NEW_YORK,
        lambda t: _last_friday_of_month(t) and (t.hour, t.minute) == (2, 30),
    ),
    (
        "cron(0/20 9-17 LW * ? *)",
        BERLIN,
        lambda t: _last_weekday_of_month(t) and 9 <= t.hour <= 17 and t.minute % 20 == 0,
    ),
    ("cron(0 0 15W * ? *)", BERLIN, lambda t: _nearest_weekday_to_15th(t) and (t.hour, t.minute) == (0, 0)),
    (
        "cron(45 23 ? * 1#1 *)",
        NEW_YORK,
        lambda t: t.weekday() == 6 and t.day <= 7 and (t.hour, t.minute) == (23, 45),
    ),
]
REFERENCE_IDS = [text for text, _, _ in REFERENCES]


def _fires_by_reference(fires_at: Callable[[datetime], bool], tz: ZoneInfo, instant: datetime) -> bool:
    wall = instant.astimezone(tz)
    # astimezone never yields a skipped wall time, and fold=1 marks the second pass of a repeated one
    return instant.second == 0 and wall.fold == 0 and fires_at(wall)


def _brute_force_fires(
    fires_at: Callable[[datetime], bool], tz: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Every fire in [start, end], one UTC minute at a time."""
    instant = start.replace(second=0, microsecond=0)
    fires: list[datetime] = []
    while instant <= end:
        if instant >= start and _fires_by_reference(fires_at, tz, instant):
            fires.append(instant)
        instant += MINUTE
    return fires


@pytest.mark.parametrize(("text", "tz", "fires_at"), REFERENCES, ids=REFERENCE_IDS)
def test_given_random_instants_when_evaluated_then_latest_and_next_agree_with_each_other(
    text: str, tz: ZoneInfo, fires_at: Callable[[datetime], bool]
) -> None:
    expression = ScheduleExpression.parse(text)
    rng = random.Random(7)
    for _ in range(200):
        moment = utc(2020, 1, 1) + timedelta(seconds=rng.randrange(10 * 366 * 86400))
        upcoming = expression.next_fire_after(moment, tz)
        previous = expression.latest_fire_at_or_before(moment, tz)
        assert upcoming is not None
        assert previous is not None
        assert previous <= moment < upcoming
        assert _fires_by_reference(fires_at, tz, upcoming), f"{text} fired at {upcoming} per next_fire_after"
        assert _fires_by_reference(fires_at, tz, previous), f"{text} fired at {previous} per latest"
        assert expression.latest_fire_at_or_before(upcoming, tz) == upcoming
        assert expression.next_fire_after(previous, tz) == upcoming
        # no fire strictly between the latest one and the moment (bounded brute force)
        if moment - previous <= timedelta(days=4):
            assert _brute_force_fires(fires_at, tz, previous + MINUTE, moment) == []


DST_WINDOWS = [
    pytest.param(BERLIN, utc(2024, 3, 30, 12), utc(2024, 4, 1, 12), id="berlin-spring"),
    pytest.param(BERLIN, utc(2024, 10, 26, 12), utc(2024, 10, 28, 12), id="berlin-fall"),
    pytest.param(NEW_YORK, utc(2024, 3, 9, 18), utc(2024, 3, 11, 18), id="new-york-spring"),
    pytest.param(NEW_YORK, utc(2024, 11, 2, 18), utc(2024, 11, 4, 18), id="new-york-fall"),
]
# Wall-clock references that fire inside the DST transition hours, used in whichever zone is tested.
DENSE_REFERENCES = [
    pytest.param(text, fires_at, id=text)
    for text, _, fires_at in REFERENCES
    if text in ("cron(*/15 1-3 * * ? *)", "cron(30 2 * * ? *)", "cron(0,30 1 * * ? *)")
]


@pytest.mark.parametrize(("tz", "start", "end"), DST_WINDOWS)
@pytest.mark.parametrize(("text", "fires_at"), DENSE_REFERENCES)
def test_given_every_minute_across_a_dst_change_when_evaluated_then_results_match_brute_force(
    tz: ZoneInfo, start: datetime, end: datetime, text: str, fires_at: Callable[[datetime], bool]
) -> None:
    # GIVEN every fire in the window, found one minute at a time by the reference
    expression = ScheduleExpression.parse(text)
    fires = _brute_force_fires(fires_at, tz, start, end)
    assert fires, "the window should contain fires"
    # WHEN asking at every minute (and half a minute later) THEN latest/next are the neighbouring fires
    instant = start
    while instant <= end:
        for moment in (instant, instant + timedelta(seconds=30)):
            position = bisect_right(fires, moment)
            if position > 0:
                assert expression.latest_fire_at_or_before(moment, tz) == fires[position - 1], moment
            if position < len(fires):
                assert expression.next_fire_after(moment, tz) == fires[position], moment
        instant += MINUTE
