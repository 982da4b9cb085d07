"""Where a gate's interval shows: the per-minute latency samples it is built on (CloudWatch), the text of the
HTML report, SNS and `shadowscale shadow follow`, and the early-stop line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from shadowscale.cli.follow import ExecutionProgress, FollowView
from shadowscale.shadow_tests.models import Evaluation, GateResult, ShadowTestReport, VariantStats
from shadowscale.shadow_tests.report_gates import interval_text
from shadowscale.shadow_tests.report_page import notification, render_html
from shadowscale.shadow_tests.variant_metrics import EndpointMetrics

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
WILSON_GATE = GateResult(
    name="within-tolerance-rate",
    status="fail",
    observed=0.981,
    threshold=0.99,
    lower=0.972,
    upper=0.988,
    confidence=0.95,
    method="Wilson",
)


class MinuteCloudWatch:
    """GetMetricData answering ModelLatency per minute, in microseconds; production misses minute 2."""

    def __init__(self) -> None:
        self.periods: set[int] = set()

    def get_paginator(self, operation: str) -> MinuteCloudWatch:
        assert operation == "get_metric_data"
        return self

    def paginate(self, MetricDataQueries: list[dict[str, Any]], **_: Any) -> Iterator[dict[str, Any]]:  # noqa: N803
        results = []
        for query in MetricDataQueries:
            stat = query["MetricStat"]
            self.periods.add(stat["Period"])
            variant = next(d["Value"] for d in stat["Metric"]["Dimensions"] if d["Name"] == "VariantName")
            minutes = [0, 1, 3] if variant == "primary" else [0, 1, 2, 3]
            base = 20_000.0 if variant == "primary" else 30_000.0
            results.append(
                {
                    "Label": query["Label"],
                    "Timestamps": [T0 + timedelta(minutes=minute) for minute in minutes],
                    "Values": [base + minute for minute in minutes],
                }
            )
        yield {"MetricDataResults": results}


def test_minute_latencies_pair_both_variants_by_minute_in_milliseconds() -> None:
    # GIVEN per-minute ModelLatency for both variants, production missing one minute
    cloudwatch = MinuteCloudWatch()
    # WHEN the latency gates' samples are read for a 4-minute window
    found = EndpointMetrics(cast(Any, cloudwatch)).minute_latencies(
        "ep", "primary", "shadow", T0, T0 + timedelta(minutes=4)
    )
    # THEN each percentile holds (shadow ms, production ms) for the minutes both have, at a 60 s period
    assert found.p99 == ((30.0, 20.0), (30.001, 20.001), (30.003, 20.003))
    assert found.p50 == found.p90 == found.p99
    assert cloudwatch.periods == {60}


def test_a_bake_longer_than_a_day_reads_longer_periods() -> None:
    cloudwatch = MinuteCloudWatch()
    EndpointMetrics(cast(Any, cloudwatch)).minute_latencies("ep", "primary", "shadow", T0, T0 + timedelta(days=3))
    assert cloudwatch.periods == {180}  # 4,320 minutes in at most 1,440 samples


def test_interval_text_reads_estimate_bounds_confidence_and_method() -> None:
    assert interval_text(WILSON_GATE) == "0.981 [0.972, 0.988] 95 % Wilson"
    unbounded = WILSON_GATE.model_copy(update={"lower": None, "upper": None, "method": "sign-test median ratio"})
    assert interval_text(unbounded) == "0.981 [-inf, inf] 95 % sign-test median ratio"
    count = GateResult(name="min-invocations", status="pass", observed=10930, threshold=100)
    assert interval_text(count) == "10,930"


def _evaluation(early_stop: str | None = None) -> Evaluation:
    return Evaluation(
        at=T0 + timedelta(minutes=20),
        step_index=0,
        step_started_at=T0,
        window_start=T0,
        production=VariantStats(invocations=900),
        shadow=VariantStats(invocations=900),
        gates=(WILSON_GATE,),
        verdict="fail",
        early_stop=early_stop,
        next="decide",
        wait_seconds=0,
    )


def test_the_report_page_and_notification_show_each_gates_interval_and_the_early_stop() -> None:
    # GIVEN a report whose agreement gate failed on its interval, stopped early
    reason = "stopped early at step 1 of 2: always-valid 98.75% intervals fail within-tolerance-rate"
    report = ShadowTestReport(
        test_id="t",
        execution_arn="arn:aws:states:us-east-1:1:execution:sm:t",
        endpoint="ep",
        outcome="removed",
        verdict="fail",
        reason=reason,
        started_at=T0,
        finished_at=T0 + timedelta(minutes=25),
        evaluation=_evaluation(reason),
    )
    # WHEN it is rendered THEN the gate table shows the interval and the page the early stop
    page = render_html(report, "primary", "shadow")
    assert "<th>estimate [interval]</th>" in page
    assert "<td class='num'>0.981 [0.972, 0.988] 95 % Wilson</td>" in page
    assert f"<p>Early stop: {reason}</p>" in page
    # AND the notification lists the interval too
    _, message = notification(report)
    assert "within-tolerance-rate  0.981 [0.972, 0.988] 95 % Wilson threshold=0.99" in message
    # AND the JSON carries the bounds as fields
    dumped = report.model_dump(mode="json", by_alias=True)["evaluation"]["gates"][0]
    assert (dumped["lower"], dumped["upper"], dumped["confidence"], dumped["method"]) == (0.972, 0.988, 0.95, "Wilson")


def test_follow_shows_the_interval_and_the_early_stop() -> None:
    progress = ExecutionProgress(evaluation=_evaluation("stopped early at step 1 of 2: ..."))
    lines = FollowView(execution="t", status="RUNNING", progress=progress, now=T0 + timedelta(minutes=21)).lines()
    text = "\n".join(lines)
    assert "fail              within-tolerance-rate        0.981 [0.972, 0.988] 95 % Wilson vs 0.99" in text
    assert "    stopped early at step 1 of 2: ..." in text
