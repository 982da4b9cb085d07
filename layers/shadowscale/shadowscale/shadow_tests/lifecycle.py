"""The shadow test's steps, one method per state-machine task, over injected ports.

The state machine (statemachine/shadow_test.asl.json) owns the order, the waits and the retries; each
method here does one step and raises a typed error the machine's Retry/Catch clauses name. The restore
path (restore → wait → finalize) is also what the cleanup function runs after an abort or a timeout,
so every terminal path puts the endpoint back the same way.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shadowscale.shadow_tests import config_plans
from shadowscale.shadow_tests.models import (
    AgreementStats,
    ChartSeries,
    Decision,
    EndpointSnapshot,
    Evaluation,
    Finalized,
    MachineState,
    Outcome,
    Readiness,
    Recovery,
    RecoveryAction,
    RecoveryRequest,
    ReportRef,
    ShadowTestPlan,
    ShadowTestReport,
    VariantStats,
    lease_owner,
    parse_shadow_test_input,
)
from shadowscale.shadow_tests.ports import (
    EndpointConfigs,
    ExecutionFacts,
    Notifier,
    ObjectStore,
    ScalingRegistry,
    TestRecords,
    Timeline,
    VariantMetrics,
)
from shadowscale.shadow_tests.report_page import notification, render_html
from shadowscale.shared.clock import Clock
from shadowscale.shared.diff_contract import CloseDiffs, DiffCloser, diff_config_key
from shadowscale.shared.endpoint import ScalingTargetSnapshot
from shadowscale.shared.endpoint_state import EndpointStateStore
from shadowscale.shared.errors import (
    EndpointBusy,
    EndpointConfigNotVisible,
    EndpointHeld,
    EndpointLocked,
    EndpointNotInService,
    EndpointStateMismatch,
    EndpointUpdateFailed,
    InvalidShadowTestInput,
    LockLost,
    RecoveryRefused,
    ShadowSamplingRefused,
    UnsupportedEndpoint,
)
from shadowscale.shared.handover import PromotionAnnouncer, PromotionHandover
from shadowscale.shared.observability import logger
from shadowscale.shared.validation import SAGEMAKER_NAME

IN_SERVICE = "InService"
FAILED_STATUSES = {"Failed", "UpdateRollbackFailed"}
# How long past the planned end the lease still holds: waits for InService, approval, clean-up.
LEASE_MARGIN_SECONDS = 6 * 3600
# How long a restore waits for SageMaker to finish (or roll back) an update before it gives up.
RESTORE_PATIENCE = timedelta(hours=6)
# How long the lease stays with a test whose recovery runs: the recovery machine's own timeout.
RECOVERY_LEASE_SECONDS = 36 * 3600


def diff_summary_key(test_id: str) -> str:
    """Where the response-diff pipeline keeps the test's running summary (see the README)."""
    return f"diffs/{test_id}/summary.json"


