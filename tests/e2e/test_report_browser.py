"""The shadow test's HTML report in a real browser (Debian's headless chromium through Playwright): two
reports written by the real pipeline on the embedded local cloud (a ramped candidate that is promoted, and
one the gates reject), opened offline; every chart must be drawn, with time axes, units, the ramp and
decision markers and a filled summary table, and the page must raise no error. Full-page screenshots land
in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_one_variant_endpoint
from shadowscale_localcloud.simulated_endpoint import CaptureSimulation, ModelServer, TrafficPattern

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium")
# Every chart SageMaker's shadow-test page shows for a CPU instance (GPU charts appear only with GPU data).
EXPECTED_CHARTS = (
    "latencyP50Ms",
    "latencyP90Ms",
    "latencyP99Ms",
    "overheadMs",
    "invocations",
    "errors4xx",
    "errors5xx",
    "modelErrors",
    "cpuPercent",
    "memoryPercent",
    "diskPercent",
)


def _browser_or_skip() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed: CI must check the report page in a browser (apt-get install chromium)")
    pytest.skip("chromium is not installed (Debian package `chromium`); CI=true makes this a failure")


@dataclass(frozen=True)
class Rendered:
    name: str
    report: dict[str, Any]
    html: str


def _endpoint(cloud: LocalCloud, name: str, candidate: ModelServer) -> None:
    create_one_variant_endpoint(cloud.client("sagemaker"), name, f"{name}-v2", cloud.advance)
    production = ModelServer(output_content_type="application/json")
    cloud.simulate(
        name,
        TrafficPattern.flat(20),
        models={"primary": production, "candidate": candidate},
        capture=CaptureSimulation(limit_per_step=30, delivery_delay_seconds=120),
    )


def _run(cloud: LocalCloud, kind: str, name: str, test: dict[str, Any]) -> Rendered:
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=f"{name}-test", input=json.dumps(test)
    )
    cloud.wait_for_execution(started["executionArn"])
    s3, bucket = cloud.client("s3"), cloud.outputs["DataBucketName"]
    prefix = f"reports/{test['endpointName']}/{name}-test/report"
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}.json")["Body"].read())
    html = s3.get_object(Bucket=bucket, Key=f"{prefix}.html")["Body"].read().decode()
    return Rendered(kind, report, html)


@pytest.fixture(scope="session")
def reports() -> dict[str, Rendered]:
    """A promoted and a rejected report from the deployed state machine, one cloud for both."""
    _browser_or_skip()
    clock = AcceleratedClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    base = ModelServer(output_content_type="application/json")
    comparison = {"comparator": "classification", "classification": {"labelPath": "label"}}
    with LocalCloud(root=REPO, clock=clock, stack_name="report-browser-e2e") as cloud:
        _endpoint(cloud, "ranker", base)
        _endpoint(cloud, "scorer", replace(base, label_flip_rate=0.3, score_drift=0.05, base_latency_ms=30.0))
        candidate = {"modelName": "", "instanceType": "ml.m5.xlarge", "variantName": "candidate"}
        promoted = _run(
            cloud,
            "promoted",
            "ranker",
            {
                "endpointName": "ranker",
                "candidate": {**candidate, "modelName": "ranker-v2"},
                "sampling": {"ramp": [{"percent": 10, "bakeMinutes": 10}, {"percent": 50, "bakeMinutes": 10}]},
                "durationMinutes": 20,
                "evaluationPeriodMinutes": 5,
                "gates": {"minInvocations": 50, "agreement": {"minWithinToleranceRate": 0.9}},
                "comparison": comparison,
            },
        )
        rejected = _run(
            cloud,
            "rejected",
            "scorer",
            {
                "endpointName": "scorer",
                "candidate": {**candidate, "modelName": "scorer-v2"},
                "sampling": {"percent": 50},
                "durationMinutes": 20,
                "evaluationPeriodMinutes": 10,
                "gates": {"minInvocations": 50, "agreement": {"minWithinToleranceRate": 0.9}},
                # Scores compared as numbers: the differences make the histogram.
                "comparison": {"comparator": "json", "tolerance": {"absolute": 0.01, "relative": 0}},
            },
        )
    return {"promoted": promoted, "rejected": rejected}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = _browser_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Opened:
    page: Page
    errors: list[str]
    requests: list[str]


def _open(browser: Browser, rendered: Rendered) -> Iterator[Opened]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    opened = Opened(page, [], [])

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    def refuse(route: Route) -> None:  # the page must work offline: any request is recorded and refused
        opened.requests.append(route.request.url)
        route.abort()

    page.on("console", console)
    page.on("pageerror", lambda error: opened.errors.append(f"page error: {error}"))
    page.route("**/*", refuse)
    page.set_content(rendered.html, wait_until="load")
    page.wait_for_function("window.shadowscaleCharts !== undefined")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"report-{rendered.name}.html").write_text(rendered.html)
    page.screenshot(path=str(ARTIFACTS / f"report-{rendered.name}.png"), full_page=True)
    yield opened
    page.close()


@pytest.fixture(scope="session")
def promoted(browser: Browser, reports: dict[str, Rendered]) -> Iterator[Opened]:
    yield from _open(browser, reports["promoted"])


@pytest.fixture(scope="session")
def rejected(browser: Browser, reports: dict[str, Rendered]) -> Iterator[Opened]:
    yield from _open(browser, reports["rejected"])


# Per chart: is it drawn (a uPlot canvas with pixels that are not blank), its axes' labels, the markers it
# drew, and its summary table's cells.
_CHART_FACTS = """
() => Array.from(document.querySelectorAll("figure.chart")).map((figure) => {
  const canvas = figure.querySelector("canvas");
  let inked = 0;
  if (canvas) {
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { inked += 1; } }
  }
  const plot = (window.shadowscaleCharts || []).find((u) => figure.contains(u.root));
  return {
    metric: figure.dataset.metric,
    unit: figure.dataset.unit || null,
    rendered: figure.querySelector(".plot") ? figure.querySelector(".plot").dataset.rendered === "true" : false,
    inked: inked,
    axes: plot ? plot.axes.map((axis) => axis.label) : [],
    timeScale: plot ? plot.scales.x.time : null,
    markers: Number(figure.dataset.markers || figure.querySelector(".plot")?.dataset.markers || 0),
    legend: Array.from(figure.querySelectorAll(".u-legend .u-series th .u-label")).map((l) => l.textContent),
    summary: Array.from(figure.querySelectorAll("table.summary tbody tr")).map((row) =>
      Array.from(row.querySelectorAll("td")).map((cell) => cell.textContent)),
  };
})
"""


_ROWS = """
(selector) => Array.from(document.querySelectorAll(selector + " tbody tr")).map((row) =>
  Array.from(row.querySelectorAll("td")).map((cell) => cell.textContent))
