"""What a policy will do to capacity: now (the first heartbeat after `apply`) and at each coming window edge.

Every step is the capacity domain's own `decide_schedule`, replayed on the endpoint as it is and on the
memory the autopilot keeps, so the preview cannot drift from what the heartbeat does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shadowscale.capacity.decision import Decision, VariantChange
from shadowscale.capacity.decisions import decide_schedule
from shadowscale.capacity.policy import CapacityPolicy, ScheduleWindow
from shadowscale.shared.endpoint import EndpointMemory, EndpointObservation, VariantObservation

PREVIEW_HORIZON = timedelta(hours=24)
MAX_EDGES = 12


@dataclass(frozen=True)
class PreviewStep:
    at: datetime
    label: str  # "now (first heartbeat)" or "primary/business-hours.start"
    changes: tuple[VariantChange, ...]


def window_edges(window: ScheduleWindow, after: datetime, until: datetime) -> list[datetime]:
    """Every start and end of `window` in (after, until], from the policy's own schedule expressions."""
    edges: list[datetime] = []
    moment = after
    while (start := window.start_expression.next_fire_after(moment, window.zone, window.local_anchor)) is not None:
        if start > until:
            break
        edges.append(start)
        moment = start
    for start in list(edges):
        if window.duration_minutes is not None:
            edges.append(start + timedelta(minutes=window.duration_minutes))
    if window.end_expression is not None:
        moment = after
        while (end := window.end_expression.next_fire_after(moment, window.zone)) is not None and end <= until:
            edges.append(end)
            moment = end
    return [edge for edge in edges if after < edge <= until]


def coming_edges(
    policy: CapacityPolicy, now: datetime, horizon: timedelta = PREVIEW_HORIZON
) -> list[tuple[datetime, str]]:
    found = {
        (edge, f"{variant.name}/{window.name}")
        for variant in policy.variants
        for window in variant.schedules
        for edge in window_edges(window, now, now + horizon)
    }
    return sorted(found)[:MAX_EDGES]


def _after(observation: EndpointObservation, decision: Decision) -> EndpointObservation:
    """The endpoint as the decision leaves it (what the next edge's decision starts from)."""
    changed = {change.variant: change for change in decision.changes}
    variants = tuple(
        VariantObservation(
            name=variant.name,
            current_instances=changed[variant.name].instances_after if variant.name in changed else variant.instances,
            current_weight=changed[variant.name].weight_after if variant.name in changed else variant.weight,
        )
        for variant in observation.variants
    )
    return observation.model_copy(update={"variants": variants})


def preview(
    policy: CapacityPolicy,
    observation: EndpointObservation,
    memory: EndpointMemory,
    now: datetime,
    horizon: timedelta = PREVIEW_HORIZON,
) -> list[PreviewStep]:
    decision = decide_schedule(policy, observation, memory, now, "preview")
    steps = [PreviewStep(now, "now (the first heartbeat after apply)", decision.changes)]
    for at, label in coming_edges(policy, now, horizon):
        observation, memory = _after(observation, decision), decision.memory
        decision = decide_schedule(policy, observation, memory, at, "preview")
        steps.append(PreviewStep(at, label, decision.changes))
    return steps


def describe_change(change: VariantChange) -> str:
    count = (
        f"{change.instances_before} -> {change.instances_after} instance(s)"
        if change.changes_instances
        else f"stays at {change.instances_after} instance(s)"
    )
    weight = f", weight {change.weight_before:g} -> {change.weight_after:g}" if change.changes_weight else ""
    return f"{change.variant}: {count}{weight} ({change.reason})"


def preview_lines(steps: list[PreviewStep]) -> list[str]:
    lines: list[str] = []
    for step in steps:
        lines.append(f"{step.at:%Y-%m-%d %H:%M} UTC  {step.label}")
        lines += [f"    {describe_change(change)}" for change in step.changes]
    return lines
