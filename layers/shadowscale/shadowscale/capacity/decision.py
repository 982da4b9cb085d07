"""The outcome of one scaling decision: what changes, why, and what waits."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shadowscale.shared.endpoint import EndpointMemory

Outcome = Literal["applied", "no-change", "deferred", "dry-run", "superseded", "ignored", "duplicate"]


class VariantChange(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    variant: str
    instances_before: int
    instances_after: int
    weight_before: float
    weight_after: float
    reason: str
    # "scalable-target": the variant is registered with Application Auto Scaling, so its MinCapacity
    # (and MaxCapacity if needed) moves instead of its instance count.
    via: Literal["endpoint", "scalable-target"] = "endpoint"

    @property
    def changes_instances(self) -> bool:
        return self.instances_after != self.instances_before

    @property
    def changes_weight(self) -> bool:
        return self.weight_after != self.weight_before

    @property
    def direction(self) -> Literal["out", "in", "none"]:
        if self.instances_after > self.instances_before:
            return "out"
        if self.instances_after < self.instances_before:
            return "in"
        return "none"


class Decision(BaseModel):
    """What the policy asks for now. Pure data: computing it calls nothing."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    endpoint: str
    source_event: str
    decided_at: datetime
    changes: tuple[VariantChange, ...] = ()
    notes: tuple[str, ...] = ()
    # Set when the decision is "not yet": a cooldown runs until then.
    wait_until: datetime | None = None
    memory: EndpointMemory
    superseded: bool = False

    @property
    def effective_changes(self) -> tuple[VariantChange, ...]:
        return tuple(change for change in self.changes if change.changes_instances or change.changes_weight)


class DecisionReport(BaseModel):
    """What a handler returns and logs: the decision and what became of it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    endpoint: str
    source_event: str
    outcome: Outcome
    changes: tuple[VariantChange, ...] = ()
    notes: tuple[str, ...] = ()
    deferred_until: datetime | None = None
