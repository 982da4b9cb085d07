"""The shadow test's report (shadow_tests/reports.py, outcomes.py) on in-memory fakes: what it says, where it
is stored, and who is told."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from shadowscale.shadow_tests.models import (
    Approval,
    ChartSeries,
    Decision,
    DiffSummary,
    EndpointSnapshot,
    Finalized,
    MachineState,
    Readiness,
    Recovery,
    ShadowTestPlan,
)
from shadowscale.shadow_tests.outcomes import outcome_of

from tests.shadow_fakes import (
    CANDIDATE,
    DATA_BUCKET,
    ENDPOINT,
    MACHINE,
    ORIGINAL_CONFIG,
    PRODUCTION,
    TOPIC,
    ShadowWorld,
)

FAILURE_LOCKED = {"Error": "EndpointLocked", "Cause": "held by shadow-test:other"}


@pytest.fixture
def world() -> ShadowWorld:
    return ShadowWorld()


def planned(world: ShadowWorld, **overrides: Any) -> tuple[ShadowTestPlan, EndpointSnapshot]:
    plan = world.plan(**overrides)
    world.steps.lock(plan)
    return plan, world.steps.snapshot(plan)


def removed_state(plan: ShadowTestPlan, snapshot: EndpointSnapshot, world: ShadowWorld) -> MachineState:
    return MachineState(
        plan=plan,
        snapshot=snapshot,
        ready=Readiness(config=ORIGINAL_CONFIG, deadline=world.clock.now(), in_service=True),
        decision=Decision(verdict="fail", action="remove", reason="failed gates: latency-p99-ratio"),
        finalized=Finalized(promoted=False, final_config=ORIGINAL_CONFIG, lock_released=True),
    )


def test_given_a_removed_candidate_when_reported_then_json_and_html_sit_side_by_side_and_the_ref_says_so(
    world: ShadowWorld,
) -> None:
    plan, snapshot = planned(world)
    world.clock.advance(minutes=30)
    ref = world.reports.report(removed_state(plan, snapshot, world))
    key = f"s3://{DATA_BUCKET}/reports/{ENDPOINT}/{plan.test_id}/report"
    assert (ref.json_uri, ref.html_uri) == (f"{key}.json", f"{key}.html")
    assert ref.outcome == "removed"
    assert ref.subject == f"shadowscale: removed: shadow test on {ENDPOINT}"
    report = world.objects.report(plan)
    assert (report.outcome, report.verdict, report.reason) == ("removed", "fail", "failed gates: latency-p99-ratio")
    assert report.final_config_name == ORIGINAL_CONFIG
    assert report.finished_at == world.clock.now()
    html = world.objects.objects[(DATA_BUCKET, f"reports/{ENDPOINT}/{plan.test_id}/report.html")]
    assert isinstance(html, str)
    assert "Shadow test on fraud-detector" in html
    assert world.notifier.published == []  # the machine's Notify state sends the final one


def test_given_a_test_that_ran_when_reported_then_both_variants_are_charted_at_about_120_points(
    world: ShadowWorld,
) -> None:
    plan, snapshot = planned(world)
    world.metrics.charts = (ChartSeries(metric="invocations", variant=PRODUCTION, points=()),)
    world.clock.advance(hours=4)
    world.reports.report(removed_state(plan, snapshot, world))
    assert world.metrics.series_asked == [((PRODUCTION, CANDIDATE), 180)]  # 4 h / 120 = 2 min, whole minutes up
    assert world.objects.report(plan).charts == world.metrics.charts


def test_given_a_test_stopped_in_its_first_minute_when_reported_then_no_charts_are_asked_for(
    world: ShadowWorld,
) -> None:
    plan, snapshot = planned(world)
    world.clock.advance(seconds=30)
    world.reports.report(removed_state(plan, snapshot, world))
    assert world.metrics.series_asked == []


def test_given_a_provisional_diff_summary_when_reported_then_it_says_where_and_when_the_final_one_appears(
    world: ShadowWorld,
) -> None:
    plan, snapshot = planned(world)
    world.objects.summaries[(DATA_BUCKET, plan.test_id)] = DiffSummary.of({"paired": 40, "exactMatchRate": 0.9})
    world.reports.report(removed_state(plan, snapshot, world))
    report = world.objects.report(plan)
    assert report.diff_summary == {"paired": 40, "exactMatchRate": 0.9}
    assert report.diff_summary_state == "provisional"
    assert report.diff_summary_uri == f"s3://{DATA_BUCKET}/diffs/{plan.test_id}/summary.json"
    assert report.diff_note is not None
    assert "about 15 minutes after the test ends" in report.diff_note


def test_given_a_final_diff_summary_when_reported_then_it_is_the_last_word(world: ShadowWorld) -> None:
    plan, snapshot = planned(world)
    world.objects.summaries[(DATA_BUCKET, plan.test_id)] = DiffSummary.of({"paired": 40, "final": True})
    world.reports.report(removed_state(plan, snapshot, world))
    report = world.objects.report(plan)
    assert (report.diff_summary_state, report.diff_note) == ("final", None)


def test_given_input_that_never_validated_when_reported_then_the_report_sits_under_the_endpoint_it_names(
    world: ShadowWorld,
) -> None:
    failure = {"Error": "InvalidShadowTestInput", "Cause": "invalid shadow test input: durationMinutes: too short"}
    ref = world.reports.report(
        MachineState(failure=failure), {"endpointName": ENDPOINT}, execution_arn=f"{MACHINE}:bad-1"
    )
    assert ref.outcome == "invalid-input"
    assert ref.json_uri == f"s3://{DATA_BUCKET}/reports/{ENDPOINT}/bad-1/report.json"
    stored = world.objects.objects[(DATA_BUCKET, f"reports/{ENDPOINT}/bad-1/report.json")]
    assert stored.reason == failure["Cause"]
    assert stored.failure == {
        "error": failure["Error"],
        "cause": failure["Cause"],
    }


def test_given_input_naming_no_valid_endpoint_when_reported_then_the_report_sits_under_unknown(
    world: ShadowWorld,
) -> None:
    ref = world.reports.report(MachineState(), {"endpointName": "not a name!"}, execution_arn=f"{MACHINE}:bad-2")
    assert ref.json_uri == f"s3://{DATA_BUCKET}/reports/unknown/bad-2/report.json"


def test_given_a_dry_run_when_reported_then_the_plan_shows_the_requests_and_nothing_is_created(
    world: ShadowWorld,
) -> None:
    plan = world.plan(dryRun=True)
    snapshot = world.steps.snapshot(plan, save=False)
    ref = world.reports.dry_run(plan, snapshot)
    assert ref.outcome == "dry-run"
    report = world.objects.report(plan)
    assert report.planned is not None
    shadow = report.planned["shadowConfig"]
    assert isinstance(shadow, dict)
    assert shadow["EndpointConfigName"] == plan.shadow_config_name
    assert shadow["ShadowProductionVariants"] == [
        {
            "VariantName": CANDIDATE,
            "ModelName": plan.candidate_model_name,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 0.2,
        }
    ]
    assert report.planned["restoresTo"] == ORIGINAL_CONFIG
    assert world.sagemaker.created_configs == []
    assert world.sagemaker.updates == []


def test_given_an_approve_mode_test_when_approval_is_requested_then_the_interim_report_comes_before_the_token(
    world: ShadowWorld,
) -> None:
    plan, snapshot = planned(world, decisionMode="approve")
    state = MachineState(
        plan=plan, snapshot=snapshot, decision=Decision(verdict="pass", action="await-approval", reason="all passed")
    )
    world.reports.request_approval(state, "token-123")
    pending = world.objects.report(plan, "-pending")
    assert pending.outcome == "awaiting-approval"
    assert "all passed" in pending.reason
    assert world.records.load(ENDPOINT).approval_token == "token-123"
    [(topic, subject, message)] = world.notifier.published
    assert topic == TOPIC
    assert subject.startswith("[approval needed] shadowscale: awaiting-approval")
    assert f"shadowscale shadow approve {plan.execution_arn}" in message
    assert pending.html_uri is not None
    assert pending.html_uri in message


def test_given_a_notification_sent_when_marked_then_a_recovery_finds_it(world: ShadowWorld) -> None:
    plan = world.plan()
    world.reports.mark_notified(plan, "arn:execution")
    assert world.objects.exists(plan.reports_bucket, f"{plan.report_prefix}/notified.json")
    assert world.objects.objects[(plan.reports_bucket, f"{plan.report_prefix}/notified.json")]["by"] == "arn:execution"


# --- how it ended ---------------------------------------------------------------------------------------


def test_given_a_promotion_approved_and_completed_by_a_recovery_when_told_then_all_three_are_said(
    world: ShadowWorld,
) -> None:
    state = MachineState(
        decision=Decision(verdict="pass", action="await-approval", reason="all 4 gates passed"),
        approval=Approval(approved=True, by="ana"),
        finalized=Finalized(promoted=True, lock_released=True),
        recovery=Recovery(
            execution_arn="arn:x", ended_as="ABORTED", action="restore", reason="r", recovered_by="arn:y"
        ),
    )
    outcome, reason = outcome_of(state)
    assert outcome == "promoted"
    assert reason == (
        "all 4 gates passed (approved by ana) (completed by the recovery after the execution ended ABORTED)"
    )


@pytest.mark.parametrize(
    ("state", "outcome", "reason"),
    [
        (MachineState(failure=FAILURE_LOCKED), "locked", "held by shadow-test:other"),
        (MachineState(failure={"Error": "ExecutionAborted", "Cause": "stopped"}), "aborted", "stopped"),
        (MachineState(failure={"Error": "ExecutionTimedOut", "Cause": "late"}), "timed-out", "late"),
        (MachineState(failure={"Error": "EndpointUpdateFailed", "Cause": "x"}), "failed", "EndpointUpdateFailed: x"),
        (
            MachineState(approval_timeout={"Error": "States.Timeout"}),
            "rejected",
            "no approval before the approval timeout",
        ),
        (
            MachineState(approval=Approval(approved=False, by="bo", comment="too slow")),
            "rejected",
            "rejected by bo: too slow",
        ),
        (
            MachineState(decision=Decision(verdict="pass", action="remove", reason="report-only mode; all passed")),
            "report-only",
            "report-only mode; all passed",
        ),
        (MachineState(), "removed", "removed"),
    ],
)
def test_given_how_a_test_ended_when_told_then_the_outcome_and_reason_follow(
    state: MachineState, outcome: str, reason: str
) -> None:
    assert outcome_of(state) == (outcome, reason)


def test_given_a_failed_test_when_reported_then_the_failure_is_in_the_report(world: ShadowWorld) -> None:
    plan, snapshot = planned(world)
    world.clock.advance(minutes=2)
    state = MachineState(plan=plan, snapshot=snapshot, failure={"Error": "EndpointUpdateFailed", "Cause": "boom"})
    ref = world.reports.report(state)
    report = world.objects.report(plan)
    assert ref.outcome == "failed"
    assert report.failure == {"error": "EndpointUpdateFailed", "cause": "boom"}
    assert report.charts == ()
    assert world.metrics.series_asked == []
    assert report.started_at == plan.started_at
    assert report.finished_at - plan.started_at == timedelta(minutes=2)


def test_given_a_ramped_test_when_reported_then_the_report_carries_each_sampling_step_for_the_page_markers(
    world: ShadowWorld,
) -> None:
    plan, snapshot = planned(
        world, sampling={"ramp": [{"percent": 10, "bakeMinutes": 10}, {"percent": 50, "bakeMinutes": 10}]}
    )
    world.clock.advance(minutes=30)
    world.reports.report(removed_state(plan, snapshot, world))
    assert world.objects.report(plan).sampling_percents == (10.0, 50.0)
