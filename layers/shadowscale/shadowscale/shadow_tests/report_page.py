"""The shadow test's report as one self-contained HTML page (the vendored uPlot, its stylesheet and the
report's data inlined; nothing is fetched), and the short text that goes out by SNS.

Every time on the page is on one clock: the one the test ran on (the metrics' and the execution history's
timestamps), in UTC, with the offset from the test's start. The renderer never reads the time."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from html import escape
from itertools import pairwise

from shadowscale.shadow_tests import report_noise
from shadowscale.shadow_tests.models import Evaluation, ShadowTestReport
from shadowscale.shadow_tests.report_charts import (
    CHART_SCRIPT,
    Chart,
    Marker,
    chart_data,
    charts_of,
    json_for_script,
    markers_of,
    offset,
    uplot_assets,
    when,
)
from shadowscale.shadow_tests.report_diffs import (
    counts_table,
    distribution_table,
    fields_table,
    histograms,
    rates_table,
    samples_html,
)
from shadowscale.shadow_tests.report_gates import interval_text, number
from shadowscale.shadow_tests.report_spend import spend_section

_OUTCOME_COLOURS = {
    "promoted": "#2ca02c",
    "dry-run": "#7f7f7f",
    "report-only": "#7f7f7f",
    "awaiting-approval": "#1f77b4",
}
# SNS Publish: a subject must be shorter than 100 characters, with no line breaks or control characters;
# ASCII satisfies both readings of the API reference (older revisions say ASCII, newer ones UTF-8).
SNS_SUBJECT_MAX = 99
_ELLIPSIS = "..."
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1320px;padding:0 1rem;color:#222}
.badge{display:inline-block;padding:.2rem .6rem;border-radius:4px;color:#fff}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.fail td{background:#fde0e0} tr.pass td{background:#e3f6e3} tr.insufficient-data td{background:#fff5d6}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:1rem}
figure.chart{margin:0;padding:.5rem;border:1px solid #eee;border-radius:6px}
figure.chart figcaption{font-weight:600;margin-bottom:.25rem} table.summary{width:100%;font-size:.85rem}
.muted{color:#777} .fail{color:#b00} .clipped{color:#8a5a00;font-size:.85rem;margin:.2rem 0}
.markers span{display:inline-block;margin-right:1rem} .legend-line{display:inline-block;width:1.5rem;
border-top:2px dashed #9467bd;vertical-align:middle} .legend-line.decision{border-top:2px solid #2ca02c}
.legend-line.sampling{border-top-color:#7f7f7f}
.sample{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.side-by-side{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
pre.payload{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:.5rem;margin:0;
max-height:32rem;overflow:auto}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.25rem 0}
dl.meta dt{color:#555} dl.meta dd{margin:0}
"""


