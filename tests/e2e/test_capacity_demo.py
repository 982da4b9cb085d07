"""The demo's simulated Monday on the embedded local cloud, asserted: the real template deployed into moto,
the policy applied with the CLI, schedules fired by the clock, a simulated endpoint serving a day of
traffic, alarms evaluated from its metrics and delivered through the policy's EventBridge rule and an
alarm action, deferred changes replayed through the SQS event source mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shadowscale_localcloud.demo import run

pytestmark = pytest.mark.e2e

Monday = tuple[dict[str, Any], list[dict[str, Any]], Path]


@pytest.fixture(scope="module")
def monday(tmp_path_factory: pytest.TempPathFactory) -> Monday:
    output = tmp_path_factory.mktemp("demo-output")
    summary = run(output)
    timeline: list[dict[str, Any]] = json.loads((output / "capacity-timeline.json").read_text())
    return summary, timeline, output


def scene(timeline: list[dict[str, Any]], starts: str) -> dict[str, Any]:
    return next(entry for entry in timeline if entry["scene"].startswith(starts))


def outcomes(entry: dict[str, Any]) -> list[str]:
    return [decision["outcome"] for decision in entry["decisions"]]


def test_schedule_window_scales_up_at_eight_and_down_at_twenty(monday: Monday) -> None:
    _, timeline, _ = monday
    morning = scene(timeline, "schedules fire until business hours")
    assert morning["variants"]["primary"]["instances"] == 4
    assert [d["function"] for d in morning["decisions"]] == ["shadowscale-dev-scheduled-scaler"]
    assert scene(timeline, "business hours end")["variants"]["primary"]["instances"] == 1


def test_spike_trips_the_latency_alarm_and_scales_out_by_the_step_its_breach_calls_for(monday: Monday) -> None:
    _, timeline, _ = monday
    spike = scene(timeline, "a traffic spike at 10:00")
    assert spike["alarms"]["fraud-detector-latency-high"] == "ALARM"
    assert spike["traffic"]["primary"]["peak_latency_p90_ms"] > 300  # over 200 ms beyond 100 ms: step +4
    [decision] = spike["decisions"]
    assert (decision["function"], decision["outcome"]) == ("shadowscale-dev-alarm-scaler", "applied")
    assert decision["source_event"].startswith("alarm:fraud-detector-latency-high:ALARM:")
    assert spike["variants"]["primary"]["instances"] == 8


def test_scale_out_brings_latency_down_and_the_ok_scales_in_after_the_cooldown(monday: Monday) -> None:
    _, timeline, _ = monday
    recovered = scene(timeline, "8 instances bring p90 back under 100 ms")
    assert recovered["traffic"]["primary"]["latency_p90_ms"] < 100
    assert recovered["traffic"]["primary"]["instances"] == 8
    assert recovered["alarms"]["fraud-detector-latency-high"] == "OK"
    assert outcomes(recovered) == ["deferred"]
    replay = scene(timeline, "the cooldown ends")
    assert [d["function"] for d in replay["decisions"]] == ["shadowscale-dev-deferred-scaler"]
    assert replay["variants"]["primary"]["instances"] == 7
    assert replay["traffic"]["primary"]["latency_p90_ms"] < 100  # 7 instances still carry the spike


def test_alarm_delivered_by_action_and_rule_has_one_effect(monday: Monday) -> None:
    _, timeline, _ = monday
    candidate = scene(timeline, "a candidate build failing")
    assert candidate["traffic"]["candidate"]["errors_5xx"] > 5
    assert candidate["alarms"]["fraud-detector-candidate-5xx"] == "ALARM"
    assert sorted(outcomes(candidate)) == ["applied", "duplicate"]
    assert candidate["variants"]["candidate"]["weight"] == 0
    fixed = scene(timeline, "a fixed build")
    assert fixed["alarms"]["fraud-detector-candidate-5xx"] == "OK"
    assert sorted(outcomes(fixed)) == ["applied", "duplicate"]
    assert fixed["variants"]["candidate"]["weight"] == 0.1
    assert fixed["traffic"]["candidate"]["requests_per_second"] > 0  # back in traffic
    assert fixed["traffic"]["candidate"]["errors_5xx"] == 0


def test_change_for_a_busy_endpoint_is_retried_until_applied(monday: Monday) -> None:
    _, timeline, _ = monday
    busy = scene(timeline, "someone else updates")
    assert busy["alarms"]["fraud-detector-latency-high"] == "ALARM"
    assert busy["traffic"]["primary"]["latency_p90_ms"] > 100
    assert outcomes(busy) == ["deferred"]
    retried = scene(timeline, "SQS redelivers")
    assert outcomes(retried)[-1] == "applied"
    assert "requeued" in outcomes(retried)
    assert retried["variants"]["primary"]["instances"] == 8
    assert scene(timeline, "the spike passes")["alarms"]["fraud-detector-latency-high"] == "OK"


def test_auto_scaled_variant_gets_its_range_moved_not_its_count(monday: Monday) -> None:
    summary, timeline, _ = monday
    last = timeline[-1]
    assert last["alarms"]["fraud-detector-latency-high"] == "ALARM"
    assert last["traffic"]["primary"]["latency_p90_ms"] > 150  # a late spike on one instance
    assert last["decisions"][0]["changes"][0]["via"] == "scalable-target"
    assert last["scalable_target"] == {"min": 3, "max": 3}
    assert summary["final"]["primary"]["instances"] == 1


def test_function_logs_hold_one_decision_record_per_decision(monday: Monday) -> None:
    _, _, output = monday
    records = [json.loads(line) for line in (output / "function-logs.jsonl").read_text().splitlines() if line]
    decisions = [r for r in records if r.get("message") == "scaling decision"]
    assert decisions
    assert all({"endpoint", "outcome", "changes", "source_event"} <= set(r) for r in decisions)


def test_a_healthy_candidate_is_promoted_and_a_bad_one_rejected(monday: Monday) -> None:
    summary, _, output = monday
    promoted, rejected, _ = summary["shadowTests"]
    assert (promoted["name"], promoted["outcome"], promoted["verdict"]) == ("promote-v2", "promoted", "pass")
    assert promoted["servingVariant"] == "candidate-a"
    assert promoted["finalConfig"].endswith("-promoted")
    assert (rejected["name"], rejected["outcome"], rejected["verdict"]) == ("reject-v3", "rejected", "fail")
    assert rejected["gates"]["latency-p50-ratio"] == "fail"
    # the diff pipeline fed the agreement gate: the bad candidate answers differently, the good one does not
    assert promoted["gates"]["within-tolerance-rate"] == "pass"
    assert rejected["gates"]["within-tolerance-rate"] == "fail"
    for test in (promoted, rejected):
        diffs = test["diffs"]
        assert diffs["final"] is True
        assert diffs["paired"] > 500
        assert diffs["recordsRead"] == 2 * diffs["paired"] + sum(diffs["unpaired"].values())
    assert promoted["diffs"]["withinToleranceRate"] == 1.0
    # candidate-b flips 15 % of labels: about 85 % of its answers agree (3 sigma at ~550 pairs: ±4.5 %)
    assert 0.80 < rejected["diffs"]["withinToleranceRate"] < 0.90
    # the rejected test put the endpoint back on its snapshot: the first test's promoted config
    assert (rejected["servingVariant"], rejected["finalConfig"]) == ("candidate-a", promoted["finalConfig"])
    for test in (promoted, rejected):
        page = Path(test["report"]).read_text()
        assert f'<span class="badge">{test["outcome"]}</span>' in page
        assert 'id="shadowscale-data"' in page  # the charts' data, drawn by the inlined uPlot
        assert (
            page.count("data-metric=") >= 10
        )  # a chart per SageMaker metric (tests/e2e/test_report_browser.py draws them)
        assert (output / "shadow-tests" / f"{test['name']}.json").exists()


def test_the_demo_ran_under_what_aws_enforces_and_waited_for_configs_not_yet_visible(monday: Monday) -> None:
    summary, _, _ = monday
    fidelity = summary["fidelity"]
    # every new endpoint config was invisible for a while, as SageMaker's eventually consistent reads can be,
    # and the shadow tests waited for each (PrepareShadow → StartShadow, Promote) instead of failing
    assert fidelity["configVisibilitySeconds"] > 0
    assert fidelity["configsNotYetVisible"] >= 2
    assert fidelity["retainedCapture"] == "kept"
    # nothing any function needed was missing from its role in template.yaml
    assert fidelity["accessDenied"] == 0


def test_a_test_aborted_mid_bake_is_restored_by_its_recovery_execution(monday: Monday) -> None:
    summary, _, _ = monday
    promoted, _, aborted = summary["shadowTests"]
    # the person's abort ended the execution; one recovery execution put the endpoint back and reported
    assert (aborted["name"], aborted["outcome"]) == ("abort-v4", "aborted")
    assert aborted["recoveries"] == ["SUCCEEDED"]
    assert (aborted["servingVariant"], aborted["finalConfig"]) == ("candidate-a", promoted["finalConfig"])


def test_a_noisy_candidate_fails_the_plain_gate_and_is_promoted_after_a_noise_calibration(monday: Monday) -> None:
    summary, _, _ = monday
    plain, calibrated = summary["calibration"]
    # the same candidate, as noisy as production: rejected by 99 % agreement alone, promoted relative to the noise
    assert (plain["name"], plain["outcome"]) == ("ranker-plain", "removed")
    assert plain["gates"]["within-tolerance-rate"] == "fail"
    assert (calibrated["name"], calibrated["outcome"], calibrated["verdict"]) == (
        "ranker-calibrated",
        "promoted",
        "pass",
    )
    assert calibrated["gates"]["within-tolerance-excess"] == "pass"


def test_a_guarded_promotion_ends_its_ramp_early_on_a_clear_pass_and_its_5xx_alarm_rolls_it_back(
    monday: Monday,
) -> None:
    summary, _, _ = monday
    guarded, promoted = summary["guarded"], summary["shadowTests"][0]
    # GIVEN a candidate that passes, on a ramp with early stopping on a pass
    # THEN the always-valid intervals decided in the ramp's first step, and the agreement interval cleared 95 %
    assert guarded["verdict"] == "pass"
    assert guarded["earlyStop"].startswith("stopped early at step 1 of 2: always-valid 98.75% intervals pass all")
    [deciding] = guarded["deciding"]
    assert deciding.startswith("within-tolerance-rate ")
    report = json.loads(Path(guarded["report"]).with_suffix(".json").read_text())
    assert report["evaluation"]["stepIndex"] == 0  # never ramped to 100 %
    gate = next(gate for gate in report["evaluation"]["gates"] if gate["name"] == "within-tolerance-rate")
    assert gate["method"] == "beta-binomial CS"
    assert gate["lower"] >= 0.95
    # WHEN its promotion ran as a canary under one 5xx rollback alarm, and the new fleet answered 5xx
    deployment = guarded["deployment"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    [alarm] = guarded["alarmsCreated"]
    assert alarm.startswith("shadowscale-dev-promotion-recommender-")
    assert alarm.endswith("-5xx-errors")
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": alarm}]}
    # THEN SageMaker rolled back on that alarm and the test ended rolled-back, saying why
    assert guarded["outcome"] == "rolled-back"
    assert guarded["alarmsFired"] == [alarm]
    assert f"SageMaker: Alarm(s) {alarm} in ALARM state; rolled back" in guarded["reason"]
    assert report["failure"]["error"] == "PromotionRolledBack"
    # ... the endpoint is on its ORIGINAL config (the first test's promotion), not the shadow one, and the
    # promotion's alarms are deleted
    assert guarded["originalConfig"] == promoted["finalConfig"]
    assert (guarded["endpointStatus"], guarded["finalConfig"]) == ("InService", guarded["originalConfig"])
    assert guarded["servingVariant"] == "candidate-a"
    assert guarded["alarmsLeft"] == []


def test_reports_say_whether_their_diff_summary_is_final(monday: Monday) -> None:
    summary, _, _ = monday
    promoted = summary["shadowTests"][0]
    report = json.loads(Path(promoted["report"]).with_suffix(".json").read_text())
    # written when the test ended, before late capture closed the last windows: labelled, with where the
    # final summary appears, whose pair count (diffs show) may only be higher
    assert report["diffSummaryState"] == "provisional"
    assert f"diffs/{promoted['name']}/summary.json" in report["diffNote"]
    assert report["diffSummary"]["paired"] <= promoted["diffs"]["paired"]


# --- a capacity policy and an approve-mode shadow test on one endpoint --------------------------------


def test_production_scales_out_during_the_bake_and_the_tests_heartbeats_are_no_ops(monday: Monday) -> None:
    summary, _, _ = monday
    baked = summary["together"]["baked"]
    scale_outs = [
        change
        for decision in baked["decisions"]
        if decision["function"] == "shadowscale-dev-alarm-scaler" and decision["outcome"] == "applied"
        for change in decision["changes"]
        if change["instances_after"] > change["instances_before"]
    ]
    assert scale_outs, baked["decisions"]
    assert {change["variant"] for change in scale_outs} == {"primary"}
    assert summary["together"]["peakDuringBake"] >= 3
    assert baked["quiet"] > 0  # heartbeats during the test had nothing to do, and said so without failing
    assert not [d for d in baked["decisions"] if d["outcome"] in ("error", "requeued")]


def test_after_the_promotion_the_policys_window_and_alarm_act_on_the_promoted_variant(monday: Monday) -> None:
    together = monday[0]["together"]
    assert together["outcome"] == "promoted"
    assert together["promoted"]["alarm"]["variant"] == "challenger"
    assert list(together["promoted"]["variants"]) == ["challenger"]
    [handover] = [d for d in together["promoted"]["decisions"] if d["function"] == "shadowscale-dev-deferred-scaler"]
    assert handover["outcome"] == "applied"
    assert handover["notes"][0].startswith("policy revision 2: shadow test payments-scorer-v2 promoted 'challenger'")
    assert "alarm 'payments-scorer-latency-high' now watches 'challenger'" in handover["notes"]
    [window] = [d for d in together["window"]["decisions"] if d["function"] == "shadowscale-dev-scheduled-scaler"]
    assert window["outcome"] == "applied"
    assert [(c["variant"], c["instances_after"]) for c in window["changes"]] == [("challenger", 3)]
    [spiked] = [d for d in together["spike"]["decisions"] if d["function"] == "shadowscale-dev-alarm-scaler"]
    assert spiked["source_event"].startswith("alarm:payments-scorer-latency-high:ALARM:")
    [(variant, before, after)] = [
        (c["variant"], c["instances_before"], c["instances_after"]) for c in spiked["changes"]
    ]
    assert variant == "challenger"
    assert after == before + 2
    assert together["spike"]["alarm"] == {"state": "ALARM", "variant": "challenger"}


def test_nothing_was_dead_lettered_and_the_dead_letter_alarm_stayed_ok(monday: Monday) -> None:
    together = monday[0]["together"]
    assert together["deadLettered"] == 0
    assert together["deadLetterAlarm"] == ["OK"]
