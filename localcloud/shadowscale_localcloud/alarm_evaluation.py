"""CloudWatch metric alarms evaluated on the local cloud's clock. Targets moto==5.2.5.

moto stores alarms and metric data but never evaluates an alarm. `AlarmEvaluator.evaluate()` does, as
CloudWatch does (User Guide, "Configuring how CloudWatch alarms treat missing data"):
- the datapoints are the alarm's statistic (`Statistic` or `ExtendedStatistic`) per `Period`, over the
  metric with exactly the alarm's dimensions (and `Unit`, when the alarm names one); periods are aligned
  to the epoch and only complete ones count;
- the evaluation range is the `EvaluationPeriods` (N) most recent periods and 2 before them (the User
  Guide's example: N = 3, range 5);
- with at least N real datapoints in the range, the N most recent real ones are evaluated and
  `TreatMissingData` is not consulted; with fewer, the shortfall is filled as `TreatMissingData` says
  (`breaching`, `notBreaching`; `missing`: all missing → INSUFFICIENT_DATA; `ignore`: keep the state),
  with the "premature alarm" rule: breaching datapoints only, the oldest at least M periods old → ALARM;
- ALARM when at least `DatapointsToAlarm` (M, default N) evaluated datapoints breach, else OK;
- alarms on `AWS/DynamoDB` metrics always ignore missing data, as CloudWatch documents.
A change of state goes through moto's `set_alarm_state` with CloudWatch's reason text and reasonData
JSON, so the local cloud's hook delivers it (alarm actions, EventBridge) exactly as for SetAlarmState.
Metric math, composite and anomaly-detection alarms are left alone.
"""

from __future__ import annotations

import bisect
import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shadowscale_localcloud.cloudwatch_gaps import PERCENTILE, nearest_rank
from shadowscale_localcloud.resources import ACCOUNT, REGION

AlarmStateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
MissingData = Literal["missing", "ignore", "breaching", "notBreaching"]
EXTRA_PERIODS_IN_RANGE = 2

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}


@dataclass(frozen=True)
class Datapoint:
    """One period of the alarm's metric: `value` None when CloudWatch has no data for it."""

    start: datetime
    value: float | None = None
    sample_count: float = 0.0


@dataclass(frozen=True)
class Verdict:
    state: AlarmStateValue | None  # None: keep the current state
    evaluated: tuple[Datapoint, ...]  # newest first; filled datapoints have no value
    breaching: int
    filled: int
    filled_as: MissingData | None = None


def decide(
    points: Sequence[Datapoint],
    *,
    evaluation_periods: int,
    datapoints_to_alarm: int,
    treat_missing_data: MissingData,
    breaches: Callable[[float], bool],
) -> Verdict:
    """The state CloudWatch's rules give the evaluation range `points` (oldest first)."""
    newest_first = list(reversed(points))
    real = [point for point in newest_first if point.value is not None]
    n, m = evaluation_periods, datapoints_to_alarm

    def is_breaching(point: Datapoint) -> bool:
        return point.value is not None and breaches(point.value)

    if len(real) >= n:
        evaluated = tuple(real[:n])
        breaching = sum(map(is_breaching, evaluated))
        return Verdict("ALARM" if breaching >= m else "OK", evaluated, breaching, 0)
    shortfall = n - len(real)
    missing_slots = [point for point in newest_first if point.value is None]
    filled = tuple(Datapoint(point.start) for point in missing_slots[:shortfall])
    evaluated = tuple(sorted((*real, *filled), key=lambda point: point.start, reverse=True))
    if not real:
        return _nothing_received(evaluated, shortfall, treat_missing_data)
    breaching = sum(map(is_breaching, real))
    verdict = Verdict("OK", evaluated, breaching, shortfall, treat_missing_data)
    if treat_missing_data == "breaching":
        total = breaching + shortfall
        return replace(verdict, state="ALARM" if total >= m else "OK", breaching=total)
    if breaching >= m:
        return replace(verdict, state="ALARM")
    only_breaching = breaching == len(real)
    if treat_missing_data == "ignore":
        return replace(verdict, state=None if only_breaching else "OK")
    if treat_missing_data == "missing" and only_breaching and _premature_alarm(newest_first[:n], m, is_breaching):
        return replace(verdict, state="ALARM")
    return verdict


def _premature_alarm(recent: Sequence[Datapoint], m: int, is_breaching: Callable[[Datapoint], bool]) -> bool:
    """ "Premature alarm": within the N most recent periods (`recent`, newest first) the oldest breaching
    datapoint is at least M periods old (everything newer being breaching or missing)."""
    breaching_ages = [age for age, point in enumerate(recent, start=1) if is_breaching(point)]
    return bool(breaching_ages) and max(breaching_ages) >= m


