"""Pure capacity decisions: schedule edges, steps, clamps, cooldowns, superseded transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shadowscale.capacity.decision import VariantChange
from shadowscale.capacity.decisions import clamp, decide_alarm, decide_schedule, schedule_state, step_change
from shadowscale.capacity.policy import StepAdjustment, parse_policy
from shadowscale.shared.endpoint import (
    AlarmMemory,
    EndpointMemory,
    EndpointObservation,
    VariantMemory,
    VariantObservation,
)

from tests.factories import ENDPOINT, LATENCY_ALARM, make_policy, policy_document, transition

MONDAY_NOON_UTC = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Berlin: business hours
MONDAY_NIGHT_UTC = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # 22:00 in Berlin: after hours


def observed(primary: int, candidate: int = 1, weight: float = 1.0) -> EndpointObservation:
    return EndpointObservation(
        name=ENDPOINT,
        status="InService",
        config_name="c",
        variants=(
            VariantObservation(name="primary", current_instances=primary, current_weight=weight),
            VariantObservation(name="candidate", current_instances=candidate, current_weight=0.1),
        ),
    )


def primary_change(decision_changes: tuple[VariantChange, ...]) -> VariantChange:
    return next(change for change in decision_changes if change.variant == "primary")


class TestScheduleState:
    def test_given_business_hours_when_noon_then_window_floor_is_4(self) -> None:
        variant = make_policy().variants[0]
        state = schedule_state(variant, MONDAY_NOON_UTC)
        assert state.floor == 4
        assert state.occurrence == "business-hours@2026-11-23T07:00:00+00:00"

    def test_given_business_hours_when_night_then_no_window(self) -> None:
        assert schedule_state(make_policy().variants[0], MONDAY_NIGHT_UTC).floor is None

    def test_given_duration_window_when_past_its_length_then_inactive(self) -> None:
        document = policy_document()
        document["variants"][0]["schedules"] = [
            {"name": "batch", "start": "cron(0 1 * * ? *)", "durationMinutes": 90, "timezone": "UTC", "instances": 6}
        ]
        variant = parse_policy(document).variants[0]
        assert schedule_state(variant, datetime(2026, 11, 23, 2, 29, tzinfo=UTC)).floor == 6
        assert schedule_state(variant, datetime(2026, 11, 23, 2, 30, tzinfo=UTC)).floor is None


class TestScheduleDecision:
    def test_given_window_starts_when_tick_then_scales_to_window_count(self) -> None:
        decision = decide_schedule(make_policy(), observed(1), EndpointMemory(), MONDAY_NOON_UTC, "tick")
        change = primary_change(decision.changes)
        assert (change.instances_before, change.instances_after) == (1, 4)

    def test_given_tick_applied_when_second_tick_in_same_window_then_no_change(self) -> None:
        policy = make_policy()
        first = decide_schedule(policy, observed(1), EndpointMemory(), MONDAY_NOON_UTC, "tick-1")
        second = decide_schedule(policy, observed(4), first.memory, MONDAY_NOON_UTC + timedelta(minutes=5), "tick-2")
        assert second.effective_changes == ()

    def test_given_alarm_scaled_out_when_tick_in_same_window_then_count_kept(self) -> None:
        policy = make_policy()
        first = decide_schedule(policy, observed(1), EndpointMemory(), MONDAY_NOON_UTC, "tick-1")
        later = decide_schedule(policy, observed(7), first.memory, MONDAY_NOON_UTC + timedelta(hours=1), "tick-2")
        assert later.effective_changes == ()

    def test_given_window_ends_when_tick_then_scales_to_min(self) -> None:
        policy = make_policy()
        day = decide_schedule(policy, observed(1), EndpointMemory(), MONDAY_NOON_UTC, "tick-1")
        night = decide_schedule(policy, observed(4), day.memory, MONDAY_NIGHT_UTC, "tick-2")
        assert primary_change(night.changes).instances_after == 1

    def test_given_alarm_in_alarm_when_window_ends_then_scale_in_held(self) -> None:
        policy = make_policy()
        day = decide_schedule(policy, observed(1), EndpointMemory(), MONDAY_NOON_UTC, "tick-1")
        primary = day.memory.variant("primary").model_copy(
            update={"alarms": {LATENCY_ALARM: AlarmMemory(state="ALARM", changed_at=MONDAY_NOON_UTC)}}
        )
        memory = day.memory.model_copy(update={"variants": {**day.memory.variants, "primary": primary}})
        night = decide_schedule(policy, observed(6), memory, MONDAY_NIGHT_UTC, "tick-2")
        change = primary_change(night.changes)
        assert change.instances_after == 6
        assert "held" in change.reason

    def test_given_count_below_floor_when_repeated_tick_then_restored_to_floor(self) -> None:
        policy = make_policy()
        first = decide_schedule(policy, observed(1), EndpointMemory(), MONDAY_NOON_UTC, "tick-1")
        # Someone scaled it down by hand in the middle of business hours.
        again = decide_schedule(policy, observed(2), first.memory, MONDAY_NOON_UTC + timedelta(minutes=5), "t2")
        assert primary_change(again.changes).instances_after == 4

    def test_given_count_above_max_when_tick_then_clamped_to_max(self) -> None:
        policy = make_policy()
        first = decide_schedule(policy, observed(1), EndpointMemory(), MONDAY_NOON_UTC, "tick-1")
        again = decide_schedule(policy, observed(12), first.memory, MONDAY_NOON_UTC, "tick-2")
        assert primary_change(again.changes).instances_after == 8


class TestSteps:
    STEPS = (
        StepAdjustment(lower_bound=0, upper_bound=50000, change=1),
        StepAdjustment(lower_bound=50000, upper_bound=200000, change=2),
        StepAdjustment(lower_bound=200000, change=4),
    )

    @pytest.mark.parametrize(
        ("breach", "change"), [(0, 1), (49999.9, 1), (50000, 2), (199999, 2), (200000, 4), (1e9, 4), (None, 1)]
    )
    def test_given_breach_when_sized_then_matching_step(self, breach: float | None, change: int) -> None:
        assert step_change(self.STEPS, breach) == change

    def test_clamp_respects_min_max_and_floor(self) -> None:
        variant = make_policy().variants[0]
        assert clamp(0, variant, None) == 1
        assert clamp(20, variant, None) == 8
        assert clamp(2, variant, 4) == 4


class TestAlarmDecision:
    def test_given_breach_of_80ms_when_alarm_then_scales_out_by_two(self) -> None:
        decision = decide_alarm(
            make_policy(),
            observed(2),
            EndpointMemory(),
            transition("ALARM", MONDAY_NIGHT_UTC, datapoints=(150000.0, 180000.0)),
            MONDAY_NIGHT_UTC,
            "e",
        )
        assert decision.changes[0].instances_after == 4

    def test_given_huge_breach_when_alarm_then_clamped_to_max(self) -> None:
        decision = decide_alarm(
            make_policy(),
            observed(6),
            EndpointMemory(),
            transition("ALARM", MONDAY_NIGHT_UTC, datapoints=(900000.0,)),
            MONDAY_NIGHT_UTC,
            "e",
        )
        assert decision.changes[0].instances_after == 8
        assert "clamped" in decision.changes[0].reason

    def test_given_business_hours_when_ok_then_never_below_schedule_floor(self) -> None:
        decision = decide_alarm(
            make_policy(), observed(4), EndpointMemory(), transition("OK", MONDAY_NOON_UTC), MONDAY_NOON_UTC, "e"
        )
        assert decision.effective_changes == ()

    def test_given_recent_scale_out_when_ok_then_waits_for_scale_in_cooldown(self) -> None:
        memory = EndpointMemory(variants={"primary": VariantMemory(last_scale_out_at=MONDAY_NIGHT_UTC)})
        at = MONDAY_NIGHT_UTC + timedelta(seconds=300)
        decision = decide_alarm(make_policy(), observed(3), memory, transition("OK", at), at, "e")
        assert decision.wait_until == MONDAY_NIGHT_UTC + timedelta(seconds=600)
        assert decision.changes == ()
        assert decision.memory.variant("primary").alarms[LATENCY_ALARM].state == "OK"

    def test_given_cooldown_passed_when_ok_then_scales_in(self) -> None:
        memory = EndpointMemory(variants={"primary": VariantMemory(last_scale_out_at=MONDAY_NIGHT_UTC)})
        at = MONDAY_NIGHT_UTC + timedelta(seconds=601)
        decision = decide_alarm(make_policy(), observed(3), memory, transition("OK", at), at, "e")
        assert decision.changes[0].instances_after == 2
        assert decision.memory.variant("primary").last_scale_in_at == at

    def test_given_recent_scale_out_when_alarm_again_then_waits_for_scale_out_cooldown(self) -> None:
        memory = EndpointMemory(variants={"primary": VariantMemory(last_scale_out_at=MONDAY_NIGHT_UTC)})
        at = MONDAY_NIGHT_UTC + timedelta(seconds=60)
        decision = decide_alarm(make_policy(), observed(3), memory, transition("ALARM", at), at, "e")
        assert decision.wait_until == MONDAY_NIGHT_UTC + timedelta(seconds=120)

    def test_given_newer_transition_remembered_when_older_arrives_then_superseded(self) -> None:
        later = MONDAY_NIGHT_UTC + timedelta(minutes=5)
        memory = EndpointMemory(
            variants={"primary": VariantMemory(alarms={LATENCY_ALARM: AlarmMemory(state="OK", changed_at=later)})}
        )
        decision = decide_alarm(make_policy(), observed(2), memory, transition("ALARM", MONDAY_NIGHT_UTC), later, "e")
        assert decision.superseded
        assert decision.changes == ()

    def test_given_weight_reaction_when_candidate_alarm_then_weight_zero_count_unchanged(self) -> None:
        decision = decide_alarm(
            make_policy(),
            observed(2),
            EndpointMemory(),
            transition("ALARM", MONDAY_NIGHT_UTC, alarm="fraud-detector-candidate-5xx"),
            MONDAY_NIGHT_UTC,
            "e",
        )
        change = decision.changes[0]
        assert (change.variant, change.weight_after, change.instances_after) == ("candidate", 0, 1)

    def test_given_insufficient_data_when_decided_then_nothing_changes(self) -> None:
        decision = decide_alarm(
            make_policy(),
            observed(2),
            EndpointMemory(),
            transition("INSUFFICIENT_DATA", MONDAY_NIGHT_UTC),
            MONDAY_NIGHT_UTC,
            "e",
        )
        assert decision.effective_changes == ()
        assert decision.wait_until is None
