"""The shadow test's report: built from the machine's state, what CloudWatch and the diff pipeline know, and
the execution's history; stored as JSON and HTML next to each other; announced (the interim report of an
approval, by this module; the final one by the machine's Notify state, from the ReportRef returned here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import JsonValue

from shadowscale.shadow_tests import config_plans
from shadowscale.shadow_tests.bucket_layout import diff_summary_key, notified_key, report_key, report_prefix
from shadowscale.shadow_tests.models import (
    ChartSeries,
    DiffSummary,
    EndpointSnapshot,
    MachineState,
    Outcome,
    ReportRef,
    ShadowTestPlan,
    ShadowTestReport,
)
from shadowscale.shadow_tests.outcomes import outcome_of, verdict_of
from shadowscale.shadow_tests.ports import Notifier, ObjectStore, ShadowTestRecords, Timeline, VariantMetrics
from shadowscale.shadow_tests.report_page import notification, render_html
from shadowscale.shadow_tests.sagemaker_documents import config_request
from shadowscale.shared.clock import Clock
from shadowscale.shared.validation import SAGEMAKER_NAME


@dataclass
class ShadowTestReports:
    objects: ObjectStore
    metrics: VariantMetrics
    timeline: Timeline
    notifier: Notifier
    records: ShadowTestRecords
    clock: Clock
    data_bucket: str

    def report(
        self,
        state: MachineState,
        raw_input: object = None,
        *,
        outcome: Outcome | None = None,
        execution_arn: str = "unknown",
    ) -> ReportRef:
        plan = state.plan
        if plan is None:  # invalid input: nothing was touched; the report says why, next to the input
            return self._report_invalid(state, raw_input, execution_arn)
        report = self._build(plan, state, outcome=outcome)
        return reference(self._store(plan.reports_bucket, plan.report_prefix, report, state.snapshot))

    def _report_invalid(self, state: MachineState, raw_input: object, execution_arn: str) -> ReportRef:
        endpoint = raw_input.get("endpointName") if isinstance(raw_input, dict) else None
        endpoint_name = endpoint if isinstance(endpoint, str) and re.fullmatch(SAGEMAKER_NAME, endpoint) else "unknown"
        test_id = ShadowTestPlan.test_id_of(execution_arn)
        report = ShadowTestReport(
            test_id=test_id,
            execution_arn=execution_arn,
            endpoint=endpoint_name,
            outcome="invalid-input",
            reason=state.failure_cause,
            finished_at=self.clock.now(),
            failure={"error": state.failure_error or "", "cause": state.failure_cause},
        )
        return reference(self._store(self.data_bucket, report_prefix(endpoint_name, test_id), report, None))

    def dry_run(
        self, plan: ShadowTestPlan, snapshot: EndpointSnapshot, guarded_promotion: dict[str, JsonValue] | None = None
    ) -> ReportRef:
        """The plan of every change the test would make to the endpoint as `snapshot` found it;
        `guarded_promotion`: the alarms and DeploymentConfig a guarded promotion would send."""
        report = ShadowTestReport(
            test_id=plan.test_id,
            execution_arn=plan.execution_arn,
            endpoint=plan.endpoint,
            outcome="dry-run",
            reason="dryRun: nothing was created or changed",
            started_at=plan.started_at,
            finished_at=self.clock.now(),
            candidate=plan.request.candidate.model_dump(by_alias=True, exclude_none=True),
            final_config_name=snapshot.config_name,
            planned=dry_run_plan(plan, snapshot, guarded_promotion),
            timeline=self.timeline.timeline(plan.execution_arn),
        )
        return reference(self._store(plan.reports_bucket, plan.report_prefix, report, snapshot))

    def request_approval(self, state: MachineState, token: str) -> None:
        """The interim report, the task token where `shadowscale shadow approve` finds it, and the notice."""
        plan = _require_plan(state)
        decided = state.decision.reason if state.decision else "the gates were evaluated"
        report = self._build(
            plan,
            state,
            outcome="awaiting-approval",
            reason=f"awaiting approval: {decided}; the candidate keeps receiving shadow traffic until a decision",
        )
        report = self._store(plan.reports_bucket, plan.report_prefix, report, state.snapshot, "-pending")
        # The token is stored once the interim report exists: whoever finds it can read what they approve.
        self.records.save_approval_token(plan.endpoint, plan.owner, token)
        commands = [
            f"shadowscale shadow approve {plan.execution_arn}",
            f"shadowscale shadow reject {plan.execution_arn} --comment '<why>'",
            "aws stepfunctions send-task-success --task-token <token from `shadowscale shadow status`> "
            '--task-output \'{"approved": true, "by": "<you>"}\'',
        ]
        subject, message = notification(report, commands)
        self.notifier.publish(plan.notification_topic_arn, f"[approval needed] {subject}", message)

    def mark_notified(self, plan: ShadowTestPlan, by: str) -> None:
        """Notify published: say so next to the report, so a recovery does not send it again."""
        self.objects.mark_notified(plan.reports_bucket, notified_key(plan.report_prefix), self.clock.now(), by)

    def _build(
        self, plan: ShadowTestPlan, state: MachineState, *, outcome: Outcome | None, reason: str | None = None
    ) -> ShadowTestReport:
        decided, why = outcome_of(state)
        now = self.clock.now()
        diff = self.objects.diff_summary(self.data_bucket, plan.test_id)
        diff_state, diff_note = _diff_state(plan, diff, self.data_bucket, state.snapshot)
        return ShadowTestReport(
            test_id=plan.test_id,
            execution_arn=plan.execution_arn,
            endpoint=plan.endpoint,
            outcome=outcome or decided,
            verdict=verdict_of(state),
            reason=reason or why,
            started_at=plan.started_at,
            finished_at=now,
            candidate=plan.request.candidate.model_dump(by_alias=True, exclude_none=True),
            final_config_name=state.finalized.final_config if state.finalized else None,
            evaluation=state.progress,
            approval=state.approval,
            timeline=self.timeline.timeline(plan.execution_arn),
            sampling_percents=tuple(step.percent for step in plan.request.steps),
            charts=self._charts(plan, state, now),
            diff_summary=diff.document if diff is not None else None,
            diff_summary_state=diff_state,
            diff_summary_uri=f"s3://{self.data_bucket}/{diff_summary_key(plan.test_id)}" if diff is not None else None,
            diff_note=diff_note,
            failure={"error": state.failure_error or "", "cause": state.failure_cause} if state.failure else None,
        )

    def _charts(self, plan: ShadowTestPlan, state: MachineState, now: datetime) -> tuple[ChartSeries, ...]:
        snapshot = state.snapshot
        # GetMetricData refuses an empty interval: a test stopped within its first minute has no charts.
        if snapshot is None or state.ready is None or now - plan.started_at < timedelta(minutes=1):
            return ()
        return self.metrics.series(
            plan.endpoint,
            [snapshot.production_variant_name, plan.request.candidate.variant_name],
            plan.started_at,
            now,
            period=chart_period(plan.started_at, now),
        )

    def _store(
        self,
        bucket: str,
        prefix: str,
        report: ShadowTestReport,
        snapshot: EndpointSnapshot | None,
        suffix: str = "",
    ) -> ShadowTestReport:
        """Write report.json and report.html under `prefix`; return the report with both URIs in it."""
        key = report_key(prefix, suffix)
        report = report.model_copy(
            update={"json_uri": f"s3://{bucket}/{key}.json", "html_uri": f"s3://{bucket}/{key}.html"}
        )
        shadow = str(report.candidate.get("variantName")) if report.candidate else None
        html = render_html(report, snapshot.production_variant_name if snapshot else None, shadow)
        self.objects.put_report(bucket, key, report, html)
        return report


def reference(report: ShadowTestReport) -> ReportRef:
    """What the machine carries on to its Notify state."""
    subject, message = notification(report)
    return ReportRef(
        json_uri=report.json_uri or "",
        html_uri=report.html_uri or "",
        outcome=report.outcome,
        subject=subject,
        message=message,
    )


def dry_run_plan(
    plan: ShadowTestPlan, snapshot: EndpointSnapshot, guarded_promotion: dict[str, JsonValue] | None = None
) -> dict[str, Any]:
    """What the test would create and change, for `dryRun: true`: the requests as SageMaker (and, for a
    guarded promotion, CloudWatch) would get them."""
    planned: dict[str, Any] = {
        "shadowConfig": config_request(config_plans.shadow_config(plan, snapshot)),
        "promotedConfig": config_request(config_plans.promoted_config(plan, snapshot)),
        "steps": [step.model_dump(mode="json", by_alias=True) for step in plan.request.steps],
        "restoresTo": snapshot.config_name,
        "scalingTargets": [target.model_dump(mode="json", by_alias=True) for target in snapshot.scaling_targets],
    }
    if guarded_promotion is not None:  # the rollback alarms and the UpdateEndpoint DeploymentConfig naming them
        planned["guardedPromotion"] = guarded_promotion
    if plan.request.calibration is not None:  # the A/A phase's config comes first
        planned["noiseConfig"] = config_request(config_plans.noise_config(plan, snapshot))
    return planned


def chart_period(start: datetime, end: datetime) -> int:
    """About 120 points whatever the test's length, in whole minutes."""
    seconds = max(60.0, (end - start).total_seconds() / 120)
    return int(seconds // 60 + 1) * 60


def _diff_state(
    plan: ShadowTestPlan, diff: DiffSummary | None, bucket: str, snapshot: EndpointSnapshot | None
) -> tuple[Literal["final", "provisional"] | None, str | None]:
    """Whether the diff summary in a report is the last word, and if not, where the last word will be."""
    if diff is None:
        return None, None
    if diff.final:
        return "final", None
    lateness = config_plans.diff_config(plan, snapshot, bucket) if snapshot is not None else None
    wait = f" about {lateness.allowed_lateness_seconds // 60} minutes after the test ends" if lateness else ""
    return "provisional", (
        f"provisional: capture still lands after the report is written, so windows are still open. The final"
        f" summary appears at s3://{bucket}/{diff_summary_key(plan.test_id)}{wait}"
        f" (`shadowscale diffs show {plan.test_id}`); its pair count may be higher than the one here and in the gates."
    )


def _require_plan(state: MachineState) -> ShadowTestPlan:
    if state.plan is None:
        raise ValueError("the state has no plan")
    return state.plan
