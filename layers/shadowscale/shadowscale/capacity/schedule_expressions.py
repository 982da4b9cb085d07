"""Evaluate Amazon EventBridge Scheduler expressions: cron(...), rate(...) and at(...).

The capacity autopilot asks, for any instant, when a schedule last fired and when it fires next.
Expressions are parsed once into sorted allowed-value sets; evaluation walks matching days and picks the
minute inside a day by bisection, so no call ever steps minute by minute.

Cron and at(...) times are wall-clock times in the given IANA zone, and daylight-saving time follows what
AWS documents for EventBridge Scheduler ("the invocation gets skipped if the cron expression falls on a
non-existent date and time ... in the Fall, your schedule runs only once",
https://repost.aws/knowledge-center/eventbridge-scheduler-adjust-dst): a local time inside a spring-forward
gap does not fire at all (AWS skips it rather than shifting it), and an ambiguous fall-back time fires
once, at its first occurrence (fold=0), which AWS leaves unspecified.
rate(...) periods are fixed durations (a day is 24 hours, as AWS documents), counted from an anchor instant.
Both searches look at most HORIZON (five years) away from the moment; beyond it they answer None.
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "HORIZON",
    "AtExpression",
    "CronExpression",
    "RateExpression",
    "ScheduleExpression",
    "ScheduleExpressionError",
]

HORIZON = timedelta(days=5 * 365 + 2)  # five years, leap days included

_MINUTE = timedelta(minutes=1)
_FIRST_DAY = date(1970, 1, 1)  # the cron year field cannot name anything outside 1970-2199
_LAST_DAY = date(2199, 12, 31)
_SATURDAY, _SUNDAY = 5, 6  # datetime.weekday() numbering, Monday = 0

_EXPRESSION = re.compile(r"(cron|rate|at)\((.*)\)")
_AT_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")
_DIGITS = re.compile(r"\d+")

_MONTH_NAMES = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleExpressionError(ValueError):
    """Raised with a message that says what is wrong with the expression and which field."""


@dataclass(frozen=True)
class ScheduleExpression(ABC):
    """A parsed EventBridge Scheduler expression; `parse` returns the matching subclass."""

    text: str  # the original expression, e.g. "cron(0 8 ? * MON-FRI *)"

    @classmethod
    def parse(cls, text: str) -> ScheduleExpression:
        match = _EXPRESSION.fullmatch(text.strip())
        if match is None:
            raise ScheduleExpressionError(
                f"expression {text!r} is not cron(...), rate(...) or at(...) (keywords are lower case)"
            )
        kind, body = match.groups()
        if kind == "cron":
            return CronExpression.from_body(text, body)
        if kind == "rate":
            return RateExpression.from_body(text, body)
        return AtExpression.from_body(text, body)

    def latest_fire_at_or_before(
        self,
        moment: datetime,
        tz: ZoneInfo,
        anchor: datetime | None = None,
    ) -> datetime | None:
        """The greatest fire time <= moment, in UTC; None if there is none within HORIZON before it.

        `anchor` is the first fire of a rate(...) expression; the other kinds ignore it.
        """
        return self._latest(_as_utc(moment, "moment"), tz, _optional_utc(anchor))

    def next_fire_after(
        self,
        moment: datetime,
        tz: ZoneInfo,
        anchor: datetime | None = None,
    ) -> datetime | None:
        """The smallest fire time > moment, in UTC; None if there is none within HORIZON after it."""
        return self._next(_as_utc(moment, "moment"), tz, _optional_utc(anchor))

    @abstractmethod
    def _latest(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None: ...

    @abstractmethod
    def _next(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None: ...


# --------------------------------------------------------------------------------------------- cron


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    name_kind: str  # how an unknown name is reported: "day name", "month name"
    cyclic: bool  # whether a range like 22-2 may wrap past the top of the field
    max_step: int


_MINUTES = _FieldSpec("minutes", 0, 59, {}, "", cyclic=True, max_step=59)
_HOURS = _FieldSpec("hours", 0, 23, {}, "", cyclic=True, max_step=23)
_DAY_OF_MONTH = _FieldSpec("day-of-month", 1, 31, {}, "", cyclic=True, max_step=31)
_MONTH = _FieldSpec("month", 1, 12, _MONTH_NAMES, "month name", cyclic=True, max_step=12)
_DAY_OF_WEEK = _FieldSpec("day-of-week", 1, 7, _DAY_NAMES, "day name", cyclic=True, max_step=7)
_YEAR = _FieldSpec("year", 1970, 2199, {}, "", cyclic=False, max_step=2199 - 1970)


def _field_error(spec: _FieldSpec, field_text: str, reason: str) -> ScheduleExpressionError:
    return ScheduleExpressionError(f"cron {spec.name} field {field_text!r}: {reason}")


def _parse_value(spec: _FieldSpec, field_text: str, value_text: str) -> int:
    if not value_text:
        raise _field_error(spec, field_text, "a value is missing")
    if _DIGITS.fullmatch(value_text):
        value = int(value_text)
        if not spec.low <= value <= spec.high:
            raise _field_error(spec, field_text, f"value {value} is outside {spec.low}-{spec.high}")
        return value
    if spec.names:
        named = spec.names.get(value_text.upper())
        if named is None:
            raise _field_error(spec, field_text, f"unknown {spec.name_kind} {value_text!r}")
        return named
    raise _field_error(spec, field_text, f"{value_text!r} is not a number")


def _parse_item(spec: _FieldSpec, field_text: str, item: str) -> list[int]:
    """One comma-separated item: *, a, a-b, with an optional /step."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _DIGITS.fullmatch(step_text) or not 1 <= int(step_text) <= spec.max_step:
            raise _field_error(spec, field_text, f"increment {step_text!r} must be 1 to {spec.max_step}")
        step = int(step_text)
    if base == "*":
        first, last = spec.low, spec.high
    elif "-" in base:
        first_text, _, last_text = base.partition("-")
        first, last = _parse_value(spec, field_text, first_text), _parse_value(spec, field_text, last_text)
    else:
        first = _parse_value(spec, field_text, base)
        last = spec.high if slash else first  # "a/n" runs from a to the top of the field
    if first <= last:
        return list(range(first, last + 1, step))
    if not spec.cyclic:
        raise _field_error(spec, field_text, f"range {first}-{last} runs backwards")
    # Quartz semantics, which EventBridge cron follows: FRI-MON wraps through the end of the week.
    wrapped = [*range(first, spec.high + 1), *range(spec.low, last + 1)]
    return wrapped[::step]


