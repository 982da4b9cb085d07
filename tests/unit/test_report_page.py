"""The report page's parts as plain data: which charts it shows and in what units, each series' summary,
the ramp and decision markers taken from the timeline, the diff tables and samples, and one clock."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shadowscale.shadow_tests.models import ChartSeries, SeriesPoint, ShadowTestReport, TimelineEntry
from shadowscale.shadow_tests.report_charts import (
    CHART_SPECS,
    SeriesSummary,
    chart_data,
    charts_of,
    markers_of,
    nearest_rank,
)
from shadowscale.shadow_tests.report_diffs import histogram_bins, pretty, samples_html
from shadowscale.shadow_tests.report_page import render_html

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
REQUIRED = [spec.metric for spec in CHART_SPECS if not spec.optional]


def series(metric: str, variant: str, values: list[float], period_minutes: int = 2) -> ChartSeries:
    return ChartSeries(
        metric=metric,
        variant=variant,
        points=tuple(
            SeriesPoint(at=T0 + timedelta(minutes=period_minutes * i), value=value) for i, value in enumerate(values)
        ),
    )


def report(**fields: Any) -> ShadowTestReport:
    document: dict[str, Any] = {
        "testId": "test-1",
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:shadow:test-1",
        "endpoint": "fraud-detector",
        "outcome": "promoted",
        "reason": "all gates passed",
        "startedAt": T0,
        "finishedAt": T0 + timedelta(minutes=20),
    }
    return ShadowTestReport.model_validate({**document, **fields})


def ramped_timeline() -> list[TimelineEntry]:
    at = [T0 + timedelta(minutes=minutes) for minutes in (0, 1, 2, 7, 11, 12, 20, 20)]
    states = ["Validate", "ShadowCheck", "Bake", "Evaluate", "Ramp", "Bake", "Decide", "Promote"]
    return [
        TimelineEntry(at=moment, state=state, event="waiting" if state == "Bake" else "entered")
        for moment, state in zip(at, states, strict=True)
    ]


def page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="shadowscale-data">(.*?)</script>', html, re.S)
    assert found is not None
    loaded: dict[str, Any] = json.loads(found.group(1))
    return loaded


def test_every_metric_sagemaker_shows_gets_a_chart_with_its_unit_and_gpu_only_when_published() -> None:
    # GIVEN CloudWatch series for every metric of a CPU variant pair, and GPU utilisation for the shadow only
    charted = [series(metric, variant, [1.0, 2.0]) for metric in REQUIRED for variant in ("primary", "candidate")]
    charted.append(series("gpuPercent", "candidate", [55.0, 60.0]))

    # WHEN the page's charts are chosen
    charts = {chart.spec.metric: chart for chart in charts_of(report(charts=charted), "primary", "candidate")}

    # THEN every required metric is charted, GPU utilisation too (published), GPU memory not (never published)
    assert list(charts) == [*REQUIRED, "gpuPercent"]
    assert charts["latencyP99Ms"].unit == "ms"
    assert charts["cpuPercent"].unit == "%"
    assert charts["invocations"].unit == "requests / 2 min"  # a count names the period it is counted over
    assert charts["errors5xx"].unit == "errors / 2 min"
    assert [line.label for line in charts["overheadMs"].lines] == ["production (primary)", "shadow (candidate)"]


def test_a_required_metric_without_datapoints_is_still_shown_and_says_so() -> None:
    html = render_html(report(charts=[series("invocations", "primary", [10.0])]), "primary", "candidate")

    assert "id='chart-diskPercent' data-empty='true'>no datapoints" in html
    assert html.count("<figure class='chart'") == len(REQUIRED)


def test_the_summary_of_a_series_is_min_average_max_and_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100

    summary = SeriesSummary.of(values)

    assert summary == SeriesSummary(minimum=1.0, average=50.5, maximum=100.0, p50=50.0, p90=90.0, p99=99.0)
    assert nearest_rank([3.0], 99) == 3.0
    assert SeriesSummary.of([]) is None


def test_each_chart_has_a_production_and_shadow_summary_table_with_units() -> None:
    charted = [series("latencyP99Ms", "primary", [10.0, 30.0]), series("latencyP99Ms", "candidate", [12.0, 48.0])]

    html = render_html(report(charts=charted), "primary", "candidate")

    figure = html[html.index("data-metric='latencyP99Ms'") :].split("</figure>")[0]
    rows = re.findall(r"<tr><th>(.*?)</th>(.*?)</tr>", figure.split("<tbody>")[1])
    cells = {label: re.findall(r"<td class='num'>(.*?)</td>", row) for label, row in rows}
    assert cells["production (primary)"] == ["10 ms", "20 ms", "30 ms", "10 ms", "30 ms", "30 ms"]
    assert cells["shadow (candidate)"] == ["12 ms", "30 ms", "48 ms", "12 ms", "48 ms", "48 ms"]


def test_markers_are_the_sampling_start_each_ramp_step_and_the_decision_at_the_historys_times() -> None:
    markers = markers_of(ramped_timeline(), (10.0, 50.0))

    assert [(marker.kind, marker.label, marker.at - T0) for marker in markers] == [
        ("sampling", "shadow sampling 10 %", timedelta(minutes=2)),
        ("ramp", "ramp 10 % → 50 %", timedelta(minutes=11)),
        ("decision", "decision", timedelta(minutes=20)),
    ]


def test_a_test_ended_by_a_hard_limit_marks_its_restore_as_the_decision() -> None:
    timeline = [
        TimelineEntry(at=T0, state="Bake", event="waiting"),
        TimelineEntry(at=T0 + timedelta(minutes=6), state="Restore", event="entered"),
    ]

    markers = markers_of(timeline, (50.0,))

    assert [(marker.kind, marker.at - T0) for marker in markers] == [
        ("sampling", timedelta(0)),
        ("decision", timedelta(minutes=6)),
    ]


def test_the_page_data_puts_metrics_and_markers_on_one_clock_and_aligns_both_lines() -> None:
    # GIVEN production points every 2 minutes and a shadow that starts later
    production = series("invocations", "primary", [100.0, 110.0, 120.0])
    shadow = ChartSeries(
        metric="invocations", variant="candidate", points=(SeriesPoint(at=T0 + timedelta(minutes=4), value=50.0),)
    )
    page = report(charts=[production, shadow], timeline=ramped_timeline(), samplingPercents=[10, 50])

    # WHEN the page's data is built
    data = chart_data(charts_of(page, "primary", "candidate"), markers_of(page.timeline, (10, 50)), T0, T0)

    # THEN both lines share the x values (epoch seconds of the metrics), the shadow is empty where it had none
    chart = next(c for c in data["charts"] if c["id"] == "chart-invocations")  # type: ignore[attr-defined]
    assert chart["x"] == [(T0 + timedelta(minutes=m)).timestamp() for m in (0, 2, 4)]
    assert [line["values"] for line in chart["series"]] == [[100.0, 110.0, 120.0], [None, None, 50.0]]
    assert [m["at"] for m in data["markers"]] == [  # type: ignore[attr-defined]
        (T0 + timedelta(minutes=m)).timestamp() for m in (2, 11, 20)
    ]
    assert data["start"] == T0.timestamp()
    assert data["end"] == (T0 + timedelta(minutes=20)).timestamp()
    assert data["timeAxis"] == "time (UTC, the clock the test ran on; 2026-11-24)"


def test_every_time_on_the_page_is_utc_with_its_offset_from_the_start() -> None:
    html = render_html(report(timeline=ramped_timeline(), samplingPercents=[10, 50]), "primary", "candidate")

    assert "<td>2026-11-24 09:11:00 UTC</td><td class='num'>T+0:11:00</td><td>Ramp</td>" in html
    assert "2026-11-24 09:20:00 UTC (T+0:20:00)" in html  # finished
    assert "ramp 10 % → 50 % at 2026-11-24 09:11:00 UTC T+0:11:00" in html


def test_the_page_is_self_contained_with_uplot_inlined_and_no_hand_drawn_svg() -> None:
    html = render_html(report(charts=[series("invocations", "primary", [1.0, 2.0])]), "primary", "candidate")

    assert "/*! https://github.com/leeoniya/uPlot (v1.6.32) */" in html
    assert ".uplot" in html  # its stylesheet
    assert "<svg" not in html
    assert "<polyline" not in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)
    assert page_data(html)["charts"][0]["id"] == "chart-invocations"


def test_page_data_cannot_close_its_script_element() -> None:
    page = report(reason="</script><script>alert(1)</script>", charts=[series("invocations", "p</script>", [1.0])])

    html = render_html(page, "p</script>", None)

    data = html.split('id="shadowscale-data">')[1].split("</script>")[0]
    assert json.loads(data)["charts"][0]["series"][0]["label"] == "production (p</script>)"
    assert "<script>alert(1)" not in html


def diff_summary(**fields: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "paired": 200,
        "recordsRead": 420,
        "exactMatches": 150,
        "withinTolerance": 174,
        "exactMatchRate": 0.75,
        "withinToleranceRate": 0.87,
        "labelAgreementRate": None,
        "pairedBy": {"inferenceId": 120, "fingerprint": 80},
        "unpaired": {"no-shadow-twin": 20},
        "absDiff": {"count": 200, "zeros": 150, "buckets": {"-80": 10, "-79": 5, "-64": 35}},
        "absDiffStats": {"count": 200, "mean": 0.01, "p50": 0.0, "p95": 0.05, "max": 0.2},
        "mostDifferingFields": [{"path": "score", "pairs": 50}, {"path": "label", "pairs": 26}],
        "redactedFields": [],
    }
    return {**summary, **fields}


def test_the_diff_section_shows_rates_as_percentages_and_names_what_was_not_measured() -> None:
    html = render_html(report(diffSummary=diff_summary()), "primary", "candidate")

    assert "<td>within-tolerance rate</td><td>87.00 %</td>" in html
    assert "<td>label agreement rate</td><td>not measured</td>" in html
    assert "<td>paired by: fingerprint</td><td>80</td>" in html
    assert "<td><code>score</code></td><td>50</td><td>25.00 %</td>" in html
    assert "labelAgreementRate None" not in html
    assert "0.87<" not in html


def test_the_difference_histogram_groups_buckets_by_power_of_two_with_zeros_first() -> None:
    # 16 buckets per power of two: -80 and -79 lie in [2**-6, 2**-5), -64 in [2**-5, 2**-4)
    labels, counts = histogram_bins(diff_summary()["absDiff"])

    assert labels == ["0", "<0.031", "<0.062"]
    assert counts == [150, 15, 35]
    data = page_data(render_html(report(diffSummary=diff_summary()), "primary", "candidate"))
    assert data["histograms"][0]["counts"] == [150, 15, 35]


def test_mismatch_samples_are_side_by_side_pretty_printed_with_bookkeeping_hidden() -> None:
    sample = {
        "production": {"key": "capture/a.jsonl", "line": 3},
        "shadow": {"key": "capture/b.jsonl", "line": 9},
        "pairedBy": "inferenceId",
        "inferenceTime": "2026-11-24T09:03:00Z",
        "input": "0.1,0.2",
        "productionOutput": '{"score":0.91,"label":1}',
        "shadowOutput": '{"score":0.42,"label":0}',
        "fields": ["label", "score"],
        "priority": 123456789,
    }

    html = samples_html(diff_summary(mismatchSamples=[sample]), None)

    side = html.split("<div class='side-by-side'>")[1]
    assert "<h4>production</h4><pre class='payload'>{\n  &quot;score&quot;: 0.91,\n  &quot;label&quot;: 1\n}" in side
    assert "<h4>shadow</h4>" in side
    assert "123456789" not in html
    assert "capture/a.jsonl" not in html
    assert "label, score" in html


def test_a_value_clipped_by_the_pipeline_says_how_much_is_missing_instead_of_being_cut_silently() -> None:
    shown, clipped = pretty('{"a": 1, "b": "xxxx...(+5000 chars)')

    assert clipped == 5000
    assert shown == '{"a": 1, "b": "xxxx'
    sample = {"input": "1", "productionOutput": "y" * 10 + "...(+42 chars)", "shadowOutput": "z"}
    html = samples_html(diff_summary(mismatchSamples=[sample]), None)
    assert "clipped when stored: 42 more characters" in html


def test_json_lines_are_pretty_printed_one_document_at_a_time() -> None:
    shown, clipped = pretty('{"a":1}\n{"b":2}')

    assert shown == '{\n  "a": 1\n}\n{\n  "b": 2\n}'
    assert clipped is None


def test_more_samples_than_shown_are_counted_and_located() -> None:
    samples = [{"input": str(i), "productionOutput": "1", "shadowOutput": "2"} for i in range(14)]

    html = samples_html(diff_summary(mismatchSamples=samples), "s3://bucket/diffs/test-1/summary.json")

    assert html.count("<article class='sample'>") == 10
    assert "10 of 14 stored samples shown. The rest are in <code>s3://bucket/diffs/test-1/summary.json</code>" in html