"""


def _charts(opened: Opened) -> dict[str, dict[str, Any]]:
    facts: list[dict[str, Any]] = opened.page.evaluate(_CHART_FACTS)
    return {fact["metric"]: fact for fact in facts}


_CLOCKS = """
() => { const data = JSON.parse(document.getElementById("shadowscale-data").textContent);
  return { markers: data.markers.map((m) => m.at), points: data.charts.flatMap((c) => c.x) }; }
"""


def _assert_one_clock(opened: Opened, period_seconds: float = 300) -> None:
    """Markers (the execution's history) fall within the metrics' span: both on the clock the test ran on."""
    clocks = opened.page.evaluate(_CLOCKS)
    first, last = min(clocks["points"]), max(clocks["points"])
    strays = [at for at in clocks["markers"] if not first - period_seconds <= at <= last + period_seconds]
    assert not strays, f"markers {strays} lie outside the metrics' span {first}..{last}: two clocks on one page"


def _assert_every_metric_chart_is_complete(opened: Opened, *, markers: int) -> None:
    _assert_one_clock(opened)
    charts = _charts(opened)
    missing = [metric for metric in EXPECTED_CHARTS if metric not in charts]
    assert not missing, f"charts missing from the page: {missing}"
    for metric in EXPECTED_CHARTS:
        chart = charts[metric]
        assert chart["rendered"], f"{metric}: no uPlot drawn"
        assert chart["inked"] > 500, f"{metric}: the canvas is blank"
        assert chart["timeScale"] is True, f"{metric}: the x axis is not a time axis"
        assert chart["axes"][0] == "time (UTC, the clock the test ran on; 2026-11-24)"
        assert chart["axes"][1] == chart["unit"], f"{metric}: the y axis does not name its unit"
        assert chart["legend"][1:] == ["production (primary)", "shadow (candidate)"], chart["legend"]
        assert chart["markers"] == markers, f"{metric}: {chart['markers']} markers drawn, {markers} expected"
        assert len(chart["summary"]) == 2, f"{metric}: the summary table lacks a variant"
        for row in chart["summary"]:
            assert len(row) == 6, f"{metric}: summary row {row}"
            assert all(cell.endswith(chart["unit"]) for cell in row), f"{metric}: summary row {row} lacks units"


def test_the_promoted_report_draws_every_metric_with_time_axes_units_and_the_ramp(
    promoted: Opened, reports: dict[str, Rendered]
) -> None:
    # GIVEN the report of a candidate ramped 10 % → 50 % and promoted
    assert reports["promoted"].report["outcome"] == "promoted"

    # WHEN it is opened in the browser, offline
    # THEN it draws every chart, each with the sampling start, the ramp step and the decision marked
    assert promoted.errors == []
    assert promoted.requests == []
    _assert_every_metric_chart_is_complete(promoted, markers=3)
    legend = promoted.page.inner_text("p.markers")
    assert "shadow sampling 10 %" in legend
    assert "ramp 10 % → 50 %" in legend
    assert "decision" in legend
    units = {metric: fact["unit"] for metric, fact in _charts(promoted).items()}
    assert units["latencyP99Ms"] == "ms"
    assert units["cpuPercent"] == "%"
    assert units["invocations"].startswith("requests / ")


def test_the_rejected_report_shows_its_diffs_as_tables_a_histogram_and_side_by_side_samples(
    rejected: Opened, reports: dict[str, Rendered]
) -> None:
    # GIVEN the report of a candidate whose labels disagree with production's on about 30 % of requests
    report = reports["rejected"].report
    assert report["outcome"] == "removed"

    # WHEN it is opened in the browser, offline
    page = rejected.page

    # THEN the metric charts are complete (sampling start and decision marked), the rates are percentages,
    # and each mismatch sample shows production and shadow side by side as pretty-printed JSON
    assert rejected.errors == []
    assert rejected.requests == []
    _assert_every_metric_chart_is_complete(rejected, markers=2)
    rates = {row[0]: row[1] for row in page.evaluate(_ROWS, "table.rates")}
    assert re.fullmatch(r"\d{1,3}\.\d\d %", rates["within-tolerance rate"]), rates
    assert rates["label agreement rate"] == "not measured"  # a JSON comparison compares no labels
    histogram = _charts(rejected)["histogram-absDiff"]
    assert histogram["rendered"]
    assert histogram["inked"] > 500, "the difference histogram is blank"
    assert histogram["axes"] == ["absolute difference |production - shadow|", "pairs"]
    fields = [row[0] for row in page.evaluate(_ROWS, "table.fields")]
    assert {"score", "label"} <= set(fields), fields
    samples = page.query_selector_all("article.sample")
    assert samples
    first = samples[0]
    production, shadow = (json.loads(pre.inner_text()) for pre in first.query_selector_all(".side-by-side pre"))
    assert production != shadow
    assert "\n  " in first.query_selector_all(".side-by-side pre")[0].inner_text()  # pretty-printed
    assert "priority" not in page.inner_text("body")  # the pipeline's bookkeeping stays hidden
