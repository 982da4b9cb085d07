"""The report page's charts: which CloudWatch series each overlays and in what unit, the summary table of
each series, the ramp and decision markers (from the execution's timeline, on the clock the test ran on)
and the vendored uPlot that draws them in the browser (inlined: the page fetches nothing)."""

# No `from __future__ import annotations` here: NamedTuple would compile each string annotation at import.
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Literal, NamedTuple

from shadowscale.shadow_tests.models import ChartSeries, ShadowTestReport, TimelineEntry

# The values below are NamedTuples, not dataclasses: the report Lambda's cold start pays for each class
# built at import, and a frozen dataclass costs several times as much to build.
Role = Literal["production", "shadow"]
MarkerKind = Literal["sampling", "ramp", "decision"]


class ChartSpec(NamedTuple):
    metric: str  # ChartSeries.metric, as variant_metrics names it
    title: str
    unit: str
    # Published only on some instance types (GPU): charted only when a variant published it.
    optional: bool = False
    # A count per period: its unit names the period, read from the series.
    per_period: bool = False


# What SageMaker's shadow-test page overlays for production and shadow, in its order.
CHART_SPECS: tuple[ChartSpec, ...] = (
    ChartSpec("latencyP50Ms", "ModelLatency p50", "ms"),
    ChartSpec("latencyP90Ms", "ModelLatency p90", "ms"),
    ChartSpec("latencyP99Ms", "ModelLatency p99", "ms"),
    ChartSpec("overheadMs", "OverheadLatency (average)", "ms"),
    ChartSpec("invocations", "Invocations", "requests", per_period=True),
    ChartSpec("errors4xx", "Invocation4XXErrors", "errors", per_period=True),
    ChartSpec("errors5xx", "Invocation5XXErrors", "errors", per_period=True),
    ChartSpec("modelErrors", "InvocationModelErrors (ModelError)", "errors", per_period=True),
    ChartSpec("cpuPercent", "CPUUtilization", "%"),
    ChartSpec("memoryPercent", "MemoryUtilization", "%"),
    ChartSpec("diskPercent", "DiskUtilization", "%"),
    ChartSpec("gpuPercent", "GPUUtilization", "%", optional=True),
    ChartSpec("gpuMemoryPercent", "GPUMemoryUtilization", "%", optional=True),
)
VENDOR = "vendor/uplot"


class SeriesSummary(NamedTuple):
    """One series over the test, as SageMaker's page tabulates it."""

    minimum: float
    average: float
    maximum: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "SeriesSummary | None":
        if not values:
            return None
        ordered = sorted(values)
        return cls(
            minimum=ordered[0],
            average=sum(ordered) / len(ordered),
            maximum=ordered[-1],
            p50=nearest_rank(ordered, 50),
            p90=nearest_rank(ordered, 90),
            p99=nearest_rank(ordered, 99),
        )