def _nothing_received(evaluated: tuple[Datapoint, ...], shortfall: int, treatment: MissingData) -> Verdict:
    """No real datapoint in the range: the state is TreatMissingData's alone."""
    state: AlarmStateValue | None = {
        "missing": "INSUFFICIENT_DATA",
        "ignore": None,
        "breaching": "ALARM",
        "notBreaching": "OK",
    }[treatment]
    filled_breaching = shortfall if treatment == "breaching" else 0
    return Verdict(state, evaluated, filled_breaching, shortfall, treatment)


# --- reading moto's metric data ---------------------------------------------------------------

SeriesKey = tuple[str, str, frozenset[tuple[str, str]]]


def _naive_utc(moment: datetime) -> datetime:
    """moto keeps metric timestamps as naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@dataclass
class MetricIndex:
    """moto's metric data by series and time, brought up to date incrementally (moto only appends)."""

    _seen: int = 0
    _source: Any = None
    _times: dict[SeriesKey, list[datetime]] = field(default_factory=dict)
    _data: dict[SeriesKey, list[Any]] = field(default_factory=dict)

    def refresh(self, metric_data: list[Any]) -> None:
        if metric_data is not self._source or len(metric_data) < self._seen:  # a reset backend
            self._source, self._seen, self._times, self._data = metric_data, 0, {}, {}
        for datum in metric_data[self._seen :]:
            key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            times = self._times.setdefault(key, [])
            data = self._data.setdefault(key, [])
            stamp = _naive_utc(datum.timestamp)
            position = bisect.bisect_right(times, stamp)
            times.insert(position, stamp)
            data.insert(position, datum)
        self._seen = len(metric_data)

    def between(self, key: SeriesKey, start: datetime, end: datetime) -> list[Any]:
        times = self._times.get(key)
        if not times:
            return []
        data = self._data[key]
        return data[bisect.bisect_left(times, _naive_utc(start)) : bisect.bisect_left(times, _naive_utc(end))]


def period_statistic(alarm: Any, data: list[Any], start: datetime) -> Datapoint:  # noqa: ANN401
    """The alarm's statistic over one period's datums, as GetMetricData computes it."""
    from moto.cloudwatch.models import Statistics

    if alarm.unit:
        data = [datum for datum in data if datum.unit == alarm.unit]
    if not data:
        return Datapoint(start)
    stat = alarm.extended_statistic or alarm.statistic
    statistics = Statistics([stat, "SampleCount"], start)
    statistics.metric_data = data
    sample_count = float(statistics.calc_sample_count())
    match = PERCENTILE.match(stat)
    if match is None:
        value = statistics.get_statistics_for_type(stat)
        return Datapoint(start, None if value is None else float(value), sample_count)
    values = statistics.metric_single_values_list
    if not values:  # percentiles need individual values; StatisticValues sets have none
        return Datapoint(start)
    percentile = float(match.group(1))
    if alarm.evaluate_low_sample_count_percentile == "ignore" and len(values) < _enough_samples(percentile):
        return Datapoint(start)
    return Datapoint(start, nearest_rank(values, percentile), sample_count)


def _enough_samples(percentile: float) -> float:
    """Fewer samples than this are "too few" for a percentile alarm (10/(1-p) above p50, 10/p below)."""
    share = percentile / 100
    if share >= 0.5:
        return math.inf if share >= 1 else 10 / (1 - share)
    return 10 / share if share > 0 else math.inf


# --- the evaluator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    alarm: str
    at: datetime
    previous: str
    state: str
    verdict: Verdict


@dataclass
class AlarmEvaluator:
    """Evaluates every metric alarm in moto's CloudWatch at `now`; changes go through set_alarm_state."""

    account: str = ACCOUNT
    region: str = REGION
    index: MetricIndex = field(default_factory=MetricIndex)
    changes: list[Evaluation] = field(default_factory=list)

    def evaluate(self, now: datetime) -> list[Evaluation]:
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[self.account][self.region]
        self.index.refresh(backend.metric_data)
        changed = []
        for alarm in list(backend.alarms.values()):
            evaluation = self._evaluate(backend, alarm, now)
            if evaluation is not None:
                changed.append(evaluation)
        self.changes.extend(changed)
        return changed

    def _evaluate(self, backend: Any, alarm: Any, now: datetime) -> Evaluation | None:  # noqa: ANN401
        if alarm.rule or alarm.metric_data_queries or not alarm.metric_name:
            return None  # composite and metric-math alarms
        comparison = COMPARISONS.get(alarm.comparison_operator)
        if comparison is None or not (alarm.statistic or alarm.extended_statistic):
            return None  # anomaly-detection bands
        compare, _ = comparison
        period = timedelta(seconds=int(alarm.period))
        newest_end = _period_floor(now, int(alarm.period))
        n = int(alarm.evaluation_periods)
        key = (alarm.namespace, alarm.metric_name, frozenset((d.name, d.value) for d in alarm.dimensions))
        points = []
        for back in range(n + EXTRA_PERIODS_IN_RANGE, 0, -1):
            start = newest_end - back * period
            points.append(period_statistic(alarm, self.index.between(key, start, start + period), start))
        treatment: MissingData = alarm.treat_missing_data or "missing"
        if alarm.namespace == "AWS/DynamoDB":
            treatment = "ignore"
        threshold = float(alarm.threshold)
        verdict = decide(
            points,
            evaluation_periods=n,
            datapoints_to_alarm=int(alarm.datapoints_to_alarm or n),
            treat_missing_data=treatment,
            breaches=lambda value: compare(value, threshold),
        )
        if verdict.state is None or verdict.state == alarm.state_value:
            return None
        previous = alarm.state_value
        backend.set_alarm_state(
            alarm.name, _reason(alarm, verdict, previous), json.dumps(_reason_data(alarm, verdict, now)), verdict.state
        )
        return Evaluation(alarm.name, now, previous, verdict.state, verdict)