@dataclass
class ShadowLifecycle:
    configs: EndpointConfigs
    scaling: ScalingRegistry
    leases: EndpointStateStore
    records: TestRecords
    metrics: VariantMetrics
    objects: ObjectStore
    notifier: Notifier
    timeline: Timeline
    diffs: DiffCloser
    handover: PromotionAnnouncer
    clock: Clock
    data_bucket: str
    default_topic_arn: str

    # --- validate, lock, snapshot ------------------------------------------------------------

    def validate(self, raw: object, *, execution_arn: str) -> ShadowTestPlan:
        request = parse_shadow_test_input(raw)
        return ShadowTestPlan.create(
            request,
            execution_arn=execution_arn,
            # The injected clock, not $$.Execution.StartTime: the same instant in AWS, and the
            # accelerated clock's instant in the local cloud.
            started_at=self.clock.now(),
            data_bucket=self.data_bucket,
            default_topic_arn=self.default_topic_arn,
        )

    def lock(self, plan: ShadowTestPlan) -> None:
        """Own the endpoint for the whole test (EndpointLocked if another test does), and hold it exclusively
        while the shadow goes on (EndpointHeld if an autopilot invocation holds it this moment: retried)."""
        request = plan.request
        planned = (
            request.duration_minutes * 60
            + 3 * request.in_service_timeout_minutes * 60
            + (request.approval_timeout_minutes * 60 if request.decision_mode == "approve" else 0)
        )
        self.records.claim_test(plan.endpoint, plan.owner, planned + LEASE_MARGIN_SECONDS, self.clock.now())
        try:
            self._hold(plan)
        except EndpointHeld:
            self.records.release(plan.endpoint, plan.owner)  # all or nothing: the retry claims again
            raise

    def _hold(self, plan: ShadowTestPlan, seconds: int | None = None) -> None:
        """The exclusive writer hold, taken before each change of the endpoint (re-taking it is a no-op).

        Between changes the test lets go, so the autopilot keeps resizing production during the bake; a
        change of its that meets the hold waits for it (the autopilot defers) and is applied right after."""
        patience = seconds or (3 * plan.request.in_service_timeout_minutes * 60 + LEASE_MARGIN_SECONDS)
        try:
            self.leases.acquire(plan.endpoint, plan.owner, patience, self.clock.now())
        except EndpointLocked as held:
            raise EndpointHeld(f"endpoint {plan.endpoint!r} is held by {held.owner!r} for a moment") from held

    def _let_go(self, plan: ShadowTestPlan) -> None:
        # LockLost: it had expired, so nobody holds it for us any more, which is what letting go means.
        with contextlib.suppress(LockLost):
            self.leases.release(plan.endpoint, plan.owner, None)

    def snapshot(self, plan: ShadowTestPlan, *, save: bool = True) -> EndpointSnapshot:
        described = self.configs.describe_endpoint(plan.endpoint)
        if described.get("EndpointStatus") != IN_SERVICE:
            raise EndpointBusy(f"endpoint {plan.endpoint!r} is {described.get('EndpointStatus')}, not InService")
        if described.get("ShadowProductionVariants"):
            raise UnsupportedEndpoint(f"endpoint {plan.endpoint!r} already runs a shadow variant")
        config_name = str(described["EndpointConfigName"])
        config = self.configs.describe_config(config_name)
        if config is None:
            raise UnsupportedEndpoint(f"endpoint {plan.endpoint!r} runs config {config_name!r}, which no longer exists")
        variants = config.get("ProductionVariants", [])
        if len(variants) != 1:
            raise UnsupportedEndpoint(
                f"endpoint {plan.endpoint!r} has {len(variants)} production variants; a shadow test needs exactly one"
            )
        if variants[0]["VariantName"] == plan.request.candidate.variant_name:
            raise UnsupportedEndpoint(
                f"candidate.variantName {plan.request.candidate.variant_name!r} is the production variant's name"
            )
        self.configs.describe_model(plan.request.candidate.model_name)  # raises ModelNotFound
        live = {variant["VariantName"]: variant for variant in described.get("ProductionVariants", [])}
        names = list(live)
        snapshot = EndpointSnapshot(
            endpoint=plan.endpoint,
            config_name=config_name,
            production_variants=tuple(_jsonable(variant) for variant in variants),
            current_instances={
                name: int(v.get("CurrentInstanceCount") or v.get("DesiredInstanceCount") or 1)
                for name, v in live.items()
            },
            current_weights={name: float(v.get("CurrentWeight", 1.0)) for name, v in live.items()},
            data_capture=_jsonable(config["DataCaptureConfig"]) if config.get("DataCaptureConfig") else None,
            kms_key_id=config.get("KmsKeyId"),
            scaling_targets=self.scaling.snapshot(plan.endpoint, names),
            taken_at=self.clock.now(),
        )
        if save:
            self.records.save(plan.endpoint, plan.owner, _record(plan, snapshot))
        return snapshot

    # --- shadow on ----------------------------------------------------------------------------

    def prepare(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> None:
        candidate = plan.request.candidate
        if plan.derived_model_name is not None:
            base = self.configs.describe_model(candidate.model_name)
            container = dict(base.get("PrimaryContainer") or (base.get("Containers") or [{}])[0])
            container.pop("ModelDataSource", None) if "ModelDataUrl" in container else None
            if candidate.container_image:
                container["Image"] = candidate.container_image
            if candidate.environment is not None:
                container["Environment"] = {**container.get("Environment", {}), **candidate.environment}
            request: dict[str, Any] = {
                "ModelName": plan.derived_model_name,
                "ExecutionRoleArn": base["ExecutionRoleArn"],
                "PrimaryContainer": container,
                "Tags": [{"Key": "shadowscale:test", "Value": plan.test_id}],
            }
            if base.get("VpcConfig"):
                request["VpcConfig"] = base["VpcConfig"]
            self.configs.create_model(request)
        diffs = config_plans.diff_config(plan, snapshot, self.data_bucket)
        if diffs is not None:
            # Before the shadow is on: the first capture object finds how to compare it.
            body = diffs.model_dump_json(by_alias=True).encode()
            self.objects.put(self.data_bucket, diff_config_key(plan.test_id), body, "application/json")
        self.configs.create_config(config_plans.shadow_config_request(plan, snapshot))

    def start_shadow(self, plan: ShadowTestPlan) -> Readiness:
        # The shadow config carries the production variant's live count and weight from the snapshot.
        self._move_to(plan, plan.shadow_config_name)
        return self._heading_to(plan, plan.shadow_config_name)

    def _move_to(self, plan: ShadowTestPlan, config: str) -> None:
        """UpdateEndpoint unless a retried task already did it (the endpoint names the config)."""
        described = self.configs.describe_endpoint(plan.endpoint)
        if described.get("EndpointConfigName") == config and described.get("EndpointStatus") in (
            IN_SERVICE,
            "Updating",
        ):
            return
        # SageMaker's reads are eventually consistent: look before UpdateEndpoint, as its docs advise.
        if self.configs.describe_config(config) is None:
            raise EndpointConfigNotVisible(f"endpoint config {config!r} is not visible yet")
        self.configs.update_endpoint(plan.endpoint, config)

    def _verify_live(self, plan: ShadowTestPlan, described: dict[str, Any], config: dict[str, Any] | None) -> None:
        """The update reached InService: is the endpoint what the config asked for?"""
        if config is None:
            return
        differences = config_plans.live_mismatches(config, described)
        if differences:
            raise EndpointStateMismatch(
                f"endpoint {plan.endpoint!r} is InService on {described.get('EndpointConfigName')!r} but "
                + "; ".join(differences)
            )

    def _heading_to(self, plan: ShadowTestPlan, config: str) -> Readiness:
        deadline = self.clock.now() + timedelta(minutes=plan.request.in_service_timeout_minutes)
        return Readiness(config=config, deadline=deadline)

    def check_ready(self, plan: ShadowTestPlan, ready: Readiness) -> Readiness:
        described = self.configs.describe_endpoint(plan.endpoint)
        status = str(described.get("EndpointStatus"))
        current = str(described.get("EndpointConfigName"))
        if status in FAILED_STATUSES:
            raise EndpointUpdateFailed(f"endpoint {plan.endpoint!r} is {status}: {described.get('FailureReason', '')}")
        if status == IN_SERVICE and current == ready.config:
            self._verify_live(plan, described, self.configs.describe_config(ready.config))
            if ready.config != plan.promoted_config_name:  # a promotion keeps its hold until finalize
                self._let_go(plan)
            return ready.model_copy(update={"in_service": True, "status": status})
        if status == IN_SERVICE and current != ready.config:
            raise EndpointUpdateFailed(
                f"endpoint {plan.endpoint!r} is back on {current!r} instead of {ready.config!r}: "
                f"{described.get('FailureReason', 'update rolled back')}"
            )
        if self.clock.now() >= ready.deadline:
            raise EndpointNotInService(
                f"endpoint {plan.endpoint!r} still {status} on its way to {ready.config!r} after "
                f"{plan.request.in_service_timeout_minutes} min"
            )
        return ready.model_copy(update={"status": status})

    # --- bake, ramp, evaluate ------------------------------------------------------------------

    def evaluate(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot, progress: Evaluation | None) -> Evaluation:
        request = plan.request
        now = self.clock.now()
        production, shadow = snapshot.production_variant_name, request.candidate.variant_name
        if progress is None:  # the shadow just became InService: the first step starts now
            step_index, step_started_at, count = 0, now, 0
            stats = {production: VariantStats(), shadow: VariantStats()}
            latest = stats
        else:
            step_index, step_started_at, count = progress.step_index, progress.step_started_at, progress.evaluations
            stats = self.metrics.variant_stats(plan.endpoint, [production, shadow], step_started_at, now)
            period_start = max(step_started_at, now - timedelta(minutes=request.evaluation_period_minutes))
            latest = self.metrics.variant_stats(plan.endpoint, [production, shadow], period_start, now)
        agreement = self._agreement(plan)
        gates, verdict = config_plans.evaluate_gates(request, stats[production], stats[shadow], agreement)
        breach = config_plans.hard_limit_breach(request, latest[production], latest[shadow]) if progress else None
        following, next_index, wait = config_plans.next_step(
            request,
            step_index=step_index,
            step_started_at=step_started_at,
            test_started_at=plan.started_at,
            now=now,
            breached=breach is not None,
        )
        evaluation = Evaluation(
            at=now,
            step_index=next_index,
            step_started_at=now if following == "ramp" else step_started_at,
            window_start=step_started_at,
            production=stats[production],
            shadow=stats[shadow],
            agreement=agreement,
            gates=gates,
            verdict=verdict,
            hard_limit_breached=breach,
            next=following,
            wait_seconds=wait,
            evaluations=count + 1,
        )
        logger.info(
            "shadow test evaluation",
            extra={
                "endpoint": plan.endpoint,
                "test": plan.test_id,
                "verdict": verdict,
                "next": following,
                "step": next_index,
                "gates": {gate.name: gate.status for gate in gates},
            },
        )
        return evaluation

    def _agreement(self, plan: ShadowTestPlan) -> AgreementStats | None:
        key = diff_summary_key(plan.test_id)
        summary = self.objects.get_json(self.data_bucket, key)
        if summary is None:
            return None
        return AgreementStats(
            paired=int(summary.get("paired", 0)),
            exact_match_rate=summary.get("exactMatchRate"),
            within_tolerance_rate=summary.get("withinToleranceRate"),
            summary_key=key,
            final=bool(summary.get("final", False)),
            summary_updated_at=summary.get("updatedAt"),
        )

    def set_sampling(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot, progress: Evaluation) -> Readiness:
        """The next ramp step: the shadow's weight in place, or, where SageMaker refuses that for a shadow
        variant, a new config with the step's weight (then the machine waits for InService again)."""
        step = plan.request.steps[progress.step_index]
        weight = config_plans.shadow_weight(config_plans.production_weight(snapshot), step.percent)
        ramp_config = plan.ramp_config_name(progress.step_index)
        self._hold(plan)
        described = self.configs.describe_endpoint(plan.endpoint)
        if described.get("EndpointConfigName") == ramp_config:  # a retried task already moved it
            return self._heading_to(plan, ramp_config)
        try:
            self.configs.set_variant_weight(plan.endpoint, plan.request.candidate.variant_name, weight)
        except ShadowSamplingRefused as refused:
            logger.info("ramp by endpoint config", extra={"test": plan.test_id, "reason": str(refused)})
            production = snapshot.production_variant_name
            live = {str(v.get("VariantName")): v for v in described.get("ProductionVariants", [])}
            count = live.get(production, {}).get("CurrentInstanceCount")
            instances = int(count) if isinstance(count, int) else None
            self.configs.create_config(config_plans.ramp_config_request(plan, snapshot, progress.step_index, instances))
            self._move_to(plan, ramp_config)
            return self._heading_to(plan, ramp_config)
        current = str(described.get("EndpointConfigName"))
        self._let_go(plan)  # the weight changed in place: nothing to wait for
        return Readiness(config=current, deadline=self.clock.now(), in_service=True, status=IN_SERVICE)

    def decide(self, plan: ShadowTestPlan, progress: Evaluation) -> Decision:
        return config_plans.decide(plan.request, progress)

    def request_approval(self, state: MachineState, token: str) -> None:
        plan = _require_plan(state)
        decided = state.decision.reason if state.decision else "the gates were evaluated"
        report = self._build_report(
            state,
            outcome="awaiting-approval",
            reason=f"awaiting approval: {decided}; the candidate keeps receiving shadow traffic until a decision",
        )
        report = self._store_report(plan.reports_bucket, plan.report_prefix, report, state.snapshot, "-pending")
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

    # --- promote or remove ----------------------------------------------------------------------

    def promote(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> Readiness:
        # Auto Scaling follows variant names: the old production variant's target goes, and is
        # registered again on the promoted variant once it is InService (finalize), as it is now: the
        # autopilot may have moved its bounds during the test, and those are the ones carried over.
        self._hold(plan)
        live = self.scaling.snapshot(plan.endpoint, [snapshot.production_variant_name])
        if live and live != snapshot.scaling_targets:  # a retried promote finds them gone: keep the record
            self.records.save(
                plan.endpoint, plan.owner, _record(plan, snapshot.model_copy(update={"scaling_targets": live}))
            )
        for target in snapshot.scaling_targets:
            self.scaling.deregister(plan.endpoint, target.variant)
        live_count = _instances(self.configs.describe_endpoint(plan.endpoint), snapshot.production_variant_name)
        self.configs.create_config(config_plans.promoted_config_request(plan, snapshot, live_count))
        self._move_to(plan, plan.promoted_config_name)
        return self._heading_to(plan, plan.promoted_config_name)

    def restore(
        self, plan: ShadowTestPlan, snapshot: EndpointSnapshot | None, ready: Readiness | None = None
    ) -> Readiness:
        """One step back to a clean endpoint; the machine calls it until `in_service`.

        Where back is: the promoted config if the promotion's update was made and has not failed (a
        finished promotion is never undone, one in flight is seen through), else the snapshot's config,
        created again from the snapshot if someone deleted it meanwhile. Re-entrant: while an update (ours,
        or one rolling back) runs it only waits, for at most RESTORE_PATIENCE; once the endpoint is
        InService elsewhere it updates back, then puts back the production variant's count as it was live
        when the restore began (the config's count may be older); a no-op if it never left. Once there,
        the live endpoint is checked against what it should be.
        """
        self._hold(plan, int(RESTORE_PATIENCE.total_seconds()) + LEASE_MARGIN_SECONDS)
        described = self.configs.describe_endpoint(plan.endpoint)
        status, current = str(described.get("EndpointStatus")), str(described.get("EndpointConfigName"))
        promoted = self._promotion_stands(plan, described)
        target = plan.promoted_config_name if promoted else (snapshot.config_name if snapshot is not None else current)
        now = self.clock.now()
        resuming = ready is not None and ready.config == target
        deadline = ready.deadline if ready is not None and resuming else now + RESTORE_PATIENCE
        production = snapshot.production_variant_name if snapshot is not None and not promoted else None
        live_count = _instances(described, production)
        instances = ready.production_instances if ready is not None and resuming else live_count
        back = current == target and not described.get("ShadowProductionVariants")
        heading = Readiness(config=target, deadline=deadline, status=status, production_instances=instances)
        if status == IN_SERVICE and back:
            if production is not None and instances is not None and live_count not in (None, instances):
                self.configs.set_instance_count(plan.endpoint, production, instances)
                return heading.model_copy(update={"status": "Updating"})
            if promoted:
                self._verify_live(plan, described, self.configs.describe_config(target))
            elif snapshot is not None:
                restored = {
                    "ProductionVariants": snapshot.production_variants,
                    "DataCaptureConfig": snapshot.data_capture,
                }
                self._verify_live(plan, described, restored)
            return heading.model_copy(update={"in_service": True})
        if status in (IN_SERVICE, *FAILED_STATUSES) and not back:
            # Our own calls are not bounded by the deadline: the machine's retries outlast an outage.
            if snapshot is not None and target == snapshot.config_name and self.configs.describe_config(target) is None:
                logger.warning(
                    "original endpoint config is gone; creating it again from the snapshot",
                    extra={"test": plan.test_id, "config": target},
                )
                self.configs.create_config(config_plans.original_config_request(snapshot))
                raise EndpointConfigNotVisible(
                    f"endpoint config {target!r} was deleted; created again from the snapshot"
                )
            self.configs.update_endpoint(plan.endpoint, target)
            return heading.model_copy(update={"status": "Updating"})
        if now >= deadline:
            raise EndpointNotInService(f"endpoint {plan.endpoint!r} still {status} on {current!r}; restore gave up")
        return heading

    def _scaling_to_restore(
        self, plan: ShadowTestPlan, snapshot: EndpointSnapshot
    ) -> tuple[ScalingTargetSnapshot, ...]:
        """The registrations to put back: as the record has them (promote saves them as they were when it
        removed them), else as the snapshot took them."""
        stored = self.records.load(plan.endpoint)
        if stored.owner == plan.owner and stored.record is not None:
            recorded = EndpointSnapshot.model_validate(json.loads(stored.record)["snapshot"])
            return recorded.scaling_targets
        return snapshot.scaling_targets

    def _promotion_stands(self, plan: ShadowTestPlan, described: dict[str, Any]) -> bool:
        """The endpoint is on (or updating to) the promoted config, and that update has not failed."""
        if described.get("EndpointConfigName") != plan.promoted_config_name:
            return False
        if described.get("ShadowProductionVariants"):
            return False
        status = str(described.get("EndpointStatus"))
        if status in FAILED_STATUSES:
            return False
        if status != IN_SERVICE:
            return True  # Updating towards it (or a system update): see it through
        config = self.configs.describe_config(plan.promoted_config_name)
        return config is not None and not config_plans.live_mismatches(config, described)

    def finalize(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot | None) -> Finalized:
        """Auto Scaling as it was (or carried over to the promoted variant), temporaries deleted, lock released.

        Re-entrant: every registration is put back whole (target and policies: both calls are upserts), so
        a retry after a half-done finalize leaves no target without its policies."""
        self._hold(plan)
        described = self.configs.describe_endpoint(plan.endpoint)
        current = str(described.get("EndpointConfigName"))
        promoted = current == plan.promoted_config_name and described.get("EndpointStatus") == IN_SERVICE
        candidate = plan.request.candidate.variant_name
        if snapshot is not None:
            targets = self._scaling_to_restore(plan, snapshot)
            production = snapshot.production_variant_name
            # One read of both variants' targets and policies (the snapshot call) serves every check below.
            registered = {
                found.variant: found for found in self.scaling.snapshot(plan.endpoint, [production, candidate])
            }
            for target in targets:
                variant = candidate if promoted else target.variant
                # A target the test never removed keeps what it has now (the autopilot may have moved its
                # bounds); one it removed, or one without its policies, is put back whole.
                live = registered.get(variant)
                if live is None or promoted or not _has_policies(live, target):
                    self.scaling.restore(plan.endpoint, target, variant=variant)
            if not promoted and targets and candidate in registered:
                # A target carried over by an earlier finalize to a promotion that did not stand.
                self.scaling.deregister(plan.endpoint, candidate)
        deleted = []
        temporary = [plan.shadow_config_name, *plan.ramp_config_names] + (
            [] if promoted else [plan.promoted_config_name]
        )
        for config in temporary:
            if config != current and self.configs.delete_config(config):
                deleted.append(config)
        if plan.derived_model_name and not promoted and self.configs.delete_model(plan.derived_model_name):
            deleted.append(plan.derived_model_name)
        if promoted and snapshot is not None:
            # The capacity policy follows the promotion (the capacity side writes it, on its own queue);
            # sent before the lock goes, so a failed send is retried with the rest of finalize.
            self.handover.announce(
                PromotionHandover(
                    endpoint=plan.endpoint,
                    test_id=plan.test_id,
                    from_variant=snapshot.production_variant_name,
                    to_variant=candidate,
                    promoted_at=self.clock.now(),
                    instances=_instances(described, candidate),
                    variants=tuple(str(v["VariantName"]) for v in described.get("ProductionVariants", [])),
                )
            )
        released = self.records.release(plan.endpoint, plan.owner)
        self._let_go(plan)
        diffs = config_plans.diff_config(plan, snapshot, self.data_bucket) if snapshot is not None else None
        if diffs is not None:
            # Capture stops now but lands late: the pipeline closes the test's windows once it has.
            try:
                self.diffs.close(
                    CloseDiffs(test_id=plan.test_id, ended_at=self.clock.now()),
                    delay_seconds=diffs.allowed_lateness_seconds,
                )
            except Exception as exc:
                logger.warning(
                    "could not ask the diff pipeline to close", extra={"test": plan.test_id, "error": str(exc)}
                )
        return Finalized(promoted=promoted, final_config=current, deleted=tuple(deleted), lock_released=released)

    # --- report ----------------------------------------------------------------------------------

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
        report = self._build_report(state, outcome=outcome)
        return _reference(self._store_report(plan.reports_bucket, plan.report_prefix, report, state.snapshot))

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
        prefix = f"reports/{endpoint_name}/{test_id}"  # the layout ShadowTestPlan.report_prefix uses
        return _reference(self._store_report(self.data_bucket, prefix, report, None))

    def _build_report(
        self, state: MachineState, *, outcome: Outcome | None, reason: str | None = None
    ) -> ShadowTestReport:
        plan = _require_plan(state)
        snapshot = state.snapshot
        decided, why = _outcome(state)
        production = snapshot.production_variant_name if snapshot else None
        now = self.clock.now()
        charts: tuple[ChartSeries, ...] = ()
        # GetMetricData refuses an empty interval: a test stopped within its first minute has no charts.
        if snapshot is not None and state.ready is not None and now - plan.started_at >= timedelta(minutes=1):
            charts = self.metrics.series(
                plan.endpoint,
                [production or "", plan.request.candidate.variant_name],
                plan.started_at,
                now,
                period=_chart_period(plan.started_at, now),
            )
        diff = self.objects.get_json(self.data_bucket, diff_summary_key(plan.test_id))
        diff_state, diff_note = _diff_state(plan, diff, self.data_bucket, snapshot)
        return ShadowTestReport(
            test_id=plan.test_id,
            execution_arn=plan.execution_arn,
            endpoint=plan.endpoint,
            outcome=outcome or decided,
            verdict=state.decision.verdict if state.decision else (state.progress.verdict if state.progress else None),
            reason=reason or why,
            started_at=plan.started_at,
            finished_at=now,
            candidate=plan.request.candidate.model_dump(by_alias=True, exclude_none=True),
            final_config_name=state.finalized.final_config if state.finalized else None,
            evaluation=state.progress,
            approval=state.approval,
            timeline=self.timeline.timeline(plan.execution_arn),
            charts=charts,
            diff_summary=diff,
            diff_summary_state=diff_state,
            diff_summary_uri=f"s3://{self.data_bucket}/{diff_summary_key(plan.test_id)}" if diff is not None else None,
            diff_note=diff_note,
            failure={"error": state.failure_error or "", "cause": state.failure_cause} if state.failure else None,
        )

    def _store_report(
        self,
        bucket: str,
        prefix: str,
        report: ShadowTestReport,
        snapshot: EndpointSnapshot | None,
        suffix: str = "",
    ) -> ShadowTestReport:
        """Write report.json and report.html under `prefix`; return the report with both URIs in it."""
        key = f"{prefix}/report{suffix}"
        report = report.model_copy(
            update={"json_uri": f"s3://{bucket}/{key}.json", "html_uri": f"s3://{bucket}/{key}.html"}
        )
        self.objects.put(bucket, f"{key}.json", _json_bytes(report), "application/json")
        shadow = str(report.candidate.get("variantName")) if report.candidate else None
        html = render_html(report, snapshot.production_variant_name if snapshot else None, shadow)
        self.objects.put(bucket, f"{key}.html", html.encode(), "text/html; charset=utf-8")
        return report

    def dry_run(self, plan: ShadowTestPlan) -> ReportRef:
        """Read the endpoint, plan every change, touch nothing, and report the plan."""
        snapshot = self.snapshot(plan, save=False)
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
            planned=_jsonable(dry_run_plan(plan, snapshot)),
            timeline=self.timeline.timeline(plan.execution_arn),
        )
        return _reference(self._store_report(plan.reports_bucket, plan.report_prefix, report, snapshot))

    def mark_notified(self, plan: ShadowTestPlan, by: str) -> None:
        """Notify published: say so next to the report, so a recovery does not send it again."""
        body = json.dumps({"at": self.clock.now().isoformat(), "by": by}).encode()
        self.objects.put(plan.reports_bucket, _notified_key(plan), body, "application/json")

    def notify(self, plan: ShadowTestPlan, ref: ReportRef) -> None:
        self.notifier.publish(plan.notification_topic_arn, ref.subject, ref.message)

    # --- after an abort, a timeout or a failed restore (the recovery state machine) ----------------

    def begin_recovery(self, request: RecoveryRequest, *, recovery_arn: str) -> MachineState:
        """The recovery execution's first step: find what the ended execution left behind, claim it, and
        hand back the machine state the recovery restores, finalizes and reports from.

        Durable by construction: the recovery is an execution of its own (retries and waits of hours, no
        Lambda that sleeps), idempotent (a duplicate event finds the claim), and resumable (a recovery that
        gave up is replaced by the next one, which starts again from the endpoint as it is)."""
        facts = self.timeline.describe(request.execution_arn)
        if facts is not None and facts.status == "RUNNING":
            raise RecoveryRefused(f"{request.execution_arn} is still running: stop it first, then recover")
        raw_input = _loads(request.input if request.input is not None else (facts.input if facts else None))
        ended_as = facts.status if facts is not None else request.status

        def outcome(action: RecoveryAction, reason: str, **state: Any) -> MachineState:  # noqa: ANN401
            recovery = Recovery(
                execution_arn=request.execution_arn,
                ended_as=ended_as,
                action=action,
                reason=reason,
                recovered_by=recovery_arn,
            )
            logger.info("shadow test recovery", extra={"execution": request.execution_arn, "action": action})
            return MachineState.model_validate({**state, "recovery": recovery.model_dump(by_alias=True)})

        endpoint = raw_input.get("endpointName") if isinstance(raw_input, dict) else None
        if not isinstance(endpoint, str) or not re.fullmatch(SAGEMAKER_NAME, endpoint):
            return outcome("nothing", "the execution names no valid endpoint: nothing was touched")
        last = self.timeline.last_state(request.execution_arn) or {}
        failure = last.get("failure") or {
            "Error": f"Execution{ended_as.title().replace('_', '')}",
            "Cause": f"the execution ended {ended_as} before it restored the endpoint",
        }
        owner = lease_owner(request.execution_arn)
        stored = self.records.load(endpoint)
        if stored.owner == owner:
            replacing = stored.recovered_by if stored.recovered_by not in (None, recovery_arn) else None
            if replacing is not None:
                other = self.timeline.describe(replacing)
                if other is not None and other.status == "RUNNING":
                    return outcome("nothing", f"{replacing} is recovering this test already")
            claimed = self.records.claim_recovery(
                endpoint,
                owner,
                recovery_arn,
                replacing=replacing,
                lease_seconds=RECOVERY_LEASE_SECONDS,
                now=self.clock.now(),
            )
            if not claimed:
                return outcome("nothing", "another recovery claimed this test first")
            if stored.record is None:  # locked, then stopped before the snapshot: nothing was changed
                self.records.release(endpoint, owner)
                with contextlib.suppress(LockLost):  # and the writer hold Lock took, if it still has it
                    self.leases.release(endpoint, owner, None)
                plan = self._plan_of(raw_input, request.execution_arn, facts)
                if plan is None:
                    return outcome("nothing", "released the lease; nothing else was changed")
                return outcome("report", "stopped before the snapshot: lease released", plan=plan, failure=failure)
            record = json.loads(stored.record)
            # What the execution knew (progress, decision, approval) goes into the report; where the endpoint
            # is heading is read again from the endpoint.
            state = {**last, "plan": record["plan"], "snapshot": record["snapshot"], "failure": failure}
            state.pop("ready", None)
            return outcome("restore", f"the execution ended {ended_as} holding the endpoint", **state)
        plan_document = last.get("plan")
        plan = (
            ShadowTestPlan.model_validate(plan_document)
            if isinstance(plan_document, dict)
            else self._plan_of(raw_input, request.execution_arn, facts)
        )
        if plan is None:
            return outcome("nothing", "the execution never had a plan: nothing was touched")
        reported = self.objects.get_json(plan.reports_bucket, f"{plan.report_prefix}/report.json") is not None
        unnotified = self.objects.get_json(plan.reports_bucket, _notified_key(plan)) is None
        if reported and not unnotified:
            return outcome("nothing", "the execution restored the endpoint, reported and notified")
        if stored.owner is None and "finalized" not in last and isinstance(last.get("snapshot"), dict):
            # Stopped inside Finalize, after it let go of the endpoint: finish it (every step is idempotent).
            state = {**last, "failure": last.get("failure") or failure}
            state.pop("ready", None)
            return outcome("restore", f"the execution ended {ended_as} while it finalized", **state)
        # The test's own last state says how it ended; an execution stopped before it had one gets the end.
        known = {**last, "plan": plan.model_dump(mode="json", by_alias=True)}
        if not last:
            known["failure"] = failure
        if reported:
            return outcome("report", "the execution reported but could not notify", **known)
        return outcome("report", "the execution's report was not written", **known)

    def _plan_of(self, raw_input: object, execution_arn: str, facts: ExecutionFacts | None) -> ShadowTestPlan | None:
        """The plan the execution made (its names are fixed by the ARN), for a report of a test that ended early."""
        try:
            request = parse_shadow_test_input(raw_input)
        except InvalidShadowTestInput:
            return None
        return ShadowTestPlan.create(
            request,
            execution_arn=execution_arn,
            started_at=facts.started_at if facts is not None else self.clock.now(),
            data_bucket=self.data_bucket,
            default_topic_arn=self.default_topic_arn,
        )


def _has_policies(live: ScalingTargetSnapshot, wanted: ScalingTargetSnapshot) -> bool:
    """The live registration carries every policy the recorded one had (by name)."""
    names = {str(policy.get("PolicyName")) for policy in live.policies}
    return names >= {str(policy.get("PolicyName")) for policy in wanted.policies}


def _notified_key(plan: ShadowTestPlan) -> str:
    return f"{plan.report_prefix}/notified.json"


def _loads(document: str | None) -> object:
    try:
        return json.loads(document) if document else None
    except ValueError:
        return None


def _instances(described: dict[str, Any], variant: str | None) -> int | None:
    for live in described.get("ProductionVariants", []):
        if live.get("VariantName") == variant and isinstance(live.get("CurrentInstanceCount"), int):
            return int(live["CurrentInstanceCount"])
    return None


def _require_plan(state: MachineState) -> ShadowTestPlan:
    if state.plan is None:
        raise ValueError("the state has no plan")
    return state.plan


def _reference(report: ShadowTestReport) -> ReportRef:
    """What the machine carries on to its Notify state."""
    subject, message = notification(report)
    return ReportRef(
        json_uri=report.json_uri or "",
        html_uri=report.html_uri or "",
        outcome=report.outcome,
        subject=subject,
        message=message,
    )


def _diff_state(
    plan: ShadowTestPlan, diff: dict[str, Any] | None, bucket: str, snapshot: EndpointSnapshot | None
) -> tuple[Literal["final", "provisional"] | None, str | None]:
    """Whether the diff summary in a report is the last word, and if not, where the last word will be."""
    if diff is None:
        return None, None
    if diff.get("final") is True:
        return "final", None
    lateness = config_plans.diff_config(plan, snapshot, bucket) if snapshot is not None else None
    wait = f" about {lateness.allowed_lateness_seconds // 60} minutes after the test ends" if lateness else ""
    return "provisional", (
        f"provisional: capture still lands after the report is written, so windows are still open. The final"
        f" summary appears at s3://{bucket}/{diff_summary_key(plan.test_id)}{wait}"
        f" (`shadowscale diffs show {plan.test_id}`); its pair count may be higher than the one here and in the gates."
    )


def _chart_period(start: datetime, end: datetime) -> int:
    """About 120 points whatever the test's length, in whole minutes."""
    seconds = max(60.0, (end - start).total_seconds() / 120)
    return int(seconds // 60 + 1) * 60


def _outcome(state: MachineState) -> tuple[Outcome, str]:
    promoted = state.finalized.promoted if state.finalized else False
    recovered = (
        f" (completed by the recovery after the execution ended {state.recovery.ended_as})"
        if state.recovery is not None and state.recovery.action == "restore"
        else ""
    )
    if promoted:
        by = f" (approved by {state.approval.by})" if state.approval and state.approval.approved else ""
        return "promoted", (state.decision.reason if state.decision else "promoted") + by + recovered
    if state.failure:
        error = state.failure_error
        if error in ("EndpointLocked", "EndpointHeld"):
            return "locked", state.failure_cause
        if error in ENDED_EARLY:
            return ENDED_EARLY[error], state.failure_cause
        return "failed", f"{error}: {state.failure_cause}"
    if state.approval_timeout:
        return "rejected", "no approval before the approval timeout"
    if state.approval and not state.approval.approved:
        return "rejected", f"rejected by {state.approval.by}: {state.approval.comment or 'no comment'}"
    if state.decision and state.decision.reason.startswith("report-only"):
        return "report-only", state.decision.reason
    return "removed", state.decision.reason if state.decision else "removed"


# The failure a recovery records for an execution that ended without restoring (see begin_recovery).
ENDED_EARLY: dict[str, Outcome] = {"ExecutionAborted": "aborted", "ExecutionTimedOut": "timed-out"}


def _record(plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> str:
    return json.dumps(
        {
            "plan": plan.model_dump(mode="json", by_alias=True),
            "snapshot": snapshot.model_dump(mode="json", by_alias=True),
        }
    )


def _json_bytes(report: ShadowTestReport) -> bytes:
    return report.model_dump_json(by_alias=True, indent=2).encode()


def _jsonable(value: Any) -> Any:  # noqa: ANN401
    """boto3 hands back datetimes and Decimals; the snapshot travels as JSON."""
    loaded: Any = json.loads(json.dumps(value, default=str))
    return loaded


def dry_run_plan(plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> dict[str, Any]:
    """What the test would create and change, for `dryRun: true`."""
    return {
        "shadowConfig": config_plans.shadow_config_request(plan, snapshot),
        "promotedConfig": config_plans.promoted_config_request(plan, snapshot),
        "steps": [step.model_dump(by_alias=True) for step in plan.request.steps],
        "restoresTo": snapshot.config_name,
        "scalingTargets": [target.model_dump(by_alias=True) for target in snapshot.scaling_targets],
    }
