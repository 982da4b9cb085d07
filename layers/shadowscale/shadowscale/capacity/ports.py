"""Ports: what the domain needs from the outside world. Adapters implement them over boto3; tests
implement them in memory (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from shadowscale.capacity.events import DeferredChange
from shadowscale.capacity.policy import CapacityPolicy
from shadowscale.shared.endpoint import EndpointObservation, ScalableTarget, VariantUpdate


class PolicyStore(Protocol):
    def policy(self, endpoint: str) -> CapacityPolicy:
        """The endpoint's policy; raises PolicyNotFound."""
        ...

    def endpoint_for_alarm(self, alarm_name: str) -> str:
        """Which endpoint's policy reacts to the alarm; raises PolicyNotFound."""
        ...


AlarmRepointing = Literal["re-pointed", "already", "not-this-variant", "missing", "not-allowed"]


class PolicyRevisions(Protocol):
    """The write side of capacity policies, for a change the product makes itself (a promotion)."""

    def get(self, endpoint: str) -> tuple[CapacityPolicy, int] | None: ...

    def put(
        self,
        policy: CapacityPolicy,
        *,
        reason: str | None = None,
        applied_by: str | None = None,
        applied_at: datetime | None = None,
    ) -> int: ...


class AlarmDimensions(Protocol):
    def repoint(self, alarm_name: str, endpoint: str, from_variant: str, to_variant: str) -> AlarmRepointing:
        """Make the alarm watch `to_variant` where it watched `from_variant` of `endpoint`, else leave it."""
        ...


class AlarmComparisons(Protocol):
    def comparison(self, alarm_name: str) -> str | None:
        """The alarm's ComparisonOperator; None when it cannot be read."""
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


# --- the shadow-test lifecycle ---------------------------------------------------------------------
