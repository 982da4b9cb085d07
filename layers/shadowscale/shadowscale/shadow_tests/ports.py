"""Ports: what the shadow test needs from the outside world, in its own terms. Adapters implement them over
boto3 (sagemaker_configs.py, promotion_alarms.py, records.py, data_bucket.py, variant_metrics.py, notifier.py,
timeline.py; Auto Scaling is shared.autoscaling's); tests implement them in memory (tests/shadow_fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import JsonValue

from shadowscale.shared.endpoint import ScalingTargetSnapshot

if TYPE_CHECKING:
    from shadowscale.shadow_tests.endpoint_models import DescribedEndpoint, EndpointConfig, ModelDefinition
    from shadowscale.shadow_tests.models import (
        ChartSeries,
        DiffSummary,
        MachineState,
        MinuteLatencies,
        RestoreRecord,
        ShadowTestReport,
        TimelineEntry,
        VariantStats,
    )
    from shadowscale.shadow_tests.promotion_guardrails import AlarmDefinition
    from shadowscale.shared.diff_contract import DiffConfig


@dataclass(frozen=True)
class StoredShadowTest:
    """A shadow test's traces on its endpoint's state item."""

    owner: str | None = None
    record: RestoreRecord | None = None
    approval_token: str | None = None
    recovered_by: str | None = None


@dataclass(frozen=True)
class ExecutionFacts:
    """What Step Functions says of an execution (DescribeExecution)."""

    status: str
    input: str | None
    started_at: datetime
    error: str | None = None


class EndpointConfigs(Protocol):
    """SageMaker: the endpoint, its configs and models. Retried calls find their work done (idempotent)."""

    def describe_endpoint(self, endpoint: str) -> DescribedEndpoint: ...

    def describe_config(self, name: str) -> EndpointConfig | None: ...

    def create_config(self, config: EndpointConfig) -> None: ...

    def delete_config(self, name: str) -> bool: ...

    def update_endpoint(
        self, endpoint: str, config_name: str, *, deployment: dict[str, JsonValue] | None = None
    ) -> None:
        """`deployment`: UpdateEndpoint's DeploymentConfig (a guarded promotion), else SageMaker's default."""
        ...

    def set_variant_weight(self, endpoint: str, variant: str, weight: float) -> None:
        """ShadowSamplingRefused where SageMaker does not set a shadow variant's weight in place."""
        ...

    def set_instance_count(self, endpoint: str, variant: str, instances: int) -> None: ...

    def describe_model(self, name: str) -> ModelDefinition:
        """ModelNotFound if there is none."""
        ...

    def create_model(self, model: ModelDefinition) -> None: ...

    def delete_model(self, name: str) -> bool: ...


class PromotionAlarms(Protocol):
    """CloudWatch alarms a guarded promotion creates for SageMaker to watch, and deletes afterwards."""

    def put(self, alarms: Sequence[AlarmDefinition]) -> None: ...

    def delete(self, names: Sequence[str]) -> None:
        """Idempotent: names that exist no more are no error."""
        ...

    def in_alarm(self, names: Sequence[str]) -> tuple[str, ...]:
        """Those of `names` whose state is ALARM now."""
        ...


class ScalingRegistry(Protocol):
    """Application Auto Scaling registrations of an endpoint's variants, with their policies."""

    def snapshot(self, endpoint: str, variants: Sequence[str]) -> tuple[ScalingTargetSnapshot, ...]: ...

    def deregister(self, endpoint: str, variant: str) -> None: ...

    def restore(self, endpoint: str, target: ScalingTargetSnapshot, *, variant: str | None = None) -> None: ...


class ShadowTestRecords(Protocol):
    """Which test owns an endpoint, what it recorded to restore it, its approval token, its recovery claim."""

    def claim_test(self, endpoint: str, owner: str, seconds: int, now: datetime) -> None:
        """EndpointLocked, naming the owner, if another test owns the endpoint."""
        ...

    def save(self, endpoint: str, owner: str, record: RestoreRecord) -> None:
        """LockLost if `owner` no longer owns the endpoint."""
        ...

    def save_approval_token(self, endpoint: str, owner: str, token: str) -> None: ...

    def load(self, endpoint: str) -> StoredShadowTest: ...

    def claim_recovery(
        self, endpoint: str, owner: str, claimant: str, *, replacing: str | None, lease_seconds: int, now: datetime
    ) -> bool: ...

    def release(self, endpoint: str, owner: str) -> bool: ...


class VariantMetrics(Protocol):
    def variant_stats(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, VariantStats]: ...

    def minute_latencies(
        self, endpoint: str, production: str, shadow: str, start: datetime, end: datetime
    ) -> MinuteLatencies:
        """Both variants' ModelLatency percentiles per minute, paired by minute (the latency gates' samples)."""
        ...

    def series(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime, period: int = 300
    ) -> tuple[ChartSeries, ...]: ...


class ObjectStore(Protocol):
    """The data bucket, as a shadow test writes and reads it (keys: bucket_layout.py)."""

    def put_diff_config(self, bucket: str, config: DiffConfig) -> None: ...

    def diff_summary(self, bucket: str, test_id: str) -> DiffSummary | None: ...

    def put_report(self, bucket: str, key: str, report: ShadowTestReport, html: str) -> None:
        """`key`.json and `key`.html (`key` without its extension)."""
        ...

    def mark_notified(self, bucket: str, key: str, at: datetime, by: str) -> None: ...

    def exists(self, bucket: str, key: str) -> bool: ...


class Notifier(Protocol):
    def publish(self, topic_arn: str, subject: str, message: str) -> None: ...


class Timeline(Protocol):
    """A Step Functions execution: its history as a timeline, its facts, the last state it entered."""

    def timeline(self, execution_arn: str, limit: int = 400) -> tuple[TimelineEntry, ...]: ...

    def describe(self, execution_arn: str) -> ExecutionFacts | None: ...

    def last_state(self, execution_arn: str) -> MachineState | None:
        """The machine state the execution last entered a state with, once it had a plan."""
        ...