def _rows(pairs: Sequence[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>" for key, value in pairs)


def _summary(report: ShadowTestReport) -> list[tuple[str, object]]:
    summary: list[tuple[str, object]] = [
        ("Endpoint", report.endpoint),
        ("Outcome", report.outcome),
        ("Verdict", report.verdict or "-"),
        ("Reason", report.reason),
        ("Started", when(report.started_at) if report.started_at else "-"),
        ("Finished", f"{when(report.finished_at)} ({offset(report.finished_at, report.started_at) or '-'})"),
        ("Final endpoint config", report.final_config_name or "-"),
        ("Execution", report.execution_arn),
    ]
    if report.sampling_percents:
        summary.append(("Sampling", " → ".join(f"{percent:g} %" for percent in report.sampling_percents)))
    if report.candidate:
        summary.append(("Candidate", json.dumps(report.candidate, sort_keys=True)))
    guarded = (report.planned or {}).get("guardedPromotion")
    if isinstance(guarded, dict):  # a dry run of a guarded promotion: what UpdateEndpoint would be sent
        summary.append(("Promotion DeploymentConfig", json.dumps(guarded.get("DeploymentConfig"), sort_keys=True)))
    if report.approval:
        summary.append(
            ("Approval", f"{'approved' if report.approval.approved else 'rejected'} by {report.approval.by}")
        )
    if report.failure:
        summary.append(("Failure", f"{report.failure.get('error', '')}: {report.failure.get('cause', '')}"))
    return summary


def _gates(evaluation: Evaluation | None, start: datetime | None) -> str:
    if evaluation is None:
        return ""
    gate_rows = "".join(
        f"<tr class='{escape(gate.status)}'><td>{escape(gate.name)}</td><td>{escape(gate.status)}</td>"
        f"<td class='num'>{escape(interval_text(gate))}</td><td class='num'>{number(gate.threshold)}</td>"
        f"<td>{escape(gate.detail)}</td></tr>"
        for gate in evaluation.gates
    )
    gates = (
        f"<h2>Gates (window from {escape(when(evaluation.window_start))}, step {evaluation.step_index + 1},"
        f" evaluated at {escape(when(evaluation.at))} {escape(offset(evaluation.at, start))})</h2>"
        "<table><tr><th>gate</th><th>status</th><th>estimate [interval]</th><th>threshold</th><th>detail</th></tr>"
        f"{gate_rows}</table>"
    )
    if evaluation.hard_limit_breached:
        gates += f"<p class='fail'>Hard limit breached: {escape(evaluation.hard_limit_breached)}</p>"
    if evaluation.early_stop:
        gates += f"<p>Early stop: {escape(evaluation.early_stop)}</p>"
    return gates


def _stat(value: float, unit: str) -> str:
    return f"{value:,.4g} {escape(unit)}"


def summary_table(chart: Chart) -> str:
    """Production and shadow over the test: min, average, max and percentiles of the series, with units."""
    head = "".join(f"<th class='num'>{name}</th>" for name in ("min", "average", "max", "p50", "p90", "p99"))
    rows = []
    for line in chart.lines:
        stats = line.summary
        cells = (
            "".join(
                f"<td class='num'>{_stat(value, chart.unit)}</td>"
                for value in (stats.minimum, stats.average, stats.maximum, stats.p50, stats.p90, stats.p99)
            )
            if stats
            else "<td colspan='6' class='muted'>no datapoints</td>"
        )
        rows.append(f"<tr><th>{escape(line.label)}</th>{cells}</tr>")
    return f"<table class='summary'><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(chart: Chart) -> str:
    plot = (
        f"<div class='plot' id='{chart.dom_id}'></div>"
        if chart.has_points
        else f"<p class='muted' id='{chart.dom_id}' data-empty='true'>no datapoints</p>"
    )
    return (
        f"<figure class='chart' data-metric='{escape(chart.spec.metric)}' data-unit='{escape(chart.unit)}'>"
        f"<figcaption>{escape(chart.spec.title)} ({escape(chart.unit)})</figcaption>{plot}{summary_table(chart)}"
        "</figure>"
    )


def _marker_legend(markers: Sequence[Marker], start: datetime | None) -> str:
    if not markers:
        return "<p class='muted'>No sampling change or decision in the execution's history.</p>"
    items = "".join(
        f"<span><i class='legend-line {marker.kind}'></i> {escape(marker.label)} at {escape(when(marker.at))}"
        f" {escape(offset(marker.at, start))}</span>"
        for marker in markers
    )
    return f"<p class='markers'>{items}</p>"


def _diffs(report: ShadowTestReport, drawn: list[dict[str, object]]) -> str:
    summary = report.diff_summary
    if not summary:
        return ""
    state = report.diff_summary_state or "provisional"
    diff = f"<h2>Response diffs ({escape(state)})</h2><p>{escape(pairs_line(report) or '')}</p>"
    if report.diff_note:
        diff += f"<p class='muted'>{escape(report.diff_note)}</p>"
    diff += counts_table(summary) + rates_table(summary) + distribution_table(summary)
    figures = ""
    for histogram in histograms(summary):
        drawn.append(histogram)
        figures += (
            f"<figure class='chart histogram' data-metric='{escape(str(histogram['id']))}'>"
            f"<figcaption>Distribution of the {escape(str(histogram['title']))} (pairs; bars by power of two, 0"
            f" = equal)</figcaption><div class='plot' id='{escape(str(histogram['id']))}'></div></figure>"
        )
    if figures:
        diff += f"<div class='charts'>{figures}</div>"
    return diff + fields_table(summary) + samples_html(summary, report.diff_summary_uri)


def _longest_state(report: ShadowTestReport) -> str:
    if len(report.timeline) <= 1:
        return ""
    longest = max(pairwise(report.timeline), key=lambda pair: (pair[1].at - pair[0].at).total_seconds())
    spent = round((longest[1].at - longest[0].at).total_seconds())
    return f"<p class='muted'>Longest state: {escape(longest[0].state)} ({spent // 60} min {spent % 60} s)</p>"


def _timeline(report: ShadowTestReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(when(entry.at))}</td><td class='num'>{escape(offset(entry.at, report.started_at))}</td>"
        f"<td>{escape(entry.state)}</td><td>{escape(entry.event)}</td></tr>"
        for entry in report.timeline
    )
    return (
        f"<h2>Timeline</h2>{_longest_state(report)}"
        "<table class='timeline'><thead><tr><th>time (UTC)</th><th>since start</th><th>state</th><th>event</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def render_html(report: ShadowTestReport, production_variant: str | None, shadow_variant: str | None) -> str:
    colour = _OUTCOME_COLOURS.get(report.outcome, "#d62728" if report.outcome != "removed" else "#ff7f0e")
    charts = charts_of(report, production_variant, shadow_variant)
    markers = markers_of(report.timeline, report.sampling_percents)
    histogram_data: list[dict[str, object]] = []
    diff = _diffs(report, histogram_data)
    data = {**chart_data(charts, markers, report.started_at, report.finished_at), "histograms": histogram_data}
    script, stylesheet = uplot_assets()
    figures = "".join(_figure(chart) for chart in charts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Shadow test {escape(report.test_id)}: {escape(report.outcome)}</title>
<style>{stylesheet}</style><style>{_STYLE}.badge{{background:{colour}}}</style></head><body>
<h1>Shadow test on {escape(report.endpoint)} <span class="badge">{escape(report.outcome)}</span></h1>
<table>{_rows(_summary(report))}</table>
{_gates(report.evaluation, report.started_at)}
{report_noise.noise_section(report.evaluation)}
{spend_section(report.evaluation)}
<h2>Production vs shadow</h2>
<p class="muted">All times are UTC on the clock the test ran on (CloudWatch's and the execution history's
timestamps); T+ is the time since the test started. A point is plotted at the start of the period it
covers.</p>
{_marker_legend(markers, report.started_at)}
<div class="charts">{figures}</div>
{diff}
{_timeline(report)}
<script type="application/json" id="shadowscale-data">{json_for_script(data)}</script>
<script>{script}</script>
<script>{CHART_SCRIPT}</script>
</body></html>
"""


def sns_subject(text: str) -> str:
    """`text` as a subject SNS accepts: on one line, ASCII, at most 99 characters, cut on a word boundary
    (or mid-word when one word is most of it) with an ellipsis."""
    spaced = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Zs") else c for c in text)
    ascii_only = unicodedata.normalize("NFKD", spaced).encode("ascii", "ignore").decode("ascii")
    clean = re.sub(r" +", " ", ascii_only).strip() or "shadowscale"
    if len(clean) <= SNS_SUBJECT_MAX:
        return clean
    room = SNS_SUBJECT_MAX - len(_ELLIPSIS)
    boundary = clean.rfind(" ", 0, room + 1)
    head = clean[:boundary] if boundary > room // 2 else clean[:room]
    return head.rstrip() + _ELLIPSIS


def pairs_line(report: ShadowTestReport) -> str | None:
    """The report's pair count, said one way everywhere (notification, CLI, page). The min-paired-responses
    gate counted the summary as it was when the gate ran; when that differs, both numbers are named."""
    if report.diff_summary is None:
        return None
    paired = report.diff_summary.get("paired")
    line = f"Response diffs ({report.diff_summary_state or 'provisional'}): {paired} pairs"
    evaluation = report.evaluation
    gate = next((g for g in evaluation.gates if g.name == "min-paired-responses"), None) if evaluation else None
    if evaluation is not None and gate is not None and gate.observed is not None and gate.observed != paired:
        line += (
            f" (the min-paired-responses gate counted {gate.observed:g} when it was evaluated at"
            f" {evaluation.at.isoformat()}: pairs diffed by then)"
        )
    return line


def notification(report: ShadowTestReport, approve_commands: list[str] | None = None) -> tuple[str, str]:
    """(subject, message) for SNS: the verdict, the gates that decided it, where the report is. The
    outcome leads the subject, so a long endpoint name is what gets cut."""
    subject = sns_subject(f"shadowscale: {report.outcome}: shadow test on {report.endpoint}")
    lines = [
        f"Shadow test {report.test_id} on endpoint {report.endpoint}: {report.outcome.upper()}",
        f"Verdict: {report.verdict or '-'}. {report.reason}",
    ]
    if report.evaluation is not None:
        lines.append("Gates:")
        lines += [
            f"  {gate.status:>17}  {gate.name}  {interval_text(gate)} threshold={gate.threshold}"
            for gate in report.evaluation.gates
        ]
        lines += report_noise.lines(report.evaluation)
    if report.final_config_name:
        lines.append(f"Endpoint config now: {report.final_config_name}")
    pairs = pairs_line(report)
    if pairs is not None:
        lines.append(pairs + (f"; {report.diff_note}" if report.diff_note else ""))
    lines.append(f"Report: {report.html_uri} (JSON: {report.json_uri})")
    if approve_commands:
        lines.append("")
        lines.append("Decide with one of:")
        lines += [f"  {command}" for command in approve_commands]
    return subject, "\n".join(lines)