def _period_floor(moment: datetime, period_seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % period_seconds, tz=UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _reason(alarm: Any, verdict: Verdict, previous: str) -> str:  # noqa: ANN401
    """CloudWatch's wording, e.g. "Threshold Crossed: 1 out of the last 1 datapoints [1051.0 (16/07/24
    13:13:00)] was greater than the threshold (12.0) (minimum 1 datapoint for OK -> ALARM transition)."."""
    n = len(verdict.evaluated)
    if verdict.state == "INSUFFICIENT_DATA":
        return f"Insufficient Data: {n} datapoint{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} unknown."
    _, phrase = COMPARISONS[alarm.comparison_operator]
    real = [point for point in verdict.evaluated if point.value is not None]
    if not real:
        treated = "Breaching" if verdict.filled_as == "breaching" else "NonBreaching"
        return (
            f"Threshold Crossed: no datapoints were received for {n} period{'s' if n != 1 else ''} and {n} missing "
            f"datapoint{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} treated as [{treated}]."
        )
    m = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    listed = ", ".join(f"{point.value!r} ({point.start.astimezone(UTC):%d/%m/%y %H:%M:%S})" for point in real)
    if verdict.state == "ALARM":
        count, negation, minimum = verdict.breaching, "", m
    else:
        count, negation, minimum = n - verdict.breaching, "not ", n - m + 1
    return (
        f"Threshold Crossed: {count} out of the last {n} datapoints [{listed}] {'were' if count != 1 else 'was'} "
        f"{negation}{phrase} the threshold ({float(alarm.threshold)!r}) (minimum {minimum} "
        f"datapoint{'s' if minimum != 1 else ''} for {previous} -> {verdict.state} transition)."
    )


def _reason_data(alarm: Any, verdict: Verdict, now: datetime) -> dict[str, Any]:  # noqa: ANN401
    """The JSON CloudWatch puts in StateReasonData: recentDatapoints oldest first, evaluatedDatapoints
    newest first (only those that decided the state)."""
    real = [point for point in verdict.evaluated if point.value is not None]
    data: dict[str, Any] = {"version": "1.0", "queryDate": _stamp(now)}
    if verdict.evaluated:
        data["startDate"] = _stamp(min(point.start for point in verdict.evaluated))
    if alarm.unit:
        data["unit"] = alarm.unit
    # Percentile alarms: the key CloudWatch uses is not documented; the percentile goes under "statistic".
    data["statistic"] = alarm.extended_statistic or alarm.statistic
    data["period"] = int(alarm.period)
    data["recentDatapoints"] = [point.value for point in reversed(real)]
    data["threshold"] = float(alarm.threshold)
    data["evaluatedDatapoints"] = [_evaluated_datapoint(point) for point in _deciding(alarm, verdict, real)]
    return data


def _deciding(alarm: Any, verdict: Verdict, real: Sequence[Datapoint]) -> list[Datapoint]:  # noqa: ANN401
    """The evaluated datapoints that decided the state: the breaching ones that made an ALARM (M of them),
    the non-breaching ones that made an OK (N - M + 1), all of them when nothing real was received."""
    if verdict.state == "INSUFFICIENT_DATA" or not real:
        return list(verdict.evaluated)
    compare, _ = COMPARISONS[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    m = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    alarming = verdict.state == "ALARM"
    deciding = [p for p in verdict.evaluated if p.value is None or compare(p.value, threshold) == alarming]
    return deciding[:m] if alarming else deciding[: len(verdict.evaluated) - m + 1]


def _evaluated_datapoint(point: Datapoint) -> dict[str, Any]:
    if point.value is None:
        return {"timestamp": _stamp(point.start)}
    return {"timestamp": _stamp(point.start), "sampleCount": point.sample_count, "value": point.value}
