"""Ports: what the domain needs from the outside world. Adapters implement them over boto3; tests
implement them in memory (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from shadowscale.models.endpoint import EndpointMemory, EndpointObservation, ScalableTarget, ScalingTargetSnapshot
from shadowscale.models.events import DeferredChange
from shadowscale.models.handover import PromotionHandover
from shadowscale.models.policy import CapacityPolicy

if TYPE_CHECKING:  # the capacity functions never load the shadow-test models
    from shadowscale.models.diff import CloseDiffs
    from shadowscale.models.shadow_test import ChartSeries, TimelineEntry, VariantStats


class StoredTest(NamedTuple):
    """A shadow test's traces on its endpoint's lease item."""

    owner: str | None
    record: str | None
    approval_token: str | None
    recovered_by: str | None


@dataclass(frozen=True)
class ExecutionFacts:
    """What Step Functions says of an execution (DescribeExecution)."""

    status: str
    input: str | None
    started_at: datetime
    error: str | None = None


@dataclass(frozen=True)
class StoredBytes:
    """An object's bytes and its (unquoted) ETag."""

    body: bytes
    etag: str


@dataclass(frozen=True)
class StoredState:
    """A shadow test's stored diff state: its manifest (None for a new test) and that object's ETag."""

    manifest: bytes | None
    version: str | None


class DiffCloser(Protocol):
    def close(self, message: CloseDiffs, delay_seconds: int) -> None:
        """Ask the diff pipeline to close a test's windows once late capture can no longer land."""
        ...


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


class PromotionAnnouncer(Protocol):
    def announce(self, handover: PromotionHandover, delay_seconds: int = 0) -> None:
        """Tell the capacity autopilot that a promotion replaced a production variant."""
        ...


class EndpointStateStore(Protocol):
    def acquire(self, endpoint: str, owner: str, lease_seconds: int, now: datetime) -> EndpointMemory:
        """Take the endpoint's lease and return its memory; raises EndpointLocked if someone else holds it."""
        ...

    def release(self, endpoint: str, owner: str, memory: EndpointMemory | None) -> None:
        """Drop the lease, saving `memory` unless it is None; raises LockLost if the lease was taken over."""
        ...

    def peek(self, endpoint: str) -> EndpointMemory:
        """The endpoint's memory as stored now, without the lease (to decide read-only while it is held)."""
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


class EndpointConfigs(Protocol):
    def describe_endpoint(self, endpoint: str) -> dict[str, Any]: ...

    def describe_config(self, name: str) -> dict[str, Any] | None: ...

    def create_config(self, request: dict[str, Any]) -> None: ...

    def delete_config(self, name: str) -> bool: ...

    def update_endpoint(self, endpoint: str, config_name: str) -> None: ...

    def set_variant_weight(self, endpoint: str, variant: str, weight: float) -> None: ...

    def set_instance_count(self, endpoint: str, variant: str, instances: int) -> None: ...

    def describe_model(self, name: str) -> dict[str, Any]: ...

    def create_model(self, request: dict[str, Any]) -> None: ...

    def delete_model(self, name: str) -> bool: ...


class ScalingRegistry(Protocol):
    def snapshot(self, endpoint: str, variants: Sequence[str]) -> tuple[ScalingTargetSnapshot, ...]: ...

    def registered(self, endpoint: str, variants: Sequence[str]) -> dict[str, ScalableTarget]: ...

    def deregister(self, endpoint: str, variant: str) -> None: ...

    def restore(self, endpoint: str, target: ScalingTargetSnapshot, *, variant: str | None = None) -> None: ...


class TestRecords(Protocol):
    def claim_test(self, endpoint: str, owner: str, seconds: int, now: datetime) -> None: ...

    def save(self, endpoint: str, owner: str, record: str) -> None: ...

    def save_approval_token(self, endpoint: str, owner: str, token: str) -> None: ...

    def load(self, endpoint: str) -> StoredTest: ...

    def claim_recovery(
        self, endpoint: str, owner: str, claimant: str, *, replacing: str | None, lease_seconds: int, now: datetime
    ) -> bool: ...

    def release(self, endpoint: str, owner: str) -> bool: ...


class VariantMetrics(Protocol):
    def variant_stats(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, VariantStats]: ...

    def series(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime, period: int = 300
    ) -> tuple[ChartSeries, ...]: ...


class ObjectStore(Protocol):
    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> str: ...

    def get_json(self, bucket: str, key: str) -> dict[str, Any] | None: ...


class Notifier(Protocol):
    def publish(self, topic_arn: str, subject: str, message: str) -> None: ...


class Timeline(Protocol):
    def timeline(self, execution_arn: str, limit: int = 400) -> tuple[TimelineEntry, ...]: ...

    def describe(self, execution_arn: str) -> ExecutionFacts | None: ...

    def last_state(self, execution_arn: str) -> dict[str, Any] | None: ...
