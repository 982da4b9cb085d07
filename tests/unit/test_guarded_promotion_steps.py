"""The lifecycle's guarded-promotion steps over in-memory ports: alarms before the update, the update's
DeploymentConfig, a rollback as PromotionRolledBack, the restore to the original config, alarms deleted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from shadowscale.shadow_tests.models import EndpointSnapshot, MachineState, ShadowTestPlan
from shadowscale.shadow_tests.outcomes import outcome_of
from shadowscale.shadow_tests.promotion_guardrails import AlarmDefinition, PromotionRolledBack
from shadowscale.shared.errors import ConfigurationError

from tests.shadow_fakes import ENDPOINT, ORIGINAL_CONFIG, PRODUCTION, ShadowWorld, target

GUARDRAILS = {"mode": "canary", "canarySize": {"type": "INSTANCE_COUNT", "value": 1}, "waitIntervalSeconds": 300}


@dataclass
class InMemoryPromotionAlarms:
    alarms: dict[str, AlarmDefinition] = field(default_factory=dict)
    in_alarm_now: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)

    def put(self, alarms: Sequence[AlarmDefinition]) -> None:
        self.alarms.update({alarm.name: alarm for alarm in alarms})

    def delete(self, names: Sequence[str]) -> None:
        for name in names:
            self.alarms.pop(name, None)
            self.deleted.append(name)

    def in_alarm(self, names: Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted(name for name in names if name in self.in_alarm_now))


@pytest.fixture
def world() -> tuple[ShadowWorld, InMemoryPromotionAlarms]:
    made = ShadowWorld()
    alarms = InMemoryPromotionAlarms()
    made.steps.alarms = alarms
    made.steps.alarm_prefix = "shadowscale-test-promotion-"
    return made, alarms


def guarded_promotion(made: ShadowWorld, **overrides: Any) -> tuple[ShadowTestPlan, EndpointSnapshot]:
    """Locked, snapshotted, the shadow InService, then Promote with guardrails."""
    made.scaling.register(ENDPOINT, target(PRODUCTION, "latency", max_capacity=6))
    plan = made.plan(promotion={"guardrails": GUARDRAILS}, **overrides)
    made.steps.lock(plan)
    snapshot = made.steps.snapshot(plan)
    made.steps.prepare(plan, snapshot)
    ready = made.steps.start_shadow(plan)
    made.sagemaker.settle()
    made.steps.check_ready(plan, ready)
    made.steps.promote(plan, snapshot)
    return plan, snapshot


def test_promote_creates_the_alarms_first_and_updates_with_their_deployment_config(
    world: tuple[ShadowWorld, InMemoryPromotionAlarms],
) -> None:
    made, alarms = world
    # GIVEN a passing test that asks for a canary promotion
    # WHEN it is promoted
    plan, snapshot = guarded_promotion(made)

    # THEN its alarm watches the production variant's name, which the promoted config keeps
    [alarm] = alarms.alarms.values()
    assert alarm.name.startswith(f"shadowscale-test-promotion-{ENDPOINT}-")
    assert alarm.variant == PRODUCTION
    assert made.sagemaker.configs[plan.promoted_config_name].production_variant_names == (PRODUCTION,)
    # ... and UpdateEndpoint carried the canary and the alarm
    deployment: Any = made.sagemaker.deployments[plan.promoted_config_name]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": alarm.name}]}
    assert snapshot.production_variant_name == PRODUCTION


def test_a_rolled_back_promotion_raises_promotion_rolled_back_naming_the_alarm_and_restores_the_original(
    world: tuple[ShadowWorld, InMemoryPromotionAlarms],
) -> None:
    made, alarms = world
    plan, snapshot = guarded_promotion(made)
    ready = made.steps.promote(plan, snapshot)  # retried: nothing more is done
    [name] = alarms.alarms

    # GIVEN SageMaker rolled the promotion back to the shadow config on the alarm
    alarms.in_alarm_now.add(name)
    made.sagemaker.roll_back(reason=f"Alarm(s) {name} in ALARM state; rolled back")

    # WHEN PromoteCheck looks
    with pytest.raises(PromotionRolledBack) as raised:
        made.steps.check_ready(plan, ready)

    # THEN the error names the alarm and SageMaker's words; the outcome is rolled-back
    assert f"alarm: {name}" in str(raised.value)
    failure = {"Error": "PromotionRolledBack", "Cause": str(raised.value)}
    assert outcome_of(MachineState(plan=plan, snapshot=snapshot, failure=failure))[0] == "rolled-back"

    # ... and the restore path goes on to the ORIGINAL config, and finalize deletes the alarm
    heading = made.steps.restore(plan, snapshot)
    assert heading.config == ORIGINAL_CONFIG
    made.sagemaker.settle()
    assert made.steps.restore(plan, snapshot, heading).in_service
    finalized = made.steps.finalize(plan, snapshot)
    assert not finalized.promoted
    assert alarms.alarms == {}
    assert alarms.deleted == [name]
    # Auto Scaling back on the production variant, which the promotion did not rename
    assert made.scaling.snapshot(ENDPOINT, [PRODUCTION]) == (target(PRODUCTION, "latency", max_capacity=6),)


def test_a_guarded_promotion_that_stands_keeps_scaling_on_the_same_name_and_announces_no_handover(
    world: tuple[ShadowWorld, InMemoryPromotionAlarms],
) -> None:
    made, alarms = world
    # GIVEN a guarded promotion that finished its bakes
    plan, snapshot = guarded_promotion(made)
    made.sagemaker.settle()

    # WHEN finalized
    finalized = made.steps.finalize(plan, snapshot)

    # THEN promoted, alarms gone, the variant's target back under its own name, no variant handover
    assert finalized.promoted
    assert alarms.alarms == {}
    assert made.scaling.snapshot(ENDPOINT, [PRODUCTION]) == (target(PRODUCTION, "latency", max_capacity=6),)
    assert made.handover.announced == []


def test_without_alarms_wired_a_guarded_promotion_fails_naming_why() -> None:
    # GIVEN steps built without a PromotionAlarms adapter
    made = ShadowWorld()
    # WHEN a guarded test promotes THEN a ConfigurationError, before UpdateEndpoint
    with pytest.raises(ConfigurationError, match="guarded promotion"):
        guarded_promotion(made)
    assert not any(config.endswith("-promoted") for _, config in made.sagemaker.updates)


def test_a_dry_run_of_a_guarded_test_shows_the_alarms_and_deployment_config_the_promotion_would_send(
    world: tuple[ShadowWorld, InMemoryPromotionAlarms],
) -> None:
    made, alarms = world
    # GIVEN a guarded test asked for as a dry run
    plan = made.plan("dry-1", promotion={"guardrails": GUARDRAILS}, dryRun=True)
    snapshot = made.steps.snapshot(plan, save=False)

    # WHEN it is reported as the state machine's DryRun task reports it
    made.reports.dry_run(plan, snapshot, made.steps.guarded_promotion_plan(plan, snapshot))

    # THEN the plan holds the rollback alarm on the production variant and the DeploymentConfig naming it
    report = made.objects.report(plan)
    assert report.planned is not None
    guarded: Any = report.planned["guardedPromotion"]
    [alarm] = guarded["alarms"]
    assert alarm["AlarmName"].startswith(f"shadowscale-test-promotion-{ENDPOINT}-")
    assert alarm["MetricName"] == "Invocation5XXErrors"
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"EndpointName": ENDPOINT, "VariantName": PRODUCTION}
    deployment = guarded["DeploymentConfig"]
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": alarm["AlarmName"]}]}
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    canary = {"Type": "INSTANCE_COUNT", "Value": 1}
    assert routing == {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": canary}
    # ... the HTML page shows it too, and nothing was created
    html = made.objects.objects[(plan.reports_bucket, f"{plan.report_prefix}/report.html")]
    assert isinstance(html, str)
    assert "AutoRollbackConfiguration" in html
    assert alarms.alarms == {}
    assert made.sagemaker.deployments == {}


def test_the_dry_run_plans_exactly_what_the_guarded_promotion_then_sends(
    world: tuple[ShadowWorld, InMemoryPromotionAlarms],
) -> None:
    made, alarms = world
    # GIVEN the dry run's plan of a guarded test
    plan, snapshot = guarded_promotion(made)
    planned: Any = made.steps.guarded_promotion_plan(plan, snapshot)

    # WHEN it is compared with what the promotion put and sent
    [alarm] = alarms.alarms.values()

    # THEN the alarm requests and the DeploymentConfig are the same
    assert planned["alarms"] == [alarm.request()]
    assert planned["DeploymentConfig"] == made.sagemaker.deployments[plan.promoted_config_name]


def test_a_dry_run_of_a_plain_promotion_plans_no_guardrails(world: tuple[ShadowWorld, InMemoryPromotionAlarms]) -> None:
    made, _ = world
    # GIVEN a test without guardrails WHEN its dry run is planned THEN there is no guarded promotion in it
    plan = made.plan("dry-2", dryRun=True)
    snapshot = made.steps.snapshot(plan, save=False)
    assert made.steps.guarded_promotion_plan(plan, snapshot) is None
    made.reports.dry_run(plan, snapshot, None)
    report = made.objects.report(plan)
    assert report.planned is not None
    assert "guardedPromotion" not in report.planned
