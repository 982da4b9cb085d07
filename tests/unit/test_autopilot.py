"""The autopilot orchestration with in-memory fakes: lease, retry, defer, AAS, dry-run."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import pytest
from shadowscale.domain.autopilot import SHADOW_TEST_OWNER_PREFIX, Autopilot
from shadowscale.domain.retry import RetryBudget
from shadowscale.errors import EndpointBusy, EndpointLocked
from shadowscale.models.events import DeferredChange, ScheduleTick
from shadowscale.models.shadow_test import lease_owner
from shadowscale.observability import metrics

from tests.factories import ENDPOINT, make_policy, transition
from tests.fakes import (
    FakeSageMaker,
    FakeScalableTargets,
    FakeVariant,
    InMemoryEndpointState,
    InMemoryPolicies,
    ManualClock,
    RecordingDeferrals,
)


class World:
    def __init__(self, *, dry_run: bool = False, policy_dry_run: bool = False, business_hours: bool = False) -> None:
        # Monday 2026-11-23: 10:00 UTC is 11:00 in Berlin (window floor 4); 21:00 UTC is after hours (floor: min).
        self.clock = ManualClock()
        self.clock.current = self.clock.current.replace(hour=10 if business_hours else 21)
        self.policies = InMemoryPolicies()
        self.policies.add(make_policy(dryRun=policy_dry_run))
        self.state = InMemoryEndpointState()
        self.sagemaker = FakeSageMaker()
        self.sagemaker.add(ENDPOINT, primary=FakeVariant(1), candidate=FakeVariant(1, 0.1))
        self.targets = FakeScalableTargets()
        self.deferrals = RecordingDeferrals()
        self.autopilot = Autopilot(
            policies=self.policies,
            state=self.state,
            endpoints=self.sagemaker,
            scalable_targets=self.targets,
            deferrals=self.deferrals,
            clock=self.clock,
            retry=RetryBudget(max_attempts=4, budget_seconds=10, rng=random.Random(1)),
            lease_seconds=60,
            defer_delay_seconds=60,
            dry_run=dry_run,
        )

    @property
    def primary(self) -> int:
        return self.sagemaker.endpoints[ENDPOINT]["primary"].instances

    def tick(self, name: str = "heartbeat") -> ScheduleTick:
        return ScheduleTick(endpoint=ENDPOINT, schedule=name, scheduled_time=self.clock.now())


@pytest.fixture
def world() -> World:
    return World()


def test_given_business_hours_when_tick_then_primary_scaled_to_4_and_lease_released() -> None:
    world = World(business_hours=True)
    report = world.autopilot.on_schedule_tick(world.tick())
    assert report.outcome == "applied"
    assert world.primary == 4
    assert world.state.leases == {}


def test_given_tick_applied_when_ticked_again_then_no_update_call() -> None:
    world = World(business_hours=True)
    world.autopilot.on_schedule_tick(world.tick())
    calls = len(world.sagemaker.updates)
    world.clock.advance(minutes=5)
    report = world.autopilot.on_schedule_tick(world.tick())
    assert report.outcome == "no-change"
    assert len(world.sagemaker.updates) == calls


def test_given_endpoint_busy_twice_when_alarm_then_retried_with_backoff_and_applied(world: World) -> None:
    world.sagemaker.busy_for = 2
    report = world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))
    assert report.outcome == "applied"
    assert world.primary == 3
    assert len(world.clock.slept) == 2
    assert world.deferrals.deferred == []


def test_given_endpoint_updating_beyond_budget_when_alarm_then_deferred_not_dropped(world: World) -> None:
    world.sagemaker.status[ENDPOINT] = "Updating"
    event = transition("ALARM", world.clock.now(), datapoints=(160000.0,))
    report = world.autopilot.on_alarm(event)
    assert report.outcome == "deferred"
    assert world.primary == 1
    [(change, delay)] = world.deferrals.deferred
    assert change.source == event
    assert delay == 60
    assert world.state.leases == {}
    # WHEN the endpoint is back InService and the deferred change is replayed THEN it is applied.
    world.sagemaker.status[ENDPOINT] = "InService"
    assert world.autopilot.on_deferred(change).outcome == "applied"
    assert world.primary == 3


def test_given_still_busy_when_replayed_then_raises_for_queue_retry(world: World) -> None:
    world.sagemaker.status[ENDPOINT] = "Updating"
    world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))
    [(change, _)] = world.deferrals.deferred
    with pytest.raises(EndpointBusy):
        world.autopilot.on_deferred(change)
    assert len(world.deferrals.deferred) == 1


def skipped_metric_and_warnings(caplog: pytest.LogCaptureFixture) -> tuple[list[float], list[str]]:
    counted = metrics.metric_set.get("ChangesSkippedForShadowTest", {}).get("Value", [])
    warnings = [str(getattr(r, "lease_owner", "")) for r in caplog.records if r.levelno == logging.WARNING]
    return list(counted), warnings


def test_given_lease_held_by_shadow_test_when_alarm_then_deferred_once_and_the_replay_skipped(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a shadow test holding the endpoint's lease for hours
    metrics.clear_metrics()
    owner = lease_owner("arn:aws:states:us-east-1:123456789012:execution:shadowscale-dev-shadow-test:t1")
    world.state.leases[ENDPOINT] = (owner, world.clock.now() + timedelta(hours=4))

    # WHEN an alarm fires THEN it is retried and deferred, like any held lease (a test's hold may be short)
    report = world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))
    assert report.outcome == "deferred"
    assert owner in report.notes[0]
    [(change, _)] = world.deferrals.deferred

    # WHEN the queue delivers it while the test still holds the endpoint
    world.clock.advance(seconds=60)
    replayed = world.autopilot.on_deferred(change)

    # THEN it is skipped with the test named, not raised (8 receives would dead-letter it), and not re-queued
    assert replayed.outcome == "skipped"
    assert replayed.notes == (f"endpoint held by shadow test {owner}",)
    assert len(world.deferrals.deferred) == 1
    assert world.sagemaker.updates == []
    assert world.state.leases[ENDPOINT][0] == owner  # the test keeps its lease
    counted, warnings = skipped_metric_and_warnings(caplog)
    assert counted == [1.0]
    assert warnings == [owner]


def test_given_deferred_change_when_a_shadow_test_took_the_lease_then_replay_is_skipped_not_raised(
    world: World,
) -> None:
    # GIVEN a change deferred because the endpoint was updating, and a shadow test that started since
    world.sagemaker.status[ENDPOINT] = "Updating"
    world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))
    [(change, _)] = world.deferrals.deferred
    world.sagemaker.status[ENDPOINT] = "InService"
    world.state.leases[ENDPOINT] = ("shadow-test:exec-1", world.clock.now() + timedelta(hours=4))

    # WHEN the queue delivers it THEN it is consumed as skipped (no raise: SQS would redeliver it 8 times)
    report = world.autopilot.on_deferred(change)
    assert report.outcome == "skipped"
    assert report.notes == ("endpoint held by shadow test shadow-test:exec-1",)
    assert len(world.deferrals.deferred) == 1
    assert world.primary == 1


def test_given_short_lease_of_another_autopilot_when_alarm_then_retried_deferred_and_replay_raises(
    world: World,
) -> None:
    # GIVEN another invocation's lease that outlasts this one's retry budget
    world.state.leases[ENDPOINT] = ("autopilot:other", world.clock.now() + timedelta(seconds=50))
    report = world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))

    # THEN retried within the budget, then deferred, as before
    assert report.outcome == "deferred"
    assert world.clock.slept
    [(change, _)] = world.deferrals.deferred
    # ... and a replay that still finds it held raises, for the queue to retry
    with pytest.raises(EndpointLocked):
        world.autopilot.on_deferred(change)


def test_the_autopilot_knows_a_shadow_tests_lease_owner() -> None:
    assert lease_owner("arn:aws:states:::execution:m:e").startswith(SHADOW_TEST_OWNER_PREFIX)


def test_given_ok_within_cooldown_when_replayed_after_cooldown_then_scales_in() -> None:
    world = World()
    world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))
    assert world.primary == 3
    world.clock.advance(seconds=60)
    report = world.autopilot.on_alarm(transition("OK", world.clock.now()))
    assert report.outcome == "deferred"
    assert world.primary == 3
    [(change, delay)] = world.deferrals.deferred
    assert change.not_before == world.clock.now() + timedelta(seconds=540)
    assert delay == 541
    world.clock.advance(seconds=541)
    assert world.autopilot.on_deferred(change).outcome == "applied"
    assert world.primary == 2


def test_given_not_due_when_replayed_then_requeued_with_remaining_delay() -> None:
    world = World()
    not_before = world.clock.now() + timedelta(seconds=2000)
    change = DeferredChange(
        change_id="c1",
        endpoint=ENDPOINT,
        source=transition("OK", world.clock.now()),
        reason="cooldown",
        deferred_at=world.clock.now(),
        not_before=not_before,
    )
    assert world.autopilot.on_deferred(change).outcome == "deferred"
    assert world.deferrals.deferred == [(change, 900)]


def test_given_newer_ok_applied_when_stale_alarm_replayed_then_superseded() -> None:
    world = World()
    stale = transition("ALARM", world.clock.now() - timedelta(minutes=10), datapoints=(160000.0,))
    world.autopilot.on_alarm(transition("OK", world.clock.now()))
    assert world.autopilot.on_alarm(stale).outcome == "superseded"
    assert world.primary == 1


def test_given_aas_registered_variant_when_alarm_then_min_moved_not_count(world: World) -> None:
    world.targets.register(ENDPOINT, "primary", 1, 5)
    report = world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(300000.0,)))
    assert report.outcome == "applied"
    assert world.targets.bound_changes == [(ENDPOINT, "primary", 5, 5)]
    assert world.sagemaker.updates == []  # no DesiredInstanceCount that auto scaling would undo
    assert report.changes[0].via == "scalable-target"


def test_given_aas_variant_and_max_below_target_when_scaled_out_then_max_raised(world: World) -> None:
    world.targets.register(ENDPOINT, "primary", 1, 2)
    world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(300000.0,)))
    assert world.targets.bound_changes == [(ENDPOINT, "primary", 5, 5)]


def test_given_weight_and_aas_count_when_schedule_then_weight_still_set_on_endpoint(world: World) -> None:
    world.targets.register(ENDPOINT, "primary", 1, 8)
    world.autopilot.on_alarm(transition("ALARM", world.clock.now(), alarm="fraud-detector-candidate-5xx"))
    [(_, updates)] = world.sagemaker.updates
    assert [(u.variant, u.instances, u.weight) for u in updates] == [("candidate", None, 0.0)]


@pytest.mark.parametrize(("global_dry", "policy_dry"), [(True, False), (False, True)])
def test_given_dry_run_when_decided_then_nothing_called_and_nothing_remembered(
    global_dry: bool, policy_dry: bool
) -> None:
    world = World(dry_run=global_dry, policy_dry_run=policy_dry, business_hours=True)
    report = world.autopilot.on_schedule_tick(world.tick())
    assert report.outcome == "dry-run"
    assert report.changes[0].instances_after == 4
    assert world.sagemaker.updates == []
    assert world.targets.bound_changes == []
    assert world.state.memories == {}


def test_given_unknown_alarm_when_received_then_ignored_without_calls(world: World) -> None:
    report = world.autopilot.on_alarm(transition("ALARM", world.clock.now(), alarm="someone-elses-alarm"))
    assert report.outcome == "ignored"
    assert world.sagemaker.describes == 0