def _parse_plain_field(spec: _FieldSpec, field_text: str) -> tuple[int, ...]:
    values: set[int] = set()
    for item in field_text.split(","):
        if "?" in item:
            raise _field_error(spec, field_text, "'?' is only allowed in day-of-month and day-of-week")
        values.update(_parse_item(spec, field_text, item))
    return tuple(sorted(values))


def _weekday_number(python_weekday: int) -> int:
    """EventBridge numbering (1 = Sunday ... 7 = Saturday) of a datetime.weekday() value (0 = Monday)."""
    return (python_weekday + 1) % 7 + 1


def _nearest_weekday(day: int, first_weekday: int, days_in_month: int) -> int:
    """The Monday-Friday day nearest to `day`, never leaving the month (Quartz's W)."""
    weekday = (first_weekday + day - 1) % 7
    if weekday == _SATURDAY:
        return 3 if day == 1 else day - 1
    if weekday == _SUNDAY:
        return day - 2 if day == days_in_month else day + 1
    return day


@dataclass(frozen=True)
class _DayOfMonthRule:
    """The day-of-month field: plain days plus the L, LW and nW forms."""

    days: tuple[int, ...]
    last_day: bool
    last_weekday: bool
    nearest_weekday_to: tuple[int, ...]

    def days_in(self, first_weekday: int, days_in_month: int) -> tuple[int, ...]:
        if not (self.last_day or self.last_weekday or self.nearest_weekday_to):
            return tuple(day for day in self.days if day <= days_in_month)
        chosen = {day for day in self.days if day <= days_in_month}
        if self.last_day:
            chosen.add(days_in_month)
        if self.last_weekday:
            chosen.add(_nearest_weekday(days_in_month, first_weekday, days_in_month))
        for target in self.nearest_weekday_to:
            if target <= days_in_month:  # 31W in a 30-day month names no day, so nothing fires
                chosen.add(_nearest_weekday(target, first_weekday, days_in_month))
        return tuple(sorted(chosen))


@dataclass(frozen=True)
class _DayOfWeekRule:
    """The day-of-week field (1 = Sunday): plain weekdays plus the nL and n#k forms."""

    weekdays: tuple[int, ...]
    last_in_month: tuple[int, ...]
    nth_in_month: tuple[tuple[int, int], ...]  # (weekday, occurrence)

    def days_in(self, first_weekday: int, days_in_month: int) -> tuple[int, ...]:
        first = _weekday_number(first_weekday)
        chosen: set[int] = set()
        for weekday in self.weekdays:
            chosen.update(range(1 + (weekday - first) % 7, days_in_month + 1, 7))
        last = _weekday_number((first_weekday + days_in_month - 1) % 7)
        for weekday in self.last_in_month:
            chosen.add(days_in_month - (last - weekday) % 7)
        for weekday, occurrence in self.nth_in_month:
            day = 1 + (weekday - first) % 7 + 7 * (occurrence - 1)
            if day <= days_in_month:
                chosen.add(day)
        return tuple(sorted(chosen))


