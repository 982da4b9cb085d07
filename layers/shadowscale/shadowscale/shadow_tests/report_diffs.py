"""The report page's response-diff section: counts and rates as tables, the distribution of differences as a
histogram, the fields that differ most, and mismatch samples side by side (production | shadow).

The samples were redacted (the comparison's redactFields) and clipped (maxExampleChars) by the diff
pipeline before they were stored; this page shows what was stored, says what was blanked and where a value
was clipped, and hides the pipeline's bookkeeping (sample priority, capture object and line)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from pydantic import JsonValue

from shadowscale.shadow_tests.report_charts import when

# The stored histogram's layout (response_diffs/histogram.py): each power of two holds this many buckets,
# bucket b covering [2**(e-1), 2**e) with e = b // SUB_BUCKETS. The page regroups them by power of two.
SUB_BUCKETS = 16
SAMPLES_SHOWN = 10
# How the pipeline marks a value it clipped before storing it (response_diffs/comparators.py `_clip`).
_CLIPPED = re.compile(r"\.\.\.\(\+(\d+) chars\)$")

_COUNTS = (
    ("recordsRead", "capture records read"),
    ("paired", "pairs (production and shadow answer to one request)"),
    ("exactMatches", "exact matches"),
    ("withinTolerance", "within tolerance (exact included)"),
    ("lateRecords", "records after their window closed"),
    ("pending", "records still waiting for a twin"),
    ("windows", "windows merged"),
)
_BREAKDOWNS = (("pairedBy", "paired by"), ("unpaired", "unpaired"), ("quarantined", "quarantined"))
_RATES = (
    ("exactMatchRate", "exact match rate", "of pairs"),
    ("withinToleranceRate", "within-tolerance rate", "of pairs"),
    ("labelAgreementRate", "label agreement rate", "of pairs with a label"),
    ("argmaxAgreementRate", "argmax agreement rate", "of pairs with scores"),
    ("meanTopKOverlap", "mean top-k overlap", "of k"),
)
_DISTRIBUTIONS = (("absDiffStats", "absolute difference"), ("relDiffStats", "relative difference"))
_HISTOGRAMS = (("absDiff", "absolute difference |production - shadow|"), ("relDiff", "relative difference"))


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else escape(str(value))
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def percent(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "not measured"
    return f"{value * 100:.2f} %"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    header = "".join(f"<th>{escape(cell)}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table class='{css}'><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def counts_table(summary: Mapping[str, JsonValue]) -> str:
    rows = [[escape(label), _number(summary[key])] for key, label in _COUNTS if key in summary]
    for key, label in _BREAKDOWNS:
        found = summary.get(key)
        if isinstance(found, dict):
            rows += [[escape(f"{label}: {reason}"), _number(count)] for reason, count in sorted(found.items())]
    return "<h3>Counts</h3>" + _table(["what", "count"], rows, "counts")


def rates_table(summary: Mapping[str, JsonValue]) -> str:
    rows = [[escape(label), percent(summary.get(key)), escape(of)] for key, label, of in _RATES if key in summary]
    return "<h3>Rates</h3>" + _table(["rate", "value", "share"], rows, "rates")


def distribution_table(summary: Mapping[str, JsonValue]) -> str:
    rows = []
    for key, label in _DISTRIBUTIONS:
        stats = summary.get(key)
        if isinstance(stats, dict):
            rows.append([escape(label), *(_number(stats.get(name)) for name in ("count", "mean", "p50", "p95", "max"))])
    if not rows:
        return ""
    return "<h3>Differences between answers</h3>" + _table(["", "pairs", "mean", "p50", "p95", "max"], rows, "dist")


def histogram_bins(histogram: Mapping[str, JsonValue]) -> tuple[list[str], list[int]]:
    """(labels, counts) by power of two, zeros (exact matches) first: what the histogram chart draws."""
    zeros = histogram.get("zeros")
    buckets = histogram.get("buckets")
    by_power: dict[int, int] = {}
    if isinstance(buckets, dict):
        for bucket, count in buckets.items():
            if isinstance(count, int):
                power = int(bucket) // SUB_BUCKETS
                by_power[power] = by_power.get(power, 0) + count
    labels, counts = [], []
    if isinstance(zeros, int) and zeros:
        labels.append("0")
        counts.append(zeros)
    for power in range(min(by_power, default=0), max(by_power, default=-1) + 1):
        # A bar's label is its upper bound: the bar holds the differences in [half of it, it).
        labels.append(f"<{math.ldexp(1, power):.2g}")
        counts.append(by_power.get(power, 0))
    return labels, counts


def histograms(summary: Mapping[str, JsonValue]) -> list[dict[str, object]]:
    """The difference histograms worth drawing (a comparator that measures no number leaves them empty)."""
    found: list[dict[str, object]] = []
    for key, label in _HISTOGRAMS:
        histogram = summary.get(key)
        if not isinstance(histogram, dict):
            continue
        labels, counts = histogram_bins(histogram)
        if sum(counts):
            found.append({"id": f"histogram-{key}", "title": label, "labels": labels, "counts": counts,
                          "xLabel": label, "yLabel": "pairs"})  # fmt: skip
    return found


def fields_table(summary: Mapping[str, JsonValue]) -> str:
    fields = summary.get("mostDifferingFields")
    paired = summary.get("paired")
    if not isinstance(fields, list) or not fields:
        return ""
    rows = []
    for field in fields:
        if isinstance(field, dict):
            pairs = field.get("pairs")
            share = pairs / paired if isinstance(pairs, int) and isinstance(paired, int) and paired else None
            rows.append([f"<code>{escape(str(field.get('path')))}</code>", _number(pairs), percent(share)])
    return "<h3>Most differing fields</h3>" + _table(["field", "pairs differing", "share of pairs"], rows, "fields")


def pretty(text: str) -> tuple[str, int | None]:
    """(the stored value pretty-printed when it is JSON or JSON lines, characters the pipeline clipped)."""
    clipped = _CLIPPED.search(text)
    body = text[: clipped.start()] if clipped else text
    try:
        shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        try:
            lines = [json.dumps(json.loads(line), indent=2, ensure_ascii=False) for line in body.splitlines() if line]
            shown = "\n".join(lines) if lines else body
        except ValueError:
            shown = body
    return shown, int(clipped.group(1)) if clipped else None


def _value(text: object) -> str:
    shown, clipped = pretty(str(text) if text is not None else "")
    note = (
        f"<p class='clipped'>clipped when stored: {clipped:,} more characters (the comparison's maxExampleChars)</p>"
        if clipped
        else ""
    )
    return f"<pre class='payload'>{escape(shown)}</pre>{note}"


def _time(text: object) -> str:
    """A stored ISO time on the page's one format; left as stored when it does not parse."""
    try:
        return when(datetime.fromisoformat(str(text)))
    except ValueError:
        return escape(str(text))