def nearest_rank(ordered: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of sorted values (CloudWatch's definition for its own percentiles)."""
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


class Line(NamedTuple):
    role: Role
    variant: str
    series: ChartSeries

    @property
    def label(self) -> str:
        return f"{self.role} ({self.variant})"

    @property
    def summary(self) -> SeriesSummary | None:
        return SeriesSummary.of([point.value for point in self.series.points])


class Chart(NamedTuple):
    spec: ChartSpec
    unit: str
    lines: tuple[Line, ...]

    @property
    def dom_id(self) -> str:
        return f"chart-{self.spec.metric}"

    @property
    def has_points(self) -> bool:
        return any(line.series.points for line in self.lines)


class Marker(NamedTuple):
    at: datetime
    kind: MarkerKind
    label: str


def when(moment: datetime) -> str:
    """One way to write a time everywhere on the page: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def offset(moment: datetime, start: datetime | None) -> str:
    """T+h:mm:ss from the test's start (T-... for what came before it)."""
    if start is None:
        return ""
    seconds = round((moment - start).total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, rest = divmod(abs(seconds), 3600)
    return f"T{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"


def period_seconds(charts: Sequence[ChartSeries]) -> int | None:
    """The period the series were fetched at (one for all): the smallest gap between consecutive points."""
    gaps = [
        gap
        for series in charts
        for earlier, later in zip(series.points[:2], series.points[1:3], strict=False)
        if (gap := (later.at - earlier.at).total_seconds()) > 0
    ]
    return int(min(gaps)) if gaps else None


def _per(seconds: int | None) -> str:
    if seconds is None:
        return "period"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def charts_of(report: ShadowTestReport, production: str | None, shadow: str | None) -> tuple[Chart, ...]:
    """Every chart the page shows, production first; an optional metric only when a variant published it."""
    period = _per(period_seconds(report.charts))
    charts = []
    roles: tuple[tuple[Role, str | None], ...] = (("production", production), ("shadow", shadow))
    for spec in CHART_SPECS:
        lines = tuple(
            Line(role, variant, series)
            for role, variant in roles
            if variant is not None
            for series in report.charts
            if series.metric == spec.metric and series.variant == variant
        )
        unit = f"{spec.unit} / {period}" if spec.per_period else spec.unit
        chart = Chart(spec, unit, lines)
        if spec.optional and not chart.has_points:
            continue
        charts.append(chart)
    return tuple(charts)


def markers_of(timeline: Sequence[TimelineEntry], sampling_percents: Sequence[float]) -> tuple[Marker, ...]:
    """Where the shadow started sampling, each ramp step, and the decision, at the history's own times."""
    found: list[Marker] = []
    first_bake = next((entry for entry in timeline if entry.state == "Bake"), None)
    if first_bake is not None and sampling_percents:
        found.append(Marker(first_bake.at, "sampling", f"shadow sampling {sampling_percents[0]:g} %"))
    ramps = [entry for entry in timeline if entry.state == "Ramp" and entry.event == "entered"]
    for step, entry in enumerate(ramps[: max(0, len(sampling_percents) - 1)], start=1):
        before, after = sampling_percents[step - 1], sampling_percents[step]
        found.append(Marker(entry.at, "ramp", f"ramp {before:g} % → {after:g} %"))
    decided = next((entry for entry in timeline if entry.state == "Decide"), None)
    if decided is None:  # a hard limit ends the test without a Decide state: its restore is the decision
        decided = next((entry for entry in timeline if entry.state in {"Promote", "Restore"}), None)
    if decided is not None:
        found.append(Marker(decided.at, "decision", "decision"))
    return tuple(found)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def chart_data(
    charts: Sequence[Chart], markers: Sequence[Marker], start: datetime | None, end: datetime
) -> dict[str, object]:
    """What the page's script draws: one shared x (epoch seconds) per chart, None where a line has no point."""
    drawn: list[dict[str, object]] = []
    times = [_epoch(marker.at) for marker in markers]
    for chart in charts:
        if not chart.has_points:
            continue
        # datetime.timestamp() dominates the render: once per point.
        by_line = [{_epoch(point.at): point.value for point in line.series.points} for line in chart.lines]
        xs = sorted(set().union(*by_line))
        times += xs
        columns = [
            {"label": line.label, "role": line.role, "values": [by_time.get(x) for x in xs]}
            for line, by_time in zip(chart.lines, by_line, strict=True)
        ]
        drawn.append({"id": chart.dom_id, "title": chart.spec.title, "unit": chart.unit, "x": xs, "series": columns})
    if start is not None:
        times.append(_epoch(start))
    first = min(times, default=_epoch(end))
    return {
        # The day is named once on the axis: the ticks are hours and minutes on the test's clock.
        "timeAxis": f"time (UTC, the clock the test ran on; {datetime.fromtimestamp(first, UTC):%Y-%m-%d})",
        "start": first,
        "end": max([*times, _epoch(end)]),
        "markers": [{"at": _epoch(marker.at), "kind": marker.kind, "label": marker.label} for marker in markers],
        "charts": drawn,
    }


def json_for_script(document: object) -> str:
    """JSON safe inside <script type="application/json">: no "</script>" or "<!--" can end it early."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


@cache
def uplot_assets() -> tuple[str, str]:
    """(script, stylesheet) of the vendored uPlot; read once per container, not at import."""
    folder = resources.files("shadowscale.shadow_tests").joinpath(VENDOR)
    return (
        folder.joinpath("uPlot.iife.min.js").read_text(encoding="utf-8"),
        folder.joinpath("uPlot.min.css").read_text(encoding="utf-8"),
    )


# Draws every chart from the page's JSON: time axes in UTC (the cloud's clock the test ran on, never the
# reader's time zone), units on the axes and in the legend, and the markers as vertical lines.
CHART_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("shadowscale-data").textContent);
  var colours = { production: "#1f77b4", shadow: "#d62728" };
  var markerColours = { sampling: "#7f7f7f", ramp: "#9467bd", decision: "#2ca02c" };
  var utc = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
  var hhmm = uPlot.fmtDate("{HH}:{mm}");
  var timeTicks = function (u, splits) { return splits.map(function (s) { return hhmm(utc(s)); }); };
  var fmt = function (unit) {
    return function (u, v) { return v == null ? "-" : (+v.toPrecision(4)).toLocaleString("en") + " " + unit; };
  };
  function markerPlugin(markers) {
    return { hooks: { draw: [function (u) {
      var ctx = u.ctx, px = uPlot.pxRatio, drawn = 0;
      ctx.save();
      markers.forEach(function (m, i) {
        var x = Math.round(u.valToPos(m.at, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
        ctx.strokeStyle = ctx.fillStyle = markerColours[m.kind];
        ctx.lineWidth = 2 * px;
        ctx.setLineDash(m.kind === "decision" ? [] : [6 * px, 4 * px]);
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.font = (11 * px) + "px system-ui, sans-serif";
        ctx.textAlign = "left";
        ctx.textBaseline = "alphabetic";
        ctx.fillText(m.label, x + 4 * px, u.bbox.top + (12 + 13 * (i % 3)) * px);
        drawn += 1;
      });
      ctx.restore();
      u.root.parentNode.dataset.markers = String(drawn);
    }] } };
  }
  var xRange = function () { return [data.start, data.end]; };
  window.shadowscaleCharts = [];
  data.charts.forEach(function (chart) {
    var holder = document.getElementById(chart.id);
    var opts = {
      width: 620, height: 260, tzDate: utc, plugins: [markerPlugin(data.markers)],
      scales: { x: { time: true, range: xRange } },
      series: [{ label: "time (UTC)", value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss} UTC" }].concat(
        chart.series.map(function (s) {
          return { label: s.label, stroke: colours[s.role], width: 2, spanGaps: true, value: fmt(chart.unit) };
        })),
      axes: [{ label: data.timeAxis, values: timeTicks }, { label: chart.unit, size: 70 }]
    };
    var plot = new uPlot(opts, [chart.x].concat(chart.series.map(function (s) { return s.values; })), holder);
    window.shadowscaleCharts.push(plot);
    holder.dataset.rendered = "true";
  });
  (data.histograms || []).forEach(function (h) {
    var holder = document.getElementById(h.id);
    var xs = h.labels.map(function (_, i) { return i; });
    var opts = {
      width: 620, height: 240, scales: { x: { time: false, range: [-0.5, xs.length - 0.5] } },
      series: [
        { label: h.xLabel, value: function (u, i) { return i == null ? "-" : h.labels[i]; } },
        { label: h.yLabel, fill: "rgba(31,119,180,.5)", stroke: "#1f77b4", paths: uPlot.paths.bars({ size: [0.9, 60] }),
          points: { show: false }, value: fmt(h.yLabel) }
      ],
      axes: [
        { label: h.xLabel, values: function (u, splits) {
          return splits.map(function (i) { return Number.isInteger(i) && h.labels[i] ? h.labels[i] : ""; });
        }, incrs: [1, 2, 4, 8], space: 56, size: 50 },
        { label: h.yLabel, size: 60 }
      ]
    };
    window.shadowscaleCharts.push(new uPlot(opts, [xs, h.counts], holder));
    holder.dataset.rendered = "true";
  });
})();
"""