def _parse_day_of_month(field_text: str) -> _DayOfMonthRule:
    spec = _DAY_OF_MONTH
    days: set[int] = set()
    last_day = last_weekday = False
    nearest: list[int] = []
    for item in field_text.split(","):
        upper_item = item.upper()
        if "?" in upper_item:
            raise _field_error(spec, field_text, "'?' must stand alone")
        if upper_item == "L":
            last_day = True
        elif upper_item == "LW":
            last_weekday = True
        elif upper_item.endswith("W") and "/" not in upper_item and "-" not in upper_item:
            if upper_item == "W":
                raise _field_error(spec, field_text, "W needs a day before it, e.g. 15W")
            nearest.append(_parse_value(spec, field_text, upper_item[:-1]))
        elif "L" in upper_item or "W" in upper_item:
            raise _field_error(spec, field_text, f"{item!r}: L and W only work as L, LW or nW (e.g. 15W)")
        else:
            days.update(_parse_item(spec, field_text, item))
    return _DayOfMonthRule(tuple(sorted(days)), last_day, last_weekday, tuple(sorted(set(nearest))))


def _parse_day_of_week(field_text: str) -> _DayOfWeekRule:
    spec = _DAY_OF_WEEK
    weekdays: set[int] = set()
    last_in_month: set[int] = set()
    nth_in_month: set[tuple[int, int]] = set()
    for item in field_text.split(","):
        upper_item = item.upper()
        if "?" in upper_item:
            raise _field_error(spec, field_text, "'?' must stand alone")
        if "/" in upper_item:
            raise _field_error(spec, field_text, "increments (/) are not allowed in day-of-week")
        if upper_item == "L":
            weekdays.add(7)  # L alone is the last day of the week: Saturday
        elif "#" in upper_item:
            day_text, _, occurrence_text = upper_item.partition("#")
            occurrence = int(occurrence_text) if _DIGITS.fullmatch(occurrence_text) else 0
            if "-" in day_text or not 1 <= occurrence <= 5:
                raise _field_error(spec, field_text, "'#' takes one day and an occurrence 1-5, e.g. 3#2")
            nth_in_month.add((_parse_value(spec, field_text, day_text), occurrence))
        elif upper_item.endswith("L"):
            if "-" in upper_item:
                raise _field_error(spec, field_text, f"{item!r}: L needs a single day before it, e.g. 5L")
            last_in_month.add(_parse_value(spec, field_text, upper_item[:-1]))
        else:
            weekdays.update(_parse_item(spec, field_text, item))
    return _DayOfWeekRule(tuple(sorted(weekdays)), tuple(sorted(last_in_month)), tuple(sorted(nth_in_month)))


def _utc_offset(local: datetime) -> timedelta:
    offset = local.utcoffset()
    if offset is None:  # only a broken tzinfo answers None
        raise ValueError(f"time zone {local.tzinfo!r} gives no UTC offset for {local.isoformat()}")
    return offset


def _day_offsets(day: date, tz: ZoneInfo) -> tuple[timedelta, timedelta]:
    """UTC offsets at the first and last minute of a local day; they differ only on DST transition days.

    fold=0 resolves ambiguous times to their first occurrence, so a fall-back hour at the very end of a
    day still shares the day's opening offset, which is exactly the occurrence that fires.
    """
    opening = _utc_offset(datetime.combine(day, time(0, 0), tzinfo=tz))
    closing = _utc_offset(datetime.combine(day, time(23, 59), tzinfo=tz))
    return opening, closing


def _existing_instant(local_wall_time: datetime, tz: ZoneInfo) -> datetime | None:
    """UTC instant of a naive local wall time (first occurrence if ambiguous); None inside a DST gap."""
    instant = local_wall_time.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local_wall_time:
        return None  # the wall clock jumped over this time
    return instant


def _minute_of_day_on(day: date, minute_of_day: int) -> datetime:
    return datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60))


def _local_date(instant: datetime, tz: ZoneInfo) -> date:
    try:
        return instant.astimezone(tz).date()
    except OverflowError:  # within a day of datetime.min/max; the cron year range clamps it anyway
        return instant.date()


