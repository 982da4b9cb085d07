"""Ports: what the domain needs from the outside world. Adapters implement them over boto3; tests
implement them in memory (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from shadowscale.models.endpoint import EndpointMemory, EndpointObservation, ScalableTarget
from shadowscale.models.events import DeferredChange
from shadowscale.models.policy import CapacityPolicy


class VariantUpdate(BaseModel):
    """One entry of UpdateEndpointWeightsAndCapacities."""

    model_config = ConfigDict(frozen=True)

    variant: str
    instances: int | None = None
    weight: float | None = None


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class PolicyStore(Protocol):
    def policy(self, endpoint: str) -> CapacityPolicy:
        """The endpoint's policy; raises PolicyNotFound."""
        ...

    def endpoint_for_alarm(self, alarm_name: str) -> str:
        """Which endpoint's policy reacts to the alarm; raises PolicyNotFound."""
        ...


class EndpointStateStore(Protocol):
    def acquire(self, endpoint: str, owner: str, lease_seconds: int, now: datetime) -> EndpointMemory:
        """Take the endpoint's lease and return its memory; raises EndpointLocked if someone else holds it."""
        ...

    def release(self, endpoint: str, owner: str, memory: EndpointMemory | None) -> None:
        """Drop the lease, saving `memory` unless it is None; raises LockLost if the lease was taken over."""
        ...


class EndpointControl(Protocol):
    def describe_endpoint(self, endpoint: str) -> EndpointObservation: ...

    def update_weights_and_capacities(self, endpoint: str, updates: Sequence[VariantUpdate]) -> None:
        """Raises EndpointBusy, Throttled or AwsServiceUnavailable."""
        ...


class ScalableTargets(Protocol):
    def registered(self, endpoint: str, variants: Sequence[str]) -> dict[str, ScalableTarget]: ...

    def set_bounds(self, endpoint: str, variant: str, min_capacity: int, max_capacity: int) -> None: ...


class Deferrals(Protocol):
    def defer(self, change: DeferredChange, delay_seconds: int) -> None: ...
