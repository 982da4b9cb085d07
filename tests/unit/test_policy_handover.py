"""A promotion hands the capacity policy to the promoted variant: carry_over (pure) and PolicyHandover."""

from __future__ import annotations

from datetime import timedelta

import pytest
from shadowscale.capacity.policy_handover import PolicyHandover, carry_over
from shadowscale.shared.errors import AwsServiceUnavailable, InvalidEvent
from shadowscale.shared.handover import PromotionHandover, is_handover, parse_handover

from tests.factories import CANDIDATE_ALARM, ENDPOINT, LATENCY_ALARM, make_policy
from tests.fakes import (
    InMemoryAlarms,
    InMemoryEndpointState,
    InMemoryPolicyRevisions,
    ManualClock,
    RecordingAnnouncer,
)


def promotion(clock: ManualClock, **overrides: object) -> PromotionHandover:
    fields: dict[str, object] = {
        "endpoint": ENDPOINT,
        "testId": "fraud-detector-t1",
        "fromVariant": "primary",
        "toVariant": "candidate",
        "promotedAt": clock.now(),
        "instances": 3,
    }
    fields.update(overrides)
    return PromotionHandover.model_validate(fields)


class World:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.revisions = InMemoryPolicyRevisions()
        self.revisions.add(make_policy())
        self.alarms = InMemoryAlarms(
            dimensions={
                LATENCY_ALARM: {"EndpointName": ENDPOINT, "VariantName": "primary"},
                CANDIDATE_ALARM: {"EndpointName": ENDPOINT, "VariantName": "candidate"},
            }
        )
        self.resend = RecordingAnnouncer()
        self.state = InMemoryEndpointState()
        self.handover = PolicyHandover(
            revisions=self.revisions, alarms=self.alarms, state=self.state, resend=self.resend, clock=self.clock
        )


def test_given_a_policy_when_carried_over_then_the_promoted_variant_has_production_bounds_windows_and_alarms() -> None:
    # GIVEN the factory policy: primary [1..8] with a window and the latency alarm; candidate [1..2], 5xx alarm
    clock = ManualClock()
    policy = make_policy()
    # WHEN candidate is promoted over primary
    carried = carry_over(policy, promotion(clock))
    # THEN candidate has everything primary had, and primary is gone
    assert carried is not None
    [promoted] = carried.policy.variants
    old = policy.variant("primary")
    assert old is not None
    assert promoted.name == "candidate"
    assert (promoted.min_instances, promoted.max_instances) == (old.min_instances, old.max_instances)
    assert promoted.scale_out_cooldown_seconds == old.scale_out_cooldown_seconds
    assert promoted.schedules == old.schedules
    assert [reaction.alarm_name for reaction in promoted.alarms] == [LATENCY_ALARM]
    assert "fraud-detector-t1" in carried.reason
    assert any(CANDIDATE_ALARM in note and "dropped" in note for note in carried.notes)


def test_given_a_promotion_outside_the_bounds_when_carried_over_then_it_says_the_heartbeat_brings_it_within() -> None:
    clock = ManualClock()
    carried = carry_over(make_policy(), promotion(clock, instances=12))
    assert carried is not None
    assert any("12 instance(s), outside [1..8]" in note for note in carried.notes)


def test_given_a_policy_already_carried_over_when_carried_again_then_nothing_to_carry() -> None:
    clock = ManualClock()
    carried = carry_over(make_policy(), promotion(clock))
    assert carried is not None
    assert carry_over(carried.policy, promotion(clock)) is None


def test_given_a_promotion_when_handed_over_then_one_new_revision_with_its_reason_and_alarms_repointed() -> None:
    world = World()
    report = world.handover.on_promotion(promotion(world.clock))
    assert report.outcome == "applied"
    revisions = world.revisions.revisions[ENDPOINT]
    assert len(revisions) == 2
    carried, reason = revisions[-1]
    assert carried.variant("candidate") is not None
    assert carried.variant("primary") is None
    assert reason is not None
    assert "promoted 'candidate' over 'primary'" in reason
    assert world.alarms.dimensions[LATENCY_ALARM]["VariantName"] == "candidate"
    assert any(f"alarm {LATENCY_ALARM!r} now watches 'candidate'" == note for note in report.notes)


def test_given_a_handover_delivered_twice_when_handled_then_one_revision_and_the_second_is_a_no_change() -> None:
    world = World()
    world.handover.on_promotion(promotion(world.clock))
    again = world.handover.on_promotion(promotion(world.clock))
    assert again.outcome == "no-change"
    assert len(world.revisions.revisions[ENDPOINT]) == 2
    assert any("already watches" in note for note in again.notes)


