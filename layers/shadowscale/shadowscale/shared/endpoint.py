"""What we observe of an endpoint, and what we remember about it between invocations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

IN_SERVICE = "InService"
# A CloudWatch alarm's state, as alarm events and the autopilot's memory of them name it.
AlarmStateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class VariantObservation(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    current_instances: int
    desired_instances: int | None = None
    current_weight: float
    desired_weight: float | None = None

    @property
    def instances(self) -> int:
        # While an update is in flight the desired count is where the variant is heading.
        return self.desired_instances if self.desired_instances is not None else self.current_instances

    @property
    def weight(self) -> float:
        return self.desired_weight if self.desired_weight is not None else self.current_weight


class EndpointObservation(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    status: str
    config_name: str
    variants: tuple[VariantObservation, ...]

    @property
    def in_service(self) -> bool:
        return self.status == IN_SERVICE

    def variant(self, name: str) -> VariantObservation | None:
        return next((variant for variant in self.variants if variant.name == name), None)


class ScalableTarget(BaseModel):
    """An Application Auto Scaling registration of one variant."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    variant: str
    min_capacity: int
    max_capacity: int


class ScalingTargetSnapshot(BaseModel):
    """A registration and its policies as the API describes them (a shadow test restores them)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)

    variant: str
    min_capacity: int = Field(alias="minCapacity")
    max_capacity: int = Field(alias="maxCapacity")
    policies: tuple[dict[str, JsonValue], ...] = ()


class AlarmMemory(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    state: AlarmStateValue
    changed_at: datetime


class VariantMemory(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    # Which schedule windows were in force when we last applied the schedule: a change means an edge passed.
    schedule_occurrence: str | None = None
    alarms: dict[str, AlarmMemory] = Field(default_factory=dict)

    @property
    def last_activity_at(self) -> datetime | None:
        moments = [moment for moment in (self.last_scale_out_at, self.last_scale_in_at) if moment is not None]
        return max(moments) if moments else None


class EndpointMemory(BaseModel):
    """Durable per-endpoint state, stored beside the endpoint's lock."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    variants: dict[str, VariantMemory] = Field(default_factory=dict)
    last_decision_at: datetime | None = None

    def variant(self, name: str) -> VariantMemory:
        return self.variants.get(name, VariantMemory())


class VariantUpdate(BaseModel):
    """One entry of UpdateEndpointWeightsAndCapacities."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    variant: str
    instances: int | None = None
    weight: float | None = None