def sample_html(sample: Mapping[str, JsonValue]) -> str:
    fields = sample.get("fields")
    differing = ", ".join(str(field) for field in fields) if isinstance(fields, list) and fields else "-"
    meta = (
        f"<dl class='meta'><dt>inference time</dt><dd>{_time(sample.get('inferenceTime', '-'))}</dd>"
        f"<dt>paired by</dt><dd>{escape(str(sample.get('pairedBy', '-')))}</dd>"
        f"<dt>fields differing</dt><dd><code>{escape(differing)}</code></dd>"
        f"<dt>absolute difference</dt><dd>{_number(sample.get('absDiff'))}</dd>"
        f"<dt>relative difference</dt><dd>{_number(sample.get('relDiff'))}</dd></dl>"
    )
    return (
        f"<article class='sample'>{meta}<h4>input</h4>{_value(sample.get('input'))}"
        "<div class='side-by-side'>"
        f"<section><h4>production</h4>{_value(sample.get('productionOutput'))}</section>"
        f"<section><h4>shadow</h4>{_value(sample.get('shadowOutput'))}</section>"
        "</div></article>"
    )


def samples_html(summary: Mapping[str, JsonValue], summary_uri: str | None) -> str:
    samples = summary.get("mismatchSamples") or summary.get("mismatches")
    if not isinstance(samples, list) or not samples:
        return ""
    redacted = summary.get("redactedFields")
    # Say what was blanked, and claim nothing when the comparison had nothing to blank.
    listed = ", ".join(map(str, redacted)) if isinstance(redacted, list) else ""
    what = f" ({escape(listed)} redacted)" if listed else ""
    shown = [sample for sample in samples[:SAMPLES_SHOWN] if isinstance(sample, dict)]
    where = f" The rest are in <code>{escape(summary_uri)}</code>." if summary_uri else ""
    count = (
        f"<p class='muted'>{len(shown)} of {len(samples)} stored samples shown.{where}</p>"
        if len(samples) > len(shown)
        else ""
    )
    return f"<h3>Sample of mismatches{what}</h3>{count}" + "".join(sample_html(sample) for sample in shown)
