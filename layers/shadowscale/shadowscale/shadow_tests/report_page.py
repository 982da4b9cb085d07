"""The shadow test's report as one self-contained HTML page (inline CSS and SVG, no scripts, no fetches),
and the short text that goes out by SNS."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from html import escape
from itertools import pairwise

from shadowscale.shadow_tests.models import ChartSeries, Evaluation, ShadowTestReport

_COLOURS = {"production": "#1f77b4", "shadow": "#d62728"}
_TITLES = {
    "latencyP50Ms": "ModelLatency p50 (ms)",
    "latencyP99Ms": "ModelLatency p99 (ms)",
    "invocations": "Invocations per period",
    "errors5xx": "5XX errors per period",
    "modelErrors": "Model errors per period",
}
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


def _chart(title: str, series: list[tuple[str, ChartSeries]], width: int = 560, height: int = 180) -> str:
    points = [point for _, line in series for point in line.points]
    if not points:
        return f"<figure><figcaption>{escape(title)}</figcaption><p class='muted'>no datapoints</p></figure>"
    start = min(point.at for point in points).timestamp()
    end = max(point.at for point in points).timestamp()
    top = max(point.value for point in points) or 1.0
    span = (end - start) or 1.0
    pad = 30

    def xy(at: float, value: float) -> str:
        x = pad + (at - start) / span * (width - 2 * pad)
        y = height - pad - value / top * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for role, line in series:
        coords = " ".join(xy(point.at.timestamp(), point.value) for point in line.points)
        lines.append(
            f"<polyline fill='none' stroke='{_COLOURS.get(role, '#555')}' stroke-width='2' points='{coords}'>"
            f"<title>{escape(role)}: {escape(line.variant)}</title></polyline>"
        )
    legend = " ".join(
        f"<tspan fill='{_COLOURS.get(role, '#555')}'>■ {escape(role)} ({escape(line.variant)})</tspan>"
        for role, line in series
    )
    return (
        f"<figure><figcaption>{escape(title)}</figcaption>"
        f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img'>"
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' stroke='#999'/>"
        f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{height - pad}' stroke='#999'/>"
        f"<text x='2' y='{pad}' font-size='10'>{top:.3g}</text>"
        f"<text x='{pad}' y='{height - 8}' font-size='10'>{legend}</text>"
        f"{''.join(lines)}</svg></figure>"
    )


def _charts(report: ShadowTestReport, production: str | None, shadow: str | None) -> str:
    figures = []
    for metric, title in _TITLES.items():
        series: list[tuple[str, ChartSeries]] = []
        for role, variant in (("production", production), ("shadow", shadow)):
            line = next((c for c in report.charts if c.metric == metric and c.variant == variant), None)
            if line is not None:
                series.append((role, line))
        figures.append(_chart(title, series))
    return "".join(figures)


def _rows(pairs: Sequence[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>" for key, value in pairs)


def _summary(report: ShadowTestReport) -> list[tuple[str, object]]:
    summary: list[tuple[str, object]] = [
        ("Endpoint", report.endpoint),
        ("Outcome", report.outcome),
        ("Verdict", report.verdict or "-"),
        ("Reason", report.reason),
        ("Started", report.started_at.isoformat() if report.started_at else "-"),
        ("Finished", report.finished_at.isoformat()),
        ("Final endpoint config", report.final_config_name or "-"),
        ("Execution", report.execution_arn),
    ]
    if report.candidate:
        summary.append(("Candidate", json.dumps(report.candidate, sort_keys=True)))
    if report.approval:
        summary.append(
            ("Approval", f"{'approved' if report.approval.approved else 'rejected'} by {report.approval.by}")
        )
    if report.failure:
        summary.append(("Failure", f"{report.failure.get('error', '')}: {report.failure.get('cause', '')}"))
    return summary


def _gates(evaluation: Evaluation | None) -> str:
    if evaluation is None:
        return ""
    gate_rows = "".join(
        f"<tr class='{escape(gate.status)}'><td>{escape(gate.name)}</td><td>{escape(gate.status)}</td>"
        f"<td>{'' if gate.observed is None else gate.observed}</td>"
        f"<td>{'' if gate.threshold is None else gate.threshold}</td><td>{escape(gate.detail)}</td></tr>"
        for gate in evaluation.gates
    )
    gates = (
        f"<h2>Gates (window from {escape(evaluation.window_start.isoformat())}, step {evaluation.step_index + 1},"
        f" evaluated at {escape(evaluation.at.isoformat())})"
        "</h2><table><tr><th>gate</th><th>status</th><th>observed</th><th>threshold</th><th>detail</th></tr>"
        f"{gate_rows}</table>"
    )
    if evaluation.hard_limit_breached:
        gates += f"<p class='fail'>Hard limit breached: {escape(evaluation.hard_limit_breached)}</p>"
    return gates


def _diffs(report: ShadowTestReport) -> str:
    if not report.diff_summary:
        return ""
    shown = [(key, value) for key, value in report.diff_summary.items() if not isinstance(value, dict | list)]
    state = report.diff_summary_state or "provisional"
    diff = f"<h2>Response diffs ({escape(state)})</h2><p>{escape(pairs_line(report) or '')}</p>"
    if report.diff_note:
        diff += f"<p class='muted'>{escape(report.diff_note)}</p>"
    diff += f"<table>{_rows(shown)}</table>"
    samples = report.diff_summary.get("mismatchSamples") or report.diff_summary.get("mismatches")
    if isinstance(samples, list) and samples:
        items = "".join(f"<li><pre>{escape(json.dumps(sample)[:1500])}</pre></li>" for sample in samples[:10])
        redacted = report.diff_summary.get("redactedFields")
        # Say what was blanked, and claim nothing when the comparison had nothing to blank.
        listed = ", ".join(map(str, redacted)) if isinstance(redacted, list) else ""
        what = f" ({escape(listed)} redacted)" if listed else ""
        diff += f"<h3>Sample of mismatches{what}</h3><ol>{items}</ol>"
    return diff


def _longest_state(report: ShadowTestReport) -> str:
    if len(report.timeline) <= 1:
        return ""
    longest = max(pairwise(report.timeline), key=lambda pair: (pair[1].at - pair[0].at).total_seconds())
    return f"<p class='muted'>Longest state: {escape(longest[0].state)}</p>"


def render_html(report: ShadowTestReport, production_variant: str | None, shadow_variant: str | None) -> str:
    colour = _OUTCOME_COLOURS.get(report.outcome, "#d62728" if report.outcome != "removed" else "#ff7f0e")
    summary = _summary(report)
    gates = _gates(report.evaluation)
    diff = _diffs(report)
    timeline = "".join(
        f"<li><time>{escape(entry.at.isoformat())}</time> {escape(entry.state)} — {escape(entry.event)}</li>"
        for entry in report.timeline
    )
    durations = _longest_state(report)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Shadow test {escape(report.test_id)}: {escape(report.outcome)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}}
.badge{{display:inline-block;padding:.2rem .6rem;border-radius:4px;color:#fff;background:{colour}}}
table{{border-collapse:collapse;margin:.5rem 0}} td,th{{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}}
tr.fail td{{background:#fde0e0}} tr.pass td{{background:#e3f6e3}} tr.insufficient-data td{{background:#fff5d6}}
figure{{display:inline-block;margin:.5rem}} .muted{{color:#777}} .fail{{color:#b00}}
</style></head><body>
<h1>Shadow test on {escape(report.endpoint)} <span class="badge">{escape(report.outcome)}</span></h1>
<table>{_rows(summary)}</table>
{gates}
<h2>Production vs shadow</h2>{_charts(report, production_variant, shadow_variant)}
{diff}
<h2>Timeline</h2>{durations}<ol>{timeline}</ol>
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
            f"  {gate.status:>17}  {gate.name}  observed={gate.observed} threshold={gate.threshold}"
            for gate in report.evaluation.gates
        ]
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
