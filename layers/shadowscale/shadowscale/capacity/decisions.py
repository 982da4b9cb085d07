"""Capacity decisions: pure functions from (policy, observation, memory, now) to a Decision.

Nothing here calls AWS. The rules:
- Every instance count is clamped to [minInstances, maxInstances] and never below the schedule floor
  in force (the largest `instances` of the windows active now).
- A schedule edge (a window starting or ending) moves the count to the new floor, or to minInstances
  when no window is active; a scale-in at a window end is held while one of the variant's scale-out
  alarms is in ALARM. Between edges a tick only restores the bounds: repeated ticks change nothing.
- An alarm transition applies its step relative to the current count, sized as Application Auto
  Scaling sizes it: aggregated evaluated datapoints minus the threshold (domain.alarm_breach).
  Scale-out waits for the scale-out cooldown since the last scale-out; scale-in waits for the
  scale-in cooldown since any scaling. Waiting is a decision with `wait_until`: the caller replays
  the event then, so no transition is lost.
- An alarm transition older than the last one remembered for that alarm is superseded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shadowscale.capacity.alarm_breach import Breach, measure_breach
from shadowscale.capacity.decision import Decision, VariantChange
from shadowscale.capacity.events import AlarmTransition
from shadowscale.capacity.policy import AlarmAction, CapacityPolicy, ScheduleWindow, StepAdjustment, VariantPolicy
from shadowscale.shared.endpoint import AlarmMemory, EndpointMemory, EndpointObservation, VariantMemory


@dataclass(frozen=True)
class ActiveWindow:
    window: ScheduleWindow
    started_at: datetime


@dataclass(frozen=True)
class ScheduleState:
    """The schedule's say for one variant at one instant."""

    active: tuple[ActiveWindow, ...]

    @property
    def floor(self) -> int | None:
        counts = [item.window.instances for item in self.active if item.window.instances is not None]
        return max(counts) if counts else None

    @property
    def weight(self) -> float | None:
        weighted = [item for item in self.active if item.window.weight is not None]
        # Overlapping windows: the most recently started one decides the weight.
        return max(weighted, key=lambda item: item.started_at).window.weight if weighted else None

    @property
    def occurrence(self) -> str:
        return ",".join(sorted(f"{item.window.name}@{item.started_at.isoformat()}" for item in self.active))


def window_started_at(window: ScheduleWindow, now: datetime) -> datetime | None:
    """When the occurrence of `window` that contains `now` started, or None if it is not active."""
    started = window.start_expression.latest_fire_at_or_before(now, window.zone, window.local_anchor)
    if started is None:
        return None
    if window.duration_minutes is not None:
        return started if now < started + timedelta(minutes=window.duration_minutes) else None
    assert window.end_expression is not None
    ended = window.end_expression.latest_fire_at_or_before(now, window.zone)
    return started if ended is None or ended < started else None


def schedule_state(variant: VariantPolicy, now: datetime) -> ScheduleState:
    active = []
    for window in variant.schedules:
        started = window_started_at(window, now)
        if started is not None:
            active.append(ActiveWindow(window, started))
    return ScheduleState(tuple(active))


def clamp(count: int, variant: VariantPolicy, floor: int | None) -> int:
    lowest = max(variant.min_instances, floor or 0)
    return max(lowest, min(variant.max_instances, count))


def step_change(steps: tuple[StepAdjustment, ...], breach: float | None) -> int:
    """The change of the step whose interval holds the breach (unknown breach: the smallest step)."""
    ordered = sorted(steps, key=lambda step: step.lower_bound)
    if breach is None:
        return ordered[0].change
    for step in ordered:
        if breach >= step.lower_bound and (step.upper_bound is None or breach < step.upper_bound):
            return step.change
    return ordered[-1].change


def action_change(action: AlarmAction, breach: float | None) -> int:
    if action.steps is not None:
        return step_change(action.steps, breach)
    return action.change or 0


