"""The shadow test's steps, one method per state-machine task that changes or reads the endpoint, over
injected ports.

The state machine (statemachine/shadow_test.asl.json) owns the order, the waits and the retries; each
method here does one step and raises a typed error the machine's Retry/Catch clauses name. The restore
path (restore → wait → finalize) is also what the recovery machine runs after an abort or a timeout, so
every terminal path puts the endpoint back the same way. The report is reports.py's, the recovery's
first step recovery.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import JsonValue

from shadowscale.shadow_tests import budgets, config_plans, noise_calibration
from shadowscale.shadow_tests.bucket_layout import diff_summary_key
from shadowscale.shadow_tests.endpoint_hold import WriterHold
from shadowscale.shadow_tests.endpoint_models import IN_SERVICE, UPDATING, DescribedEndpoint, EndpointConfig
from shadowscale.shadow_tests.models import (
    AgreementStats,
    Decision,
    EndpointSnapshot,
    Evaluation,
    Finalized,
    NextStep,
    Readiness,
    RestoreRecord,
    ShadowTestPlan,
    VariantStats,
    parse_shadow_test_input,
)
from shadowscale.shadow_tests.ports import (
    EndpointConfigs,
    ObjectStore,
    PromotionAlarms,
    ScalingRegistry,
    ShadowTestRecords,
    VariantMetrics,
)
from shadowscale.shadow_tests.promotion_guardrails import (
    AlarmDefinition,
    PromotionRolledBack,
    alarm_definitions,
    alarm_prefix,
    deployment_config,
    deployment_seconds,
    rolled_back_reason,
)
from shadowscale.shadow_tests.time_limits import LEASE_MARGIN_SECONDS, RESTORE_PATIENCE
from shadowscale.shared.clock import Clock
from shadowscale.shared.diff_contract import CloseDiffs, DiffCloser
from shadowscale.shared.endpoint import ScalingTargetSnapshot
from shadowscale.shared.errors import (
    ConfigurationError,
    EndpointBusy,
    EndpointConfigNotVisible,
    EndpointHeld,
    EndpointNotInService,
    EndpointStateMismatch,
    EndpointUpdateFailed,
    ShadowSamplingRefused,
    UnsupportedEndpoint,
)
from shadowscale.shared.handover import PromotionAnnouncer, PromotionHandover
from shadowscale.shared.observability import logger

# RESTORE_PATIENCE is time_limits'; it is named here too, where the restore that waits for it is.
__all__ = ["RESTORE_PATIENCE", "ShadowTestSteps"]

RESTORE_HOLD_SECONDS = int(RESTORE_PATIENCE.total_seconds()) + LEASE_MARGIN_SECONDS


@dataclass(frozen=True)
class _WayBack:
    """Where a restore takes the endpoint, and what it puts back once there."""

    config: str
    promoted: bool
    production: str | None  # the production variant whose count is put back (None after a promotion)
    live_count: int | None
    instances: int | None
    deadline: datetime


@dataclass
class ShadowTestSteps:
    configs: EndpointConfigs
    scaling: ScalingRegistry
    hold: WriterHold
    records: ShadowTestRecords
    metrics: VariantMetrics
    objects: ObjectStore
    diffs: DiffCloser
    handover: PromotionAnnouncer
    clock: Clock
    data_bucket: str
    default_topic_arn: str
    # A guarded promotion's alarms (None: a test that asks for guardrails fails at Promote, naming why).
    alarms: PromotionAlarms | None = None
    alarm_prefix: str = alarm_prefix("dev")

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
            # A guarded promotion's traffic shifting and bakes: the lease outlasts them.
            + deployment_seconds(request.promotion.guardrails)
            # The A/A bake, and the candidate's own wait for InService after it.
            + (
                (request.calibration.bake_minutes + request.in_service_timeout_minutes) * 60
                if request.calibration
                else 0
            )
        )
        self.records.claim_test(plan.endpoint, plan.owner, planned + LEASE_MARGIN_SECONDS, self.clock.now())
        try:
            self.hold.take(plan)
        except EndpointHeld:
            self.records.release(plan.endpoint, plan.owner)  # all or nothing: the retry claims again
            raise

    def snapshot(self, plan: ShadowTestPlan, *, save: bool = True) -> EndpointSnapshot:
        endpoint = self.configs.describe_endpoint(plan.endpoint)
        config = self._supported_config(plan, endpoint)
        self.configs.describe_model(plan.request.candidate.model_name)  # raises ModelNotFound
        live = {variant.name: variant for variant in endpoint.production_variants}
        snapshot = EndpointSnapshot(
            endpoint=plan.endpoint,
            config_name=endpoint.config_name,
            production_variants=config.production_variants,
            current_instances={
                name: variant.current_instances or variant.desired_instances or 1 for name, variant in live.items()
            },
            current_weights={
                name: variant.current_weight if variant.current_weight is not None else 1.0
                for name, variant in live.items()
            },
            data_capture=config.data_capture,
            kms_key_id=config.kms_key_id,
            scaling_targets=self.scaling.snapshot(plan.endpoint, list(live)),
            taken_at=self.clock.now(),
        )
        if save:
            self.records.save(plan.endpoint, plan.owner, RestoreRecord(plan=plan, snapshot=snapshot))
        return snapshot

    def _supported_config(self, plan: ShadowTestPlan, endpoint: DescribedEndpoint) -> EndpointConfig:
        """The config the endpoint runs, if a shadow test can run on it (EndpointBusy or UnsupportedEndpoint)."""
        if not endpoint.in_service:
            raise EndpointBusy(f"endpoint {plan.endpoint!r} is {endpoint.status}, not InService")
        if endpoint.has_shadow:
            raise UnsupportedEndpoint(f"endpoint {plan.endpoint!r} already runs a shadow variant")
        config = self.configs.describe_config(endpoint.config_name)
        if config is None:
            raise UnsupportedEndpoint(
                f"endpoint {plan.endpoint!r} runs config {endpoint.config_name!r}, which no longer exists"
            )
        variants = config.production_variant_names
        if len(variants) != 1:
            raise UnsupportedEndpoint(
                f"endpoint {plan.endpoint!r} has {len(variants)} production variants; a shadow test needs exactly one"
            )
        if variants[0] == plan.request.candidate.variant_name:
            raise UnsupportedEndpoint(
                f"candidate.variantName {plan.request.candidate.variant_name!r} is the production variant's name"
            )
        if plan.request.calibration is not None and variants[0] == plan.noise_variant_name:
            raise UnsupportedEndpoint(
                f"the noise calibration's variant {plan.noise_variant_name!r} is the production variant's name"
            )
        return config

    # --- shadow on ----------------------------------------------------------------------------

    def prepare(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> None:
        candidate = plan.request.candidate
        if plan.derived_model_name is not None:
            base = self.configs.describe_model(candidate.model_name)
            derived = base.derived(
                plan.derived_model_name,
                image=candidate.container_image,
                environment=candidate.environment,
                tags={"shadowscale:test": plan.test_id},
            )
            self.configs.create_model(derived)
        diffs = config_plans.diff_config(plan, snapshot, self.data_bucket)
        if diffs is not None:
            # Before the shadow is on: the first capture object finds how to compare it.
            self.objects.put_diff_config(self.data_bucket, diffs)
        self.configs.create_config(config_plans.shadow_config(plan, snapshot))
        if plan.request.calibration is not None:
            # The A/A phase first: its diff config and capture prefix are its own (noise_calibration.py).
            self.objects.put_diff_config(self.data_bucket, config_plans.noise_diff_config(plan, snapshot))
            self.configs.create_config(config_plans.noise_config(plan, snapshot))

    def start_shadow(self, plan: ShadowTestPlan) -> Readiness:
        # The shadow config carries the production variant's live count and weight from the snapshot; a
        # calibrated test starts on its A/A config, and set_sampling moves it to the candidate's after the bake.
        first = plan.noise_config_name or plan.shadow_config_name
        self._move_to(plan, first)
        return self._heading_to(plan, first)

    def _move_to(self, plan: ShadowTestPlan, config: str, deployment: dict[str, JsonValue] | None = None) -> None:
        """UpdateEndpoint unless a retried task already did it (the endpoint names the config)."""
        endpoint = self.configs.describe_endpoint(plan.endpoint)
        if endpoint.config_name == config and endpoint.status in (IN_SERVICE, UPDATING):
            return
        # SageMaker's reads are eventually consistent: look before UpdateEndpoint, as its docs advise.
        if self.configs.describe_config(config) is None:
            raise EndpointConfigNotVisible(f"endpoint config {config!r} is not visible yet")
        self.configs.update_endpoint(plan.endpoint, config, deployment=deployment)

    def _verify_live(self, plan: ShadowTestPlan, endpoint: DescribedEndpoint, config: EndpointConfig | None) -> None:
        """The update reached InService: is the endpoint what the config asked for?"""
        if config is None:
            return
        differences = config_plans.mismatches(config, endpoint)
        if differences:
            raise EndpointStateMismatch(
                f"endpoint {plan.endpoint!r} is InService on {endpoint.config_name!r} but " + "; ".join(differences)
            )

    def _heading_to(self, plan: ShadowTestPlan, config: str) -> Readiness:
        deadline = self.clock.now() + timedelta(minutes=plan.request.in_service_timeout_minutes)
        guardrails = plan.request.promotion.guardrails
        if config == plan.promoted_config_name and guardrails is not None:
            # Traffic shifting, baking and the blue fleet's termination wait come on top of provisioning.
            deadline += timedelta(seconds=deployment_seconds(guardrails))
        return Readiness(config=config, deadline=deadline)

    def check_ready(self, plan: ShadowTestPlan, ready: Readiness) -> Readiness:
        endpoint = self.configs.describe_endpoint(plan.endpoint)
        status = endpoint.status
        if endpoint.failed:
            raise EndpointUpdateFailed(f"endpoint {plan.endpoint!r} is {status}: {endpoint.failure_reason or ''}")
        if endpoint.in_service and endpoint.config_name == ready.config:
            self._verify_live(plan, endpoint, self.configs.describe_config(ready.config))
            if ready.config != plan.promoted_config_name:  # a promotion keeps its hold until finalize
                self.hold.let_go(plan.endpoint, plan.owner)
            return ready.model_copy(update={"in_service": True, "status": status})
        if endpoint.in_service and ready.config == plan.promoted_config_name and plan.request.promotion.guardrails:
            fired = self._promotion_alarms().in_alarm([alarm.name for alarm in self._alarms_of(plan)])
            raise PromotionRolledBack(
                rolled_back_reason(plan.endpoint, ready.config, fired, endpoint.failure_reason)
                + f"; the endpoint is back on {endpoint.config_name!r}"
            )
        if endpoint.in_service:
            raise EndpointUpdateFailed(
                f"endpoint {plan.endpoint!r} is back on {endpoint.config_name!r} instead of {ready.config!r}: "
                f"{endpoint.failure_reason or 'update rolled back'}"
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
        if request.calibration is not None and (
            progress is None or (progress.phase == "noise" and progress.next != "ramp")
        ):
            return self._evaluate_noise(plan, snapshot, progress, now)
        production, shadow = snapshot.production_variant_name, request.candidate.variant_name
        latencies = None
        # The candidate just became InService (first, or after the A/A phase): the first step starts now.
        starting, noise, candidate_started_at = noise_calibration.candidate_phase(progress, now)
        if starting:
            step_index, step_started_at, count = 0, now, progress.evaluations if progress is not None else 0
            stats = {production: VariantStats(), shadow: VariantStats()}
            latest = stats
        else:
            assert progress is not None
            step_index, step_started_at, count = progress.step_index, progress.step_started_at, progress.evaluations
            stats = self.metrics.variant_stats(plan.endpoint, [production, shadow], step_started_at, now)
            period_start = max(step_started_at, now - timedelta(minutes=request.evaluation_period_minutes))
            latest = self.metrics.variant_stats(plan.endpoint, [production, shadow], period_start, now)
            latencies = self.metrics.minute_latencies(plan.endpoint, production, shadow, step_started_at, now)
        agreement = self._agreement(plan, plan.test_id)
        gates, verdict = config_plans.evaluate_gates(
            request, stats[production], stats[shadow], agreement, latencies, noise=noise
        )
        early = None
        if not starting:  # always-valid intervals may end the test before its duration
            early = config_plans.early_decision(
                request, stats[production], stats[shadow], agreement, latencies, step_index=step_index, noise=noise
            )
        if early is not None:
            gates, verdict = early.gates, early.verdict
        breach = None if starting else config_plans.hard_limit_breach(request, latest[production], latest[shadow])
        # Every step runs the candidate's count: the spend meter takes the count per interval all the same.
        spend = budgets.accrue(
            request, progress.spend if progress else None, now=now, instances=request.candidate.instance_count
        )
        following, next_index, wait = config_plans.next_step(
            request,
            step_index=step_index,
            step_started_at=step_started_at,
            test_started_at=candidate_started_at or plan.started_at,
            now=now,
            breached=breach is not None,
            budget_left_seconds=budgets.seconds_left(spend),
            stopped_early=early is not None,
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
            early_stop=early.reason if early else None,
            spend=budgets.projected(spend, wait),
            next=following,
            wait_seconds=wait,
            evaluations=count + 1,
            noise=noise,
            candidate_started_at=candidate_started_at,
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

    def _evaluate_noise(
        self, plan: ShadowTestPlan, snapshot: EndpointSnapshot, progress: Evaluation | None, now: datetime
    ) -> Evaluation:
        """An evaluation of the A/A phase: the copy of the production model against production. It records the
        noise floor so far; its gates are the copy's plain ones, for the record (Decide never promotes them)."""
        request = plan.request
        assert request.calibration is not None
        production, copy = snapshot.production_variant_name, plan.noise_variant_name
        latencies = None
        if progress is None:  # the copy just became InService: the A/A bake starts now
            started, count = now, 0
            stats = latest = {production: VariantStats(), copy: VariantStats()}
        else:
            started, count = progress.step_started_at, progress.evaluations
            stats = self.metrics.variant_stats(plan.endpoint, [production, copy], started, now)
            period_start = max(started, now - timedelta(minutes=request.evaluation_period_minutes))
            latest = self.metrics.variant_stats(plan.endpoint, [production, copy], period_start, now)
            latencies = self.metrics.minute_latencies(plan.endpoint, production, copy, started, now)
        agreement = self._agreement(plan, plan.noise_test_id)
        floor = noise_calibration.noise_floor(
            variant=copy,
            started_at=started,
            at=now,
            copy=stats[copy],
            agreement=agreement,
            latencies=latencies,
            confidence=request.gates.confidence,
            min_pairs=request.calibration.min_pairs,
        )
        gates, verdict = config_plans.evaluate_gates(request, stats[production], stats[copy], agreement, latencies)
        breach = config_plans.hard_limit_breach(request, latest[production], latest[copy]) if progress else None
        copy_type = snapshot.production_variant.get("InstanceType")
        spend = budgets.accrue(
            request,
            progress.spend if progress else None,
            now=now,
            instances=request.candidate.instance_count,
            instance_type=copy_type if isinstance(copy_type, str) else None,
        )
        baked, wait = noise_calibration.next_in_noise_phase(request, started_at=started, now=now)
        left = budgets.seconds_left(spend)
        following: NextStep
        if breach is not None:
            following, wait = "abort", 0
        elif left is not None and left < budgets.SPENT_WITHIN_SECONDS:
            following, wait = "decide", 0
        elif baked:
            following = "ramp"  # set_sampling switches the shadow to the candidate
        else:
            following = "bake"
            wait = wait if left is None else max(1, min(wait, int(left + 0.999)))
        logger.info(
            "shadow test noise calibration",
            extra={"endpoint": plan.endpoint, "test": plan.test_id, "next": following, "paired": floor.paired},
        )
        return Evaluation(
            at=now,
            step_index=0,
            step_started_at=started,
            window_start=started,
            production=stats[production],
            shadow=stats[copy],
            agreement=agreement,
            gates=gates,
            verdict=verdict,
            hard_limit_breached=breach,
            spend=budgets.projected(spend, wait),
            next=following,
            wait_seconds=wait,
            evaluations=count + 1,
            phase="noise",
            noise=floor,
        )

    def _agreement(self, plan: ShadowTestPlan, test_id: str) -> AgreementStats | None:
        summary = self.objects.diff_summary(self.data_bucket, test_id)
        if summary is None:
            return None
        return AgreementStats(
            paired=summary.paired,
            exact_match_rate=summary.exact_match_rate,
            within_tolerance_rate=summary.within_tolerance_rate,
            summary_key=diff_summary_key(test_id),
            final=summary.final,
            summary_updated_at=summary.updated_at,
        )

    def set_sampling(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot, progress: Evaluation) -> Readiness:
        """The next ramp step: the shadow's weight in place, or, where SageMaker refuses that for a shadow
        variant, a new config with the step's weight (then the machine waits for InService again). After the
        A/A phase of a calibrated test: the candidate's own config, then InService again."""
        if progress.phase == "noise":
            self.hold.take(plan)
            self._move_to(plan, plan.shadow_config_name)
            return self._heading_to(plan, plan.shadow_config_name)
        step = plan.request.steps[progress.step_index]
        weight = config_plans.shadow_weight(config_plans.production_weight(snapshot), step.percent)
        ramp_config = plan.ramp_config_name(progress.step_index)
        self.hold.take(plan)
        endpoint = self.configs.describe_endpoint(plan.endpoint)
        if endpoint.config_name == ramp_config:  # a retried task already moved it
            return self._heading_to(plan, ramp_config)
        try:
            self.configs.set_variant_weight(plan.endpoint, plan.request.candidate.variant_name, weight)
        except ShadowSamplingRefused as refused:
            logger.info("ramp by endpoint config", extra={"test": plan.test_id, "reason": str(refused)})
            instances = endpoint.instances(snapshot.production_variant_name)
            self.configs.create_config(config_plans.ramp_config(plan, snapshot, progress.step_index, instances))
            self._move_to(plan, ramp_config)
            return self._heading_to(plan, ramp_config)
        self.hold.let_go(plan.endpoint, plan.owner)  # the weight changed in place: nothing to wait for
        return Readiness(config=endpoint.config_name, deadline=self.clock.now(), in_service=True, status=IN_SERVICE)

    def decide(self, plan: ShadowTestPlan, progress: Evaluation) -> Decision:
        return config_plans.decide(plan.request, progress)

    # --- promote or remove ----------------------------------------------------------------------

    def promote(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> Readiness:
        # Auto Scaling follows variant names: the old production variant's target goes, and is
        # registered again on the promoted variant once it is InService (finalize), as it is now: the
        # autopilot may have moved its bounds during the test, and those are the ones carried over.
        guardrails = plan.request.promotion.guardrails
        # Held until finalize: a guarded deployment's shifting and bakes come on top of the usual patience.
        self.hold.take(plan, extra_seconds=deployment_seconds(guardrails))
        live = self.scaling.snapshot(plan.endpoint, [snapshot.production_variant_name])
        if live and live != snapshot.scaling_targets:  # a retried promote finds them gone: keep the record
            moved = snapshot.model_copy(update={"scaling_targets": live})
            self.records.save(plan.endpoint, plan.owner, RestoreRecord(plan=plan, snapshot=moved))
        for target in snapshot.scaling_targets:
            self.scaling.deregister(plan.endpoint, target.variant)
        live_count = self.configs.describe_endpoint(plan.endpoint).instances(snapshot.production_variant_name)
        self.configs.create_config(config_plans.promoted_config(plan, snapshot, live_count))
        deployment = None
        if guardrails is not None:
            # The alarms exist before the update that names them; PutMetricAlarm is an upsert (retries).
            alarms = self._alarms_of(plan, snapshot)
            self._promotion_alarms().put(alarms)
            deployment = deployment_config(guardrails, tuple(alarm.name for alarm in alarms))
        self._move_to(plan, plan.promoted_config_name, deployment)
        return self._heading_to(plan, plan.promoted_config_name)

    def guarded_promotion_plan(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> dict[str, JsonValue] | None:
        """What a guarded promotion would send (for the dry run): the PutMetricAlarm requests, then the
        UpdateEndpoint DeploymentConfig that names them; None for a plain promotion."""
        guardrails = plan.request.promotion.guardrails
        if guardrails is None:
            return None
        alarms = self._alarms_of(plan, snapshot)
        return {
            "alarms": [alarm.request() for alarm in alarms],
            "DeploymentConfig": deployment_config(guardrails, tuple(alarm.name for alarm in alarms)),
        }

    def _promotion_alarms(self) -> PromotionAlarms:
        if self.alarms is None:
            raise ConfigurationError("a guarded promotion needs CloudWatch alarms, and none are wired")
        return self.alarms

    def _alarms_of(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot | None = None) -> tuple[AlarmDefinition, ...]:
        """The promotion's alarms (their names do not depend on the snapshot: a finalize without one finds them)."""
        guardrails = plan.request.promotion.guardrails
        if guardrails is None:
            return ()
        variant = config_plans.promoted_variant_name(plan, snapshot) if snapshot is not None else "-"
        return alarm_definitions(
            guardrails,
            prefix=self.alarm_prefix,
            endpoint=plan.endpoint,
            variant=variant,
            tag=plan.promoted_config_name.removesuffix("-promoted").rsplit("-", 1)[-1],
        )

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
        self.hold.take(plan, RESTORE_HOLD_SECONDS)
        endpoint = self.configs.describe_endpoint(plan.endpoint)
        now = self.clock.now()
        way = self._way_back(plan, snapshot, endpoint, ready, now)
        heading = Readiness(
            config=way.config, deadline=way.deadline, status=endpoint.status, production_instances=way.instances
        )
        back = endpoint.runs(way.config)
        if endpoint.in_service and back:
            return self._arrived(plan, snapshot, endpoint, way, heading)
        if (endpoint.in_service or endpoint.failed) and not back:
            # Our own calls are not bounded by the deadline: the machine's retries outlast an outage.
            self._update_back(plan, snapshot, way.config)
            return heading.model_copy(update={"status": UPDATING})
        if now >= way.deadline:
            raise EndpointNotInService(
                f"endpoint {plan.endpoint!r} still {endpoint.status} on {endpoint.config_name!r}; restore gave up"
            )
        return heading

    def _way_back(
        self,
        plan: ShadowTestPlan,
        snapshot: EndpointSnapshot | None,
        endpoint: DescribedEndpoint,
        ready: Readiness | None,
        now: datetime,
    ) -> _WayBack:
        promoted = self._promotion_stands(plan, endpoint)
        if promoted:
            target = plan.promoted_config_name
        else:
            target = snapshot.config_name if snapshot is not None else endpoint.config_name
        resumed = ready if ready is not None and ready.config == target else None
        production = snapshot.production_variant_name if snapshot is not None and not promoted else None
        live_count = endpoint.instances(production)
        return _WayBack(
            config=target,
            promoted=promoted,
            production=production,
            live_count=live_count,
            instances=resumed.production_instances if resumed is not None else live_count,
            deadline=resumed.deadline if resumed is not None else now + RESTORE_PATIENCE,
        )

    def _arrived(
        self,
        plan: ShadowTestPlan,
        snapshot: EndpointSnapshot | None,
        endpoint: DescribedEndpoint,
        way: _WayBack,
        heading: Readiness,
    ) -> Readiness:
        """Back on the right config: the production count as it was, then a check of the live endpoint."""
        if way.production is not None and way.instances is not None and way.live_count not in (None, way.instances):
            self.configs.set_instance_count(plan.endpoint, way.production, way.instances)
            return heading.model_copy(update={"status": UPDATING})
        if way.promoted:
            self._verify_live(plan, endpoint, self.configs.describe_config(way.config))
        elif snapshot is not None:
            self._verify_live(plan, endpoint, config_plans.original_config(snapshot))
        return heading.model_copy(update={"in_service": True})

    def _update_back(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot | None, target: str) -> None:
        if snapshot is not None and target == snapshot.config_name and self.configs.describe_config(target) is None:
            logger.warning(
                "original endpoint config is gone; creating it again from the snapshot",
                extra={"test": plan.test_id, "config": target},
            )
            self.configs.create_config(config_plans.original_config(snapshot))
            raise EndpointConfigNotVisible(f"endpoint config {target!r} was deleted; created again from the snapshot")
        self.configs.update_endpoint(plan.endpoint, target)

    def _promotion_stands(self, plan: ShadowTestPlan, endpoint: DescribedEndpoint) -> bool:
        """The endpoint is on (or updating to) the promoted config, and that update has not failed."""
        if not endpoint.runs(plan.promoted_config_name) or endpoint.failed:
            return False
        if not endpoint.in_service:
            return True  # Updating towards it (or a system update): see it through
        config = self.configs.describe_config(plan.promoted_config_name)
        return config is not None and not config_plans.mismatches(config, endpoint)

    def finalize(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot | None) -> Finalized:
        """Auto Scaling as it was (or carried over to the promoted variant), temporaries deleted, lock released.

        Re-entrant: every registration is put back whole (target and policies: both calls are upserts), so
        a retry after a half-done finalize leaves no target without its policies."""
        self.hold.take(plan)
        endpoint = self.configs.describe_endpoint(plan.endpoint)
        promoted = endpoint.config_name == plan.promoted_config_name and endpoint.in_service
        alarms = self._alarms_of(plan)
        if alarms:  # on every path out: the deployment they guarded is over, whichever way it went
            self._promotion_alarms().delete([alarm.name for alarm in alarms])
        if snapshot is not None:
            self._put_back_scaling(plan, snapshot, promoted)
        deleted = self._delete_temporaries(plan, endpoint.config_name, promoted)
        candidate = config_plans.promoted_variant_name(plan, snapshot) if snapshot is not None else None
        # A guarded promotion keeps the variant's name: the capacity policy has nothing to follow.
        if (
            promoted
            and snapshot is not None
            and candidate is not None
            and candidate != snapshot.production_variant_name
        ):
            # The capacity policy follows the promotion (the capacity side writes it, on its own queue);
            # sent before the lock goes, so a failed send is retried with the rest of finalize.
            self.handover.announce(
                PromotionHandover(
                    endpoint=plan.endpoint,
                    test_id=plan.test_id,
                    from_variant=snapshot.production_variant_name,
                    to_variant=candidate,
                    promoted_at=self.clock.now(),
                    instances=endpoint.instances(candidate),
                    variants=endpoint.variant_names,
                )
            )
        released = self.records.release(plan.endpoint, plan.owner)
        self.hold.let_go(plan.endpoint, plan.owner)
        if snapshot is not None:
            self._close_diffs(plan, snapshot)
        return Finalized(
            promoted=promoted, final_config=endpoint.config_name, deleted=tuple(deleted), lock_released=released
        )

    def _put_back_scaling(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot, promoted: bool) -> None:
        targets = self._scaling_to_restore(plan, snapshot)
        candidate = config_plans.promoted_variant_name(plan, snapshot)
        # One read of both variants' targets and policies (the snapshot call) serves every check below.
        registered = {
            found.variant: found
            for found in self.scaling.snapshot(plan.endpoint, [snapshot.production_variant_name, candidate])
        }
        for target in targets:
            variant = candidate if promoted else target.variant
            # A target the test never removed keeps what it has now (the autopilot may have moved its
            # bounds); one it removed, or one without its policies, is put back whole.
            live = registered.get(variant)
            if live is None or promoted or not _has_policies(live, target):
                self.scaling.restore(plan.endpoint, target, variant=variant)
        if not promoted and targets and candidate in registered and candidate != snapshot.production_variant_name:
            # A target carried over by an earlier finalize to a promotion that did not stand.
            self.scaling.deregister(plan.endpoint, candidate)

    def _scaling_to_restore(
        self, plan: ShadowTestPlan, snapshot: EndpointSnapshot
    ) -> tuple[ScalingTargetSnapshot, ...]:
        """The registrations to put back: as the record has them (promote saves them as they were when it
        removed them), else as the snapshot took them."""
        stored = self.records.load(plan.endpoint)
        if stored.owner == plan.owner and stored.record is not None:
            return stored.record.snapshot.scaling_targets
        return snapshot.scaling_targets

    def _delete_temporaries(self, plan: ShadowTestPlan, current: str, promoted: bool) -> list[str]:
        """The test's configs (but the one the endpoint runs) and, unless promoted, its derived model."""
        deleted = []
        temporary = [plan.shadow_config_name, *plan.ramp_config_names]
        if plan.noise_config_name is not None:
            temporary.append(plan.noise_config_name)
        if not promoted:
            temporary.append(plan.promoted_config_name)
        for config in temporary:
            if config != current and self.configs.delete_config(config):
                deleted.append(config)
        if plan.derived_model_name and not promoted and self.configs.delete_model(plan.derived_model_name):
            deleted.append(plan.derived_model_name)
        return deleted

    def _close_diffs(self, plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> None:
        diffs = config_plans.diff_config(plan, snapshot, self.data_bucket)
        if diffs is None:
            return
        # Capture stops now but lands late: the pipeline closes the test's windows once it has.
        test_ids = [plan.test_id] + ([plan.noise_test_id] if plan.request.calibration is not None else [])
        for test_id in test_ids:
            try:
                self.diffs.close(
                    CloseDiffs(test_id=test_id, ended_at=self.clock.now()),
                    delay_seconds=diffs.allowed_lateness_seconds,
                )
            except Exception as exc:
                logger.warning("could not ask the diff pipeline to close", extra={"test": test_id, "error": str(exc)})


def _has_policies(live: ScalingTargetSnapshot, wanted: ScalingTargetSnapshot) -> bool:
    """The live registration carries every policy the recorded one had (by name)."""
    names = {str(policy.get("PolicyName")) for policy in live.policies}
    return names >= {str(policy.get("PolicyName")) for policy in wanted.policies}