def _shifted(instant: datetime, delta: timedelta) -> datetime:
    try:
        return instant + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=UTC)


@dataclass(frozen=True)
class CronExpression(ScheduleExpression):
    """cron(minutes hours day-of-month month day-of-week year), evaluated in local time."""

    minutes_of_day: tuple[int, ...] = field(compare=False, repr=False)  # sorted hour * 60 + minute
    months: tuple[int, ...] = field(compare=False, repr=False)
    years: frozenset[int] = field(compare=False, repr=False)
    # Exactly one of day-of-month / day-of-week is '?'; the other one decides which days match.
    day_rule: _DayOfMonthRule | _DayOfWeekRule = field(compare=False, repr=False)

    @classmethod
    def from_body(cls, text: str, body: str) -> CronExpression:
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleExpressionError(
                f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
            )
        minutes_text, hours_text, day_of_month_text, month_text, day_of_week_text, year_text = fields
        minutes = _parse_plain_field(_MINUTES, minutes_text)
        hours = _parse_plain_field(_HOURS, hours_text)
        months = _parse_plain_field(_MONTH, month_text)
        years = _parse_plain_field(_YEAR, year_text)
        day_rule: _DayOfMonthRule | _DayOfWeekRule
        if (day_of_month_text == "?") == (day_of_week_text == "?"):
            raise ScheduleExpressionError(
                f"cron day-of-month field {day_of_month_text!r} and day-of-week field {day_of_week_text!r}: "
                "exactly one of them must be '?'"
            )
        if day_of_week_text == "?":
            day_rule = _parse_day_of_month(day_of_month_text)
        else:
            day_rule = _parse_day_of_week(day_of_week_text)
        minutes_of_day = tuple(hour * 60 + minute for hour in hours for minute in minutes)
        return cls(text, minutes_of_day, months, frozenset(years), day_rule)

    def _days_in_month(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, days_in_month = calendar.monthrange(year, month)
        return self.day_rule.days_in(first_weekday, days_in_month)

    def _days_descending(self, newest: date, oldest: date) -> Iterator[date]:
        newest, oldest = min(newest, _LAST_DAY), max(oldest, _FIRST_DAY)
        for year in range(newest.year, oldest.year - 1, -1):
            if year not in self.years:
                continue
            for month in reversed(self.months):
                if (year, month) > (newest.year, newest.month):
                    continue
                if (year, month) < (oldest.year, oldest.month):
                    return
                for day in reversed(self._days_in_month(year, month)):
                    candidate = date(year, month, day)
                    if candidate > newest:
                        continue
                    if candidate < oldest:
                        return
                    yield candidate

    def _days_ascending(self, oldest: date, newest: date) -> Iterator[date]:
        newest, oldest = min(newest, _LAST_DAY), max(oldest, _FIRST_DAY)
        for year in range(oldest.year, newest.year + 1):
            if year not in self.years:
                continue
            for month in self.months:
                if (year, month) < (oldest.year, oldest.month):
                    continue
                if (year, month) > (newest.year, newest.month):
                    return
                for day in self._days_in_month(year, month):
                    candidate = date(year, month, day)
                    if candidate < oldest:
                        continue
                    if candidate > newest:
                        return
                    yield candidate

    def _latest_on(self, day: date, tz: ZoneInfo, limit: datetime) -> datetime | None:
        minutes = self.minutes_of_day
        opening, closing = _day_offsets(day, tz)
        wall_midnight = datetime.combine(day, time(0, 0), tzinfo=UTC)  # local wall clock read as UTC
        # No wall minute past this bound can be at or before `limit`, whichever offset applies to it.
        stop = bisect_right(minutes, (limit + max(opening, closing) - wall_midnight) // _MINUTE)
        if opening == closing:
            return wall_midnight - opening + minutes[stop - 1] * _MINUTE if stop else None
        # A DST transition day: convert each candidate; wall order equals instant order once gaps are dropped.
        for index in range(stop - 1, -1, -1):
            instant = _existing_instant(_minute_of_day_on(day, minutes[index]), tz)
            if instant is not None and instant <= limit:
                return instant
        return None

    def _next_on(self, day: date, tz: ZoneInfo, after: datetime) -> datetime | None:
        minutes = self.minutes_of_day
        opening, closing = _day_offsets(day, tz)
        wall_midnight = datetime.combine(day, time(0, 0), tzinfo=UTC)
        # No wall minute up to this bound can be after `after`, whichever offset applies to it.
        start = bisect_right(minutes, (after + min(opening, closing) - wall_midnight) // _MINUTE)
        if opening == closing:
            return wall_midnight - opening + minutes[start] * _MINUTE if start < len(minutes) else None
        for index in range(start, len(minutes)):
            instant = _existing_instant(_minute_of_day_on(day, minutes[index]), tz)
            if instant is not None and instant > after:
                return instant
        return None

    def _latest(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None:
        oldest_allowed = _shifted(moment, -HORIZON)
        for day in self._days_descending(_local_date(moment, tz), _local_date(oldest_allowed, tz)):
            fire = self._latest_on(day, tz, moment)
            if fire is not None:
                return fire if fire >= oldest_allowed else None
        return None

    def _next(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None:
        newest_allowed = _shifted(moment, HORIZON)
        for day in self._days_ascending(_local_date(moment, tz), _local_date(newest_allowed, tz)):
            fire = self._next_on(day, tz, moment)
            if fire is not None:
                return fire if fire <= newest_allowed else None
        return None


# --------------------------------------------------------------------------------------------- rate


@dataclass(frozen=True)
class RateExpression(ScheduleExpression):
    """rate(value unit): fires at anchor + k * period, k >= 0 (default anchor: 1970-01-01 local midnight)."""

    period: timedelta = field(compare=False, repr=False)

    @classmethod
    def from_body(cls, text: str, body: str) -> RateExpression:
        parts = body.split()
        if len(parts) != 2:
            raise ScheduleExpressionError(f"rate needs 'value unit', e.g. rate(5 minutes); got {body!r}")
        value_text, unit = parts
        if not _DIGITS.fullmatch(value_text) or int(value_text) < 1:
            raise ScheduleExpressionError(f"rate value {value_text!r} must be a positive integer")
        value = int(value_text)
        singular = unit.lower().removesuffix("s")
        if singular not in _RATE_UNITS:
            raise ScheduleExpressionError(f"rate unit {unit!r} is not one of minute(s), hour(s), day(s)")
        # AWS: value 1 takes the singular unit, anything larger the plural one.
        if value == 1 and unit.lower() != singular:
            raise ScheduleExpressionError(f"rate unit {unit!r} must be singular ({singular!r}) for value 1")
        if value > 1 and unit.lower() == singular:
            raise ScheduleExpressionError(
                f"rate unit {unit!r} must be plural ({singular + 's'!r}) when the value is {value}"
            )
        return cls(text, timedelta(seconds=value * _RATE_UNITS[singular]))

    @staticmethod
    def _first_fire(tz: ZoneInfo, anchor: datetime | None) -> datetime:
        if anchor is not None:
            return anchor
        return datetime(1970, 1, 1, tzinfo=tz).astimezone(UTC)

    def _latest(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None:
        first = self._first_fire(tz, anchor)
        if moment < first:
            return None
        fire = first + (moment - first) // self.period * self.period
        return fire if fire >= _shifted(moment, -HORIZON) else None

    def _next(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None:
        first = self._first_fire(tz, anchor)
        newest_allowed = _shifted(moment, HORIZON)
        if moment < first:
            return first if first <= newest_allowed else None
        steps = (moment - first) // self.period + 1
        if (newest_allowed - first) // self.period < steps:  # also keeps the sum below datetime.max
            return None
        return first + steps * self.period


# ----------------------------------------------------------------------------------------------- at


@dataclass(frozen=True)
class AtExpression(ScheduleExpression):
    """at(yyyy-mm-ddThh:mm:ss): one fire at that local wall time."""

    local_time: datetime = field(compare=False, repr=False)  # naive wall-clock time

    @classmethod
    def from_body(cls, text: str, body: str) -> AtExpression:
        match = _AT_TIMESTAMP.fullmatch(body.strip())
        if match is None:
            raise ScheduleExpressionError(f"at timestamp {body!r} is not yyyy-mm-ddThh:mm:ss")
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            local_time = datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise ScheduleExpressionError(f"at timestamp {body!r}: {exc}") from exc
        return cls(text, local_time)

    def _latest(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None:
        fire = _existing_instant(self.local_time, tz)
        if fire is None or fire > moment or fire < _shifted(moment, -HORIZON):
            return None
        return fire

    def _next(self, moment: datetime, tz: ZoneInfo, anchor: datetime | None) -> datetime | None:
        fire = _existing_instant(self.local_time, tz)
        if fire is None or fire <= moment or fire > _shifted(moment, HORIZON):
            return None
        return fire


# ------------------------------------------------------------------------------------------ helpers


def _as_utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _optional_utc(anchor: datetime | None) -> datetime | None:
    return None if anchor is None else _as_utc(anchor, "anchor")