def alarm_change(action: AlarmAction, breach: Breach | None) -> tuple[int, str]:
    """The count change an alarm transition asks for, and why when it is not the configured one.

    `breach` is None for an OK transition (a fixed change). Steps on the non-breaching side match nothing;
    an anomaly band scales out above it and in below it (domain.alarm_breach)."""
    if action.steps is None and action.change is None:
        return 0, ""
    if breach is None:
        return action.change or 0, ""
    if breach.band and breach.side is None:
        return 0, " (the side of the band breached is not known)"
    if breach.beyond is False and (action.steps is not None or breach.band):
        return 0, " (no step applies on the non-breaching side)"
    size = action_change(action, breach.distance)
    if not breach.band:
        return size, ""
    return (abs(size), "") if breach.side == "above" else (-abs(size), "")


def _with_variant(memory: EndpointMemory, name: str, variant_memory: VariantMemory, now: datetime) -> EndpointMemory:
    return memory.model_copy(update={"variants": {**memory.variants, name: variant_memory}, "last_decision_at": now})


def _record_activity(variant_memory: VariantMemory, change: VariantChange, now: datetime) -> VariantMemory:
    if change.direction == "out":
        return variant_memory.model_copy(update={"last_scale_out_at": now})
    if change.direction == "in":
        return variant_memory.model_copy(update={"last_scale_in_at": now})
    return variant_memory


def _alarm_held(variant: VariantPolicy, variant_memory: VariantMemory) -> str | None:
    """The name of a scale-out alarm of this variant that is in ALARM now, if any."""
    for reaction in variant.alarms:
        remembered = variant_memory.alarms.get(reaction.alarm_name)
        if remembered is not None and remembered.state == "ALARM" and action_change(reaction.on_alarm, None) > 0:
            return reaction.alarm_name
    return None


def decide_schedule(
    policy: CapacityPolicy, observation: EndpointObservation, memory: EndpointMemory, now: datetime, source_event: str
) -> Decision:
    changes: list[VariantChange] = []
    notes: list[str] = []
    for variant in policy.variants:
        observed = observation.variant(variant.name)
        if observed is None:
            notes.append(f"variant {variant.name!r} is not on endpoint {policy.endpoint!r}; skipped")
            continue
        state = schedule_state(variant, now)
        variant_memory = memory.variant(variant.name)
        current, weight = observed.instances, observed.weight
        edge = bool(variant.schedules) and state.occurrence != variant_memory.schedule_occurrence
        if edge:
            wanted = state.floor if state.floor is not None else variant.min_instances
            target = clamp(wanted, variant, state.floor)
            reason = f"schedule edge: windows now [{state.occurrence or 'none'}] ask for {wanted}"
            held_by = _alarm_held(variant, variant_memory) if target < current else None
            if held_by is not None:
                target = current
                reason += f"; scale-in held while alarm {held_by!r} is in ALARM"
            wanted_weight = state.weight if state.weight is not None else variant.weight
            target_weight = wanted_weight if wanted_weight is not None else weight
        else:
            target = clamp(current, variant, state.floor)
            reason = "bounds restored" if target != current else "within bounds; nothing to do"
            target_weight = weight
        change = VariantChange(
            variant=variant.name,
            instances_before=current,
            instances_after=target,
            weight_before=weight,
            weight_after=target_weight,
            reason=reason,
        )
        changes.append(change)
        updated = _record_activity(variant_memory, change, now).model_copy(
            update={"schedule_occurrence": state.occurrence}
        )
        memory = _with_variant(memory, variant.name, updated, now)
    return Decision(
        endpoint=policy.endpoint,
        source_event=source_event,
        decided_at=now,
        changes=tuple(changes),
        notes=tuple(notes),
        memory=memory,
    )