def test_given_a_failed_alarm_repoint_when_delivered_again_then_repointed_without_a_new_revision() -> None:
    # GIVEN a handover whose revision was stored but whose alarm re-point hit an outage
    world = World()
    world.alarms.fail_next = 1
    first = world.handover.on_promotion(promotion(world.clock))
    assert first.outcome == "deferred"
    [(resent, delay)] = world.resend.announced
    assert resent.attempt == 1
    assert delay == 30
    assert world.alarms.dimensions[LATENCY_ALARM]["VariantName"] == "primary"
    # WHEN the resent handover arrives THEN the alarm moves and no third revision is written
    second = world.handover.on_promotion(resent)
    assert second.outcome == "applied"
    assert world.alarms.dimensions[LATENCY_ALARM]["VariantName"] == "candidate"
    assert len(world.revisions.revisions[ENDPOINT]) == 2


def test_given_an_outage_longer_than_a_day_when_still_failing_then_it_fails_for_the_dead_letter_queue() -> None:
    world = World()
    handover = promotion(world.clock)
    world.clock.advance(minutes=24 * 60 + 1)
    world.revisions.fail_puts = 1
    with pytest.raises(AwsServiceUnavailable):
        world.handover.on_promotion(handover)
    assert world.resend.announced == []


def test_given_round_trips_when_sent_round_again_then_the_delay_grows_to_the_sqs_limit() -> None:
    world = World()
    delays = []
    handover = promotion(world.clock)
    for _ in range(8):
        world.revisions.fail_puts = 1
        world.handover.on_promotion(handover)
        handover, delay = world.resend.announced[-1]
        delays.append(delay)
        world.clock.advance(seconds=delay)
    assert delays == [30, 60, 120, 240, 480, 900, 900, 900]
    assert [sent.event_id for sent, _ in world.resend.announced][:2] == [
        "promotion:fraud-detector-t1:1",
        "promotion:fraud-detector-t1:2",
    ]


def test_given_an_alarm_outside_the_stack_permissions_when_handed_over_then_the_report_says_to_repoint_it() -> None:
    world = World()
    world.alarms.forbidden.add(LATENCY_ALARM)
    report = world.handover.on_promotion(promotion(world.clock))
    assert report.outcome == "applied"
    assert any("re-point it yourself" in note for note in report.notes)


def test_given_no_policy_for_the_endpoint_when_handed_over_then_ignored() -> None:
    world = World()
    report = world.handover.on_promotion(promotion(world.clock, endpoint="other-endpoint"))
    assert report.outcome == "ignored"


def test_a_handover_body_is_told_apart_from_a_deferred_change_and_bad_fields_are_named() -> None:
    clock = ManualClock()
    body = promotion(clock).model_dump_json(by_alias=True)
    assert is_handover(body)
    assert parse_handover(body) == promotion(clock)
    assert not is_handover('{"kind":"shadowscale.deferred-change"}')
    with pytest.raises(InvalidEvent, match="toVariant"):
        parse_handover({**promotion(clock).model_dump(mode="json", by_alias=True), "toVariant": "primary"})
    with pytest.raises(InvalidEvent, match="fromVariant"):
        parse_handover({**promotion(clock).model_dump(mode="json", by_alias=True), "fromVariant": "bad name!"})


def test_given_a_promotion_that_removed_other_variants_when_carried_over_then_their_entries_go_with_a_note() -> None:
    # GIVEN a shadow variant "challenger" promoted over primary; the promoted config has only challenger
    clock = ManualClock()
    handover = promotion(clock, toVariant="challenger", variants=["challenger"])
    # WHEN carried over THEN the candidate entry (its variant is gone) is dropped and the note says so
    carried = carry_over(make_policy(), handover)
    assert carried is not None
    assert [variant.name for variant in carried.policy.variants] == ["challenger"]
    assert any("removed are dropped: candidate" in note for note in carried.notes)
    # ... while a handover that does not know the variants keeps them
    unknown = carry_over(make_policy(), promotion(clock, toVariant="challenger"))
    assert unknown is not None
    assert [variant.name for variant in unknown.policy.variants] == ["challenger", "candidate"]


def test_given_memory_of_the_old_variant_when_handed_over_then_the_promoted_variant_inherits_it() -> None:
    # GIVEN the autopilot remembers primary's last scale-out and the windows in force
    from shadowscale.shared.endpoint import EndpointMemory, VariantMemory

    world = World()
    remembered = VariantMemory(last_scale_out_at=world.clock.now(), schedule_occurrence="business-hours@x")
    world.state.memories[ENDPOINT] = EndpointMemory(variants={"primary": remembered})
    # WHEN the promotion is handed over
    world.handover.on_promotion(promotion(world.clock))
    # THEN candidate has primary's memory (its cooldown runs on, no window edge is seen) and the lease is free
    assert world.state.memories[ENDPOINT].variants == {"candidate": remembered}
    assert world.state.leases == {}


def test_given_a_decision_holds_the_endpoint_when_the_handover_arrives_then_it_comes_back_later() -> None:
    world = World()
    world.state.leases[ENDPOINT] = ("alarm:x", world.clock.now() + timedelta(seconds=60))
    report = world.handover.on_promotion(promotion(world.clock))
    assert report.outcome == "deferred"
    assert len(world.revisions.revisions[ENDPOINT]) == 1
    [(again, _)] = world.resend.announced
    assert again.attempt == 1
