"""The autopilot orchestration with in-memory fakes: lease, retry, defer, AAS, dry-run."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import pytest
from shadowscale.capacity.autopilot import SHADOW_TEST_OWNER_PREFIX, Autopilot
from shadowscale.capacity.events import DeferredChange, ScheduleTick
from shadowscale.shadow_tests.models import lease_owner
from shadowscale.shared.errors import EndpointBusy, EndpointLocked
from shadowscale.shared.observability import metrics
from shadowscale.shared.retry import RetryBudget

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


def counted(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


SHADOW_TEST = lease_owner("arn:aws:states:us-east-1:123456789012:execution:shadowscale-dev-shadow-test:t1")


def test_given_a_shadow_tests_hold_when_an_alarm_asks_for_more_then_it_waits_and_is_applied_when_the_hold_ends(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a shadow test holding the endpoint exclusively (it is updating it)
    metrics.clear_metrics()
    world.state.leases[ENDPOINT] = (SHADOW_TEST, world.clock.now() + timedelta(hours=1))

    # WHEN an alarm fires
    report = world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))

    # THEN it waits for the hold, without retrying in the function and without touching the endpoint
    assert report.outcome == "deferred"
    assert report.notes[0] == (
        f"endpoint held by shadow test {SHADOW_TEST}: waits for the hold to end, re-checked every 30 s"
    )
    assert [(change.instances_before, change.instances_after) for change in report.changes] == [(1, 3)]
    assert world.clock.slept == []
    [(waiting, delay)] = world.deferrals.deferred
    assert (waiting.waiting_for, waiting.rechecks, delay) == (SHADOW_TEST, 0, 30)
    assert world.sagemaker.updates == []
    assert world.state.memories == {}  # nothing remembered without the lease
    assert counted("ChangesWaitingForShadowTest") == [1.0]

    # WHEN it comes back while the hold stands THEN it goes round again as a new message, not raised
    world.clock.advance(seconds=30)
    again = world.autopilot.on_deferred(waiting)
    assert again.outcome == "deferred"
    [_, (second, delay)] = world.deferrals.deferred
    assert second.change_id != waiting.change_id  # its own idempotency key: not taken for a duplicate
    assert (second.rechecks, second.deferred_at, second.source, delay) == (1, waiting.deferred_at, waiting.source, 30)

    # WHEN the test lets go and the change comes back THEN it is applied and remembered
    del world.state.leases[ENDPOINT]
    world.clock.advance(seconds=30)
    applied = world.autopilot.on_deferred(second)
    assert applied.outcome == "applied"
    assert world.primary == 3
    assert len(world.deferrals.deferred) == 2
    assert ENDPOINT in world.state.memories
    assert warnings_of(caplog) == []  # a short wait is routine


def test_given_a_shadow_tests_hold_when_a_heartbeat_finds_nothing_to_do_then_it_is_a_no_op(world: World) -> None:
    # GIVEN a hold, and an endpoint already within its policy
    world.state.leases[ENDPOINT] = (SHADOW_TEST, world.clock.now() + timedelta(hours=1))
    world.autopilot.on_schedule_tick(world.tick())  # GIVEN nothing would change

    # WHEN the heartbeat ticks THEN nothing is deferred, raised or written
    report = world.autopilot.on_schedule_tick(world.tick())
    assert report.outcome == "no-change"
    assert report.notes[0] == f"endpoint held by shadow test {SHADOW_TEST}; nothing to do"
    assert world.deferrals.deferred == []
    assert world.sagemaker.updates == []
    assert world.state.leases[ENDPOINT][0] == SHADOW_TEST


def test_given_a_hold_when_a_window_opens_then_the_tick_waits_and_the_window_applies_after_the_hold() -> None:
    # GIVEN business hours open while a test holds the endpoint
    world = World(business_hours=True)
    world.state.leases[ENDPOINT] = (SHADOW_TEST, world.clock.now() + timedelta(minutes=20))
    report = world.autopilot.on_schedule_tick(world.tick("business-hours-start"))
    assert report.outcome == "deferred"
    assert world.primary == 1

    # WHEN the hold's lease runs out (the test crashed) THEN the next re-check applies the window
    [(waiting, _)] = world.deferrals.deferred
    world.clock.advance(minutes=21)
    assert world.autopilot.on_deferred(waiting).outcome == "applied"
    assert world.primary == 4


def test_given_a_change_that_waited_an_hour_when_it_still_meets_the_hold_then_each_recheck_warns(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.state.leases[ENDPOINT] = (SHADOW_TEST, world.clock.now() + timedelta(hours=8))
    world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))
    [(waiting, _)] = world.deferrals.deferred
    world.clock.advance(minutes=61)
    assert world.autopilot.on_deferred(waiting).outcome == "deferred"
    assert warnings_of(caplog) == ["scaling change waits for a shadow test's hold to end"]


def test_given_deferred_change_when_a_shadow_test_took_the_lease_then_replay_waits_not_raised(
    world: World,
) -> None:
    # GIVEN a change deferred because the endpoint was updating, and a shadow test that started since
    world.sagemaker.status[ENDPOINT] = "Updating"
    world.autopilot.on_alarm(transition("ALARM", world.clock.now(), datapoints=(160000.0,)))
    [(change, _)] = world.deferrals.deferred
    world.sagemaker.status[ENDPOINT] = "InService"
    world.state.leases[ENDPOINT] = ("shadow-test:exec-1", world.clock.now() + timedelta(hours=4))

    # WHEN the queue delivers it THEN it waits for the hold (no raise: SQS would redeliver it 8 times)
    report = world.autopilot.on_deferred(change)
    assert report.outcome == "deferred"
    [_, (waiting, _)] = world.deferrals.deferred
    assert waiting.waiting_for == "shadow-test:exec-1"
    assert world.primary == 1


def test_given_a_policy_variant_the_endpoint_lost_when_ticked_then_warned_and_counted(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the candidate variant is gone (say, the endpoint was updated to one variant)
    metrics.clear_metrics()
    del world.sagemaker.endpoints[ENDPOINT]["candidate"]
    world.autopilot.on_schedule_tick(world.tick())
    assert warnings_of(caplog) == ["the policy names variants the endpoint does not have: they are not scaled"]
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.__dict__["missing_variants"] == ["candidate"]
    assert counted("PolicyVariantsMissing") == [1.0]


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
    [(requeued, delay)] = world.deferrals.deferred
    assert delay == 900
    # a new message with its own idempotency key, so its delivery is not swallowed as a duplicate of this one
    assert requeued.change_id != change.change_id
    assert (requeued.not_before, requeued.source, requeued.rechecks) == (not_before, change.source, 1)


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