def decide_alarm(
    policy: CapacityPolicy,
    observation: EndpointObservation,
    memory: EndpointMemory,
    transition: AlarmTransition,
    now: datetime,
    source_event: str,
) -> Decision:
    def unchanged(note: str, *, superseded: bool = False) -> Decision:
        return Decision(
            endpoint=policy.endpoint,
            source_event=source_event,
            decided_at=now,
            memory=memory,
            superseded=superseded,
            notes=(note,),
        )

    found = policy.reaction_for(transition.alarm_name)
    if found is None:
        return unchanged(f"alarm {transition.alarm_name!r} has no reaction in the policy of {policy.endpoint!r}")
    variant, reaction = found
    variant_memory = memory.variant(variant.name)
    remembered = variant_memory.alarms.get(transition.alarm_name)
    if remembered is not None and remembered.changed_at > transition.changed_at:
        return unchanged(
            f"alarm {transition.alarm_name!r} went {remembered.state} at {remembered.changed_at.isoformat()}, "
            f"after this {transition.state} transition",
            superseded=True,
        )
    observed = observation.variant(variant.name)
    if observed is None:
        return unchanged(f"variant {variant.name!r} is not on endpoint {policy.endpoint!r}")
    variant_memory = variant_memory.model_copy(
        update={
            "alarms": {
                **variant_memory.alarms,
                transition.alarm_name: AlarmMemory(state=transition.state, changed_at=transition.changed_at),
            }
        }
    )
    action = _action_for(reaction.on_alarm, reaction.on_ok, transition)
    if action is None:
        return Decision(
            endpoint=policy.endpoint,
            source_event=source_event,
            decided_at=now,
            memory=_with_variant(memory, variant.name, variant_memory, now),
            notes=(f"alarm {transition.alarm_name!r} went {transition.state}: the policy has no reaction to it",),
        )
    floor = schedule_state(variant, now).floor
    current, weight = observed.instances, observed.weight
    breach = measure_breach(transition, reaction.metric_aggregation_type) if transition.state == "ALARM" else None
    delta, why = alarm_change(action, breach)
    target = clamp(current + delta, variant, floor)
    asked = [f"change {delta:+d}{why}"] if action.steps is not None or action.change is not None else []
    if action.weight is not None:
        asked.append(f"weight {action.weight:g}")
    measured = f" ({breach.described})" if breach is not None else ""
    reason = f"alarm {transition.alarm_name!r} {transition.state}{measured}: {', '.join(asked)}"
    if target != current + delta:
        reason += f", clamped to {target} by [min {variant.min_instances}, max {variant.max_instances}, floor {floor}]"
    change = VariantChange(
        variant=variant.name,
        instances_before=current,
        instances_after=target,
        weight_before=weight,
        weight_after=action.weight if action.weight is not None else weight,
        reason=reason,
    )
    wait_until = _cooldown_ends(variant, variant_memory, change, now)
    if wait_until is not None:
        # The alarm's state is remembered now, so a newer transition supersedes the replay.
        return Decision(
            endpoint=policy.endpoint,
            source_event=source_event,
            decided_at=now,
            wait_until=wait_until,
            memory=_with_variant(memory, variant.name, variant_memory, now),
            notes=(f"{reason}; cooldown runs until {wait_until.isoformat()}",),
        )
    variant_memory = _record_activity(variant_memory, change, now)
    return Decision(
        endpoint=policy.endpoint,
        source_event=source_event,
        decided_at=now,
        changes=(change,),
        memory=_with_variant(memory, variant.name, variant_memory, now),
    )


def _action_for(on_alarm: AlarmAction, on_ok: AlarmAction | None, transition: AlarmTransition) -> AlarmAction | None:
    if transition.state == "ALARM":
        return on_alarm
    if transition.state == "OK":
        return on_ok
    return None  # INSUFFICIENT_DATA says nothing about load


def _cooldown_ends(
    variant: VariantPolicy, variant_memory: VariantMemory, change: VariantChange, now: datetime
) -> datetime | None:
    if change.direction == "out" and variant_memory.last_scale_out_at is not None:
        ends = variant_memory.last_scale_out_at + timedelta(seconds=variant.scale_out_cooldown_seconds)
    elif change.direction == "in" and variant_memory.last_activity_at is not None:
        ends = variant_memory.last_activity_at + timedelta(seconds=variant.scale_in_cooldown_seconds)
    else:
        return None
    return ends if ends > now else None
