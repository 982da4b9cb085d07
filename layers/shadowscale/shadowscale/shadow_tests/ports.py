"""Ports: what the shadow-test lifecycle needs from the outside world. Adapters implement them over
boto3; tests implement them in memory (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from shadowscale.shared.endpoint import ScalableTarget, ScalingTargetSnapshot

if TYPE_CHECKING:
    from shadowscale.shadow_tests.models import ChartSeries, TimelineEntry, VariantStats


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
