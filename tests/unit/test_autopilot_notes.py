"""What a decision report says about the variants it leaves alone."""

from __future__ import annotations

import random

from shadowscale.capacity.autopilot import Autopilot
from shadowscale.capacity.events import ScheduleTick
from shadowscale.shared.retry import RetryBudget

from tests.factories import ENDPOINT, make_policy
from tests.fakes import (
    FakeSageMaker,
    FakeScalableTargets,
    FakeVariant,
    InMemoryEndpointState,
    InMemoryPolicies,
    ManualClock,
    RecordingDeferrals,
)


def autopilot(clock: ManualClock) -> Autopilot:
    policies = InMemoryPolicies()
    policies.add(make_policy())
    sagemaker = FakeSageMaker()
    sagemaker.add(ENDPOINT, primary=FakeVariant(1), candidate=FakeVariant(1, 0.1))
    return Autopilot(
        policies=policies,
        state=InMemoryEndpointState(),
        endpoints=sagemaker,
        scalable_targets=FakeScalableTargets(),
        deferrals=RecordingDeferrals(),
        clock=clock,
        retry=RetryBudget(max_attempts=2, budget_seconds=5, rng=random.Random(1)),
        lease_seconds=60,
        defer_delay_seconds=60,
    )


def test_given_one_variant_scaled_when_reported_then_no_nothing_to_do_note_rides_on_the_applied_change() -> None:
    # GIVEN business hours (Monday 11:00 Berlin): the window scales primary 1 -> 4, the candidate stays
    clock = ManualClock()
    clock.current = clock.current.replace(hour=10)
    pilot = autopilot(clock)
    # WHEN the heartbeat applies it
    report = pilot.on_schedule_tick(ScheduleTick(endpoint=ENDPOINT, schedule="heartbeat", scheduled_time=clock.now()))
    # THEN the report lists the change, and no note says "nothing to do" about an applied decision
    assert report.outcome == "applied"
    assert [change.variant for change in report.changes] == ["primary"]
    assert not any("nothing to do" in note for note in report.notes), report.notes


def test_given_nothing_changes_when_reported_then_each_idle_variant_is_named_with_its_reason() -> None:
    clock = ManualClock()
    clock.current = clock.current.replace(hour=10)
    pilot = autopilot(clock)
    pilot.on_schedule_tick(ScheduleTick(endpoint=ENDPOINT, schedule="heartbeat", scheduled_time=clock.now()))
    clock.advance(minutes=5)
    report = pilot.on_schedule_tick(ScheduleTick(endpoint=ENDPOINT, schedule="heartbeat", scheduled_time=clock.now()))
    assert report.outcome == "no-change"
    assert report.notes == ("primary: within bounds; nothing to do", "candidate: within bounds; nothing to do")
