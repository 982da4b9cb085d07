"""In-memory fakes of the shadow test's ports (shadowscale.shadow_tests.ports), and a world that wires them
to the steps, the report and the recovery as shadow_tests/wiring.py wires the real adapters.

The fakes behave like the services as far as the shadow test relies on them (an update leaves the endpoint
Updating until `settle`, a lease or an ownership claim is refused to another owner, a retried create finds
its work done); they record what was asked of them, so tests assert outcomes, not call signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import JsonValue
from shadowscale.shadow_tests.endpoint_hold import WriterHold
from shadowscale.shadow_tests.endpoint_models import (
    IN_SERVICE,
    UPDATING,
    DescribedEndpoint,
    EndpointConfig,
    LiveCapture,
    LiveVariant,
    ModelContainer,
    ModelDefinition,
)
from shadowscale.shadow_tests.lifecycle import ShadowTestSteps
from shadowscale.shadow_tests.models import (
    ChartSeries,
    DiffSummary,
    MachineState,
    MinuteLatencies,
    RestoreRecord,
    ShadowTestPlan,
    ShadowTestReport,
    TimelineEntry,
    VariantStats,
)
from shadowscale.shadow_tests.ports import ExecutionFacts, StoredShadowTest
from shadowscale.shadow_tests.recovery import ShadowTestRecovery
from shadowscale.shadow_tests.reports import ShadowTestReports
from shadowscale.shared.diff_contract import DiffConfig, diff_config_key
from shadowscale.shared.endpoint import ScalingTargetSnapshot
from shadowscale.shared.errors import EndpointLocked, LockLost, ModelNotFound, ShadowSamplingRefused

from tests.fakes import InMemoryEndpointState, ManualClock, RecordingAnnouncer, RecordingCloser

ENDPOINT = "fraud-detector"
PRODUCTION = "primary"
CANDIDATE = "candidate"
CANDIDATE_MODEL = "fraud-detector-v2"
ORIGINAL_CONFIG = "fraud-detector-config-1"
DATA_BUCKET = "shadowscale-data"
TOPIC = "arn:aws:sns:us-east-1:123456789012:shadowscale"
MACHINE = "arn:aws:states:us-east-1:123456789012:execution:ShadowTest"
RECOVERY_MACHINE = "arn:aws:states:us-east-1:123456789012:execution:ShadowTestRecovery"


def _int(value: JsonValue) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: JsonValue) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _live(variant: dict[str, JsonValue]) -> LiveVariant:
    return LiveVariant(
        name=str(variant["VariantName"]),
        current_instances=_int(variant.get("InitialInstanceCount")),
        current_weight=_float(variant.get("InitialVariantWeight")),
    )


def _capture(config: EndpointConfig) -> LiveCapture | None:
    if not config.data_capture:
        return None
    return LiveCapture(
        enabled=config.capture_enabled,
        destination=config.capture_destination,
        sampling_percent=config.capture_sampling_percent,
    )


@dataclass
class InMemoryEndpointConfigs:
    """SageMaker's endpoints, configs and models. UpdateEndpoint shows the new config's variants and capture
    at once (as the local cloud does) and leaves the endpoint Updating until `settle` (InService) or
    `roll_back` (InService on the config it left)."""

    endpoints: dict[str, DescribedEndpoint] = field(default_factory=dict)
    configs: dict[str, EndpointConfig] = field(default_factory=dict)
    models: dict[str, ModelDefinition] = field(default_factory=dict)
    # Configs created but not yet visible to DescribeEndpointConfig (SageMaker's reads are eventual).
    invisible: set[str] = field(default_factory=set)
    refuse_weight_in_place: bool = False
    updates: list[tuple[str, str]] = field(default_factory=list)
    weights: list[tuple[str, str, float]] = field(default_factory=list)
    counts: list[tuple[str, str, int]] = field(default_factory=list)
    created_configs: list[str] = field(default_factory=list)
    created_models: list[ModelDefinition] = field(default_factory=list)
    # The DeploymentConfig of each UpdateEndpoint that had one (a guarded promotion), by config.
    deployments: dict[str, dict[str, JsonValue]] = field(default_factory=dict)
    _left: dict[str, str] = field(default_factory=dict)

    def add_endpoint(self, config: EndpointConfig, *, name: str = ENDPOINT) -> None:
        self.configs[config.name] = config
        self.endpoints[name] = DescribedEndpoint(name=name, status=IN_SERVICE, config_name=config.name)
        self._run(name, config.name)

    def add_model(self, name: str, **container: Any) -> None:
        self.models[name] = ModelDefinition(
            name=name,
            execution_role_arn="arn:aws:iam::123456789012:role/sagemaker",
            container=ModelContainer(**container),
        )

    def endpoint(self, name: str = ENDPOINT) -> DescribedEndpoint:
        return self.endpoints[name]

    def _set(self, name: str, **changes: Any) -> None:
        self.endpoints[name] = self.endpoints[name].model_copy(update=changes)

    def _run(self, name: str, config_name: str) -> None:
        config = self.configs[config_name]
        self._set(
            name,
            config_name=config_name,
            production_variants=tuple(_live(v) for v in config.production_variants),
            shadow_variants=tuple(_live(v) for v in config.shadow_variants),
            data_capture=_capture(config),
        )

    def settle(self, name: str = ENDPOINT) -> None:
        """The update in flight ends InService."""
        self._left.pop(name, None)
        self._set(name, status=IN_SERVICE)

    def roll_back(self, name: str = ENDPOINT, reason: str = "the update failed") -> None:
        """The update in flight fails and SageMaker puts back the config it left."""
        self._run(name, self._left.pop(name))
        self._set(name, status=IN_SERVICE, failure_reason=reason)

    def fail(self, name: str = ENDPOINT, reason: str = "capacity error") -> None:
        self._set(name, status="Failed", failure_reason=reason)

    def scale(self, name: str, variant: str, instances: int) -> None:
        """The autopilot (or anyone) resizes a production variant."""
        live = self.endpoints[name]
        variants = tuple(
            v.model_copy(update={"current_instances": instances}) if v.name == variant else v
            for v in live.production_variants
        )
        self._set(name, production_variants=variants)

    # --- the port ---

    def describe_endpoint(self, endpoint: str) -> DescribedEndpoint:
        return self.endpoints[endpoint]

    def describe_config(self, name: str) -> EndpointConfig | None:
        return None if name in self.invisible else self.configs.get(name)

    def create_config(self, config: EndpointConfig) -> None:
        self.created_configs.append(config.name)
        self.configs.setdefault(config.name, config)

    def delete_config(self, name: str) -> bool:
        self.invisible.discard(name)
        return self.configs.pop(name, None) is not None

    def update_endpoint(
        self, endpoint: str, config_name: str, *, deployment: dict[str, JsonValue] | None = None
    ) -> None:
        self.updates.append((endpoint, config_name))
        if deployment is not None:
            self.deployments[config_name] = deployment
        self._left.setdefault(endpoint, self.endpoints[endpoint].config_name)
        self._run(endpoint, config_name)
        self._set(endpoint, status=UPDATING, failure_reason=None)

    def set_variant_weight(self, endpoint: str, variant: str, weight: float) -> None:
        if self.refuse_weight_in_place:
            raise ShadowSamplingRefused(f"{variant} is a shadow variant")
        self.weights.append((endpoint, variant, weight))
        live = self.endpoints[endpoint]
        shadows = tuple(
            v.model_copy(update={"current_weight": weight}) if v.name == variant else v for v in live.shadow_variants
        )
        self._set(endpoint, shadow_variants=shadows)

    def set_instance_count(self, endpoint: str, variant: str, instances: int) -> None:
        self.counts.append((endpoint, variant, instances))
        self.scale(endpoint, variant, instances)
        self._set(endpoint, status=UPDATING)

    def describe_model(self, name: str) -> ModelDefinition:
        if name not in self.models:
            raise ModelNotFound(f"model {name!r} does not exist")
        return self.models[name]

    def create_model(self, model: ModelDefinition) -> None:
        self.created_models.append(model)
        self.models.setdefault(model.name, model)

    def delete_model(self, name: str) -> bool:
        return self.models.pop(name, None) is not None


@dataclass
class InMemoryScalingRegistry:
    targets: dict[tuple[str, str], ScalingTargetSnapshot] = field(default_factory=dict)
    restored: list[tuple[str, str]] = field(default_factory=list)

    def register(self, endpoint: str, target: ScalingTargetSnapshot) -> None:
        self.targets[(endpoint, target.variant)] = target

    def snapshot(self, endpoint: str, variants: Sequence[str]) -> tuple[ScalingTargetSnapshot, ...]:
        return tuple(self.targets[(endpoint, v)] for v in variants if (endpoint, v) in self.targets)

    def deregister(self, endpoint: str, variant: str) -> None:
        self.targets.pop((endpoint, variant), None)

    def restore(self, endpoint: str, target: ScalingTargetSnapshot, *, variant: str | None = None) -> None:
        name = variant or target.variant
        self.restored.append((endpoint, name))
        self.targets[(endpoint, name)] = target.model_copy(update={"variant": name})


@dataclass
class _Item:
    owner: str
    expires_at: datetime
    record: RestoreRecord | None = None
    approval_token: str | None = None
    recovered_by: str | None = None


@dataclass
class InMemoryShadowTestRecords:
    """Test ownership per endpoint, as the endpoint's state item keeps it."""

    items: dict[str, _Item] = field(default_factory=dict)
    # Another recovery whose claim lands between this one's read and its conditional write.
    race_won_by: str | None = None

    def claim_test(self, endpoint: str, owner: str, seconds: int, now: datetime) -> None:
        held = self.items.get(endpoint)
        if held is not None and held.owner != owner and held.expires_at >= now:
            raise EndpointLocked(endpoint, held.owner)
        expires = now + timedelta(seconds=seconds)
        self.items[endpoint] = (
            replace(held, expires_at=expires) if held and held.owner == owner else _Item(owner, expires)
        )

    def _owned(self, endpoint: str, owner: str) -> _Item:
        held = self.items.get(endpoint)
        if held is None or held.owner != owner:
            raise LockLost(f"shadow test {owner!r} no longer owns {endpoint!r}")
        return held

    def save(self, endpoint: str, owner: str, record: RestoreRecord) -> None:
        self._owned(endpoint, owner).record = record

    def save_approval_token(self, endpoint: str, owner: str, token: str) -> None:
        self._owned(endpoint, owner).approval_token = token

    def load(self, endpoint: str) -> StoredShadowTest:
        held = self.items.get(endpoint)
        if held is None:
            return StoredShadowTest()
        return StoredShadowTest(held.owner, held.record, held.approval_token, held.recovered_by)

    def claim_recovery(
        self, endpoint: str, owner: str, claimant: str, *, replacing: str | None, lease_seconds: int, now: datetime
    ) -> bool:
        held = self.items.get(endpoint)
        if held is not None and self.race_won_by is not None:
            held.recovered_by, self.race_won_by = self.race_won_by, None
        if held is None or held.owner != owner or held.recovered_by not in (None, claimant, replacing):
            return False
        held.recovered_by = claimant
        held.expires_at = now + timedelta(seconds=lease_seconds)
        return True

    def release(self, endpoint: str, owner: str) -> bool:
        held = self.items.get(endpoint)
        if held is None or held.owner != owner:
            return False
        del self.items[endpoint]
        return True


@dataclass
class InMemoryVariantMetrics:
    """The same stats for every window asked about (unless given per window start), and fixed chart series."""

    stats: dict[str, VariantStats] = field(default_factory=dict)
    charts: tuple[ChartSeries, ...] = ()
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    series_asked: list[tuple[tuple[str, ...], int]] = field(default_factory=list)
    minutes: MinuteLatencies | None = None

    def variant_stats(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, VariantStats]:
        self.windows.append((start, end))
        return {variant: self.stats.get(variant, VariantStats()) for variant in variants}

    def minute_latencies(
        self, endpoint: str, production: str, shadow: str, start: datetime, end: datetime
    ) -> MinuteLatencies:
        """`minutes` when given; else every whole minute of the window at the stats' percentiles."""
        if self.minutes is not None:
            return self.minutes
        count = int((end - start).total_seconds() // 60)
        ours, theirs = self.stats.get(shadow, VariantStats()), self.stats.get(production, VariantStats())
        paired: dict[str, tuple[tuple[float, float], ...]] = {}
        for percentile in ("p50", "p90", "p99"):
            pair = (getattr(ours, f"latency_{percentile}_ms"), getattr(theirs, f"latency_{percentile}_ms"))
            paired[percentile] = ((pair[0], pair[1]),) * count if None not in pair else ()
        return MinuteLatencies.model_validate(paired)

    def series(
        self, endpoint: str, variants: Sequence[str], start: datetime, end: datetime, period: int = 300
    ) -> tuple[ChartSeries, ...]:
        self.series_asked.append((tuple(variants), period))
        return self.charts


@dataclass
class InMemoryObjectStore:
    objects: dict[tuple[str, str], Any] = field(default_factory=dict)
    summaries: dict[tuple[str, str], DiffSummary] = field(default_factory=dict)

    def put_diff_config(self, bucket: str, config: DiffConfig) -> None:
        self.objects[(bucket, diff_config_key(config.shadow_test))] = config

    def diff_summary(self, bucket: str, test_id: str) -> DiffSummary | None:
        return self.summaries.get((bucket, test_id))

    def put_report(self, bucket: str, key: str, report: ShadowTestReport, html: str) -> None:
        self.objects[(bucket, f"{key}.json")] = report
        self.objects[(bucket, f"{key}.html")] = html

    def mark_notified(self, bucket: str, key: str, at: datetime, by: str) -> None:
        self.objects[(bucket, key)] = {"at": at, "by": by}

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def report(self, plan: ShadowTestPlan, suffix: str = "") -> ShadowTestReport:
        found = self.objects[(plan.reports_bucket, f"{plan.report_prefix}/report{suffix}.json")]
        assert isinstance(found, ShadowTestReport)
        return found


@dataclass
class RecordingNotifier:
    published: list[tuple[str, str, str]] = field(default_factory=list)

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        self.published.append((topic_arn, subject, message))


@dataclass
class InMemoryTimeline:
    executions: dict[str, ExecutionFacts] = field(default_factory=dict)
    last_states: dict[str, MachineState] = field(default_factory=dict)
    entries: dict[str, tuple[TimelineEntry, ...]] = field(default_factory=dict)

    def timeline(self, execution_arn: str, limit: int = 400) -> tuple[TimelineEntry, ...]:
        return self.entries.get(execution_arn, ())

    def describe(self, execution_arn: str) -> ExecutionFacts | None:
        return self.executions.get(execution_arn)

    def last_state(self, execution_arn: str) -> MachineState | None:
        return self.last_states.get(execution_arn)


# --- a world to run the shadow test's steps, report and recovery in ------------------------------------


def production_config(name: str = ORIGINAL_CONFIG, *, instances: int = 2, capture: bool = False) -> EndpointConfig:
    variant: dict[str, JsonValue] = {
        "VariantName": PRODUCTION,
        "ModelName": "fraud-detector-v1",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": instances,
        "InitialVariantWeight": 1.0,
    }
    data_capture: dict[str, JsonValue] | None = (
        {"EnableCapture": True, "InitialSamplingPercentage": 20, "DestinationS3Uri": "s3://team/capture"}
        if capture
        else None
    )
    return EndpointConfig(name=name, production_variants=(variant,), data_capture=data_capture)


def shadow_input(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "endpointName": ENDPOINT,
        "candidate": {"modelName": CANDIDATE_MODEL, "instanceType": "ml.m5.large", "variantName": CANDIDATE},
        "sampling": {"percent": 20},
        "durationMinutes": 60,
        "evaluationPeriodMinutes": 5,
        "inServiceTimeoutMinutes": 30,
        "gates": {"minInvocations": 10},
    }
    document.update(overrides)
    return document


def target(
    variant: str = PRODUCTION, *policies: str, min_capacity: int = 1, max_capacity: int = 4
) -> ScalingTargetSnapshot:
    return ScalingTargetSnapshot(
        variant=variant,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        policies=tuple({"PolicyName": name} for name in policies),
    )


class ShadowWorld:
    """Every port in memory, one endpoint in service with a production variant, and the candidate model."""

    def __init__(self, *, capture: bool = False, instances: int = 2) -> None:
        self.clock = ManualClock(current=datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
        self.sagemaker = InMemoryEndpointConfigs()
        self.sagemaker.add_endpoint(production_config(instances=instances, capture=capture))
        self.sagemaker.add_model(CANDIDATE_MODEL, image="registry/fraud:2", environment={"MODE": "strict"})
        self.sagemaker.add_model("fraud-detector-v1", image="registry/fraud:1")
        self.scaling = InMemoryScalingRegistry()
        self.leases = InMemoryEndpointState()
        self.records = InMemoryShadowTestRecords()
        self.metrics = InMemoryVariantMetrics()
        self.objects = InMemoryObjectStore()
        self.notifier = RecordingNotifier()
        self.timeline = InMemoryTimeline()
        self.diffs = RecordingCloser()
        self.handover = RecordingAnnouncer()
        hold = WriterHold(self.leases, self.clock)
        self.steps = ShadowTestSteps(
            configs=self.sagemaker,
            scaling=self.scaling,
            hold=hold,
            records=self.records,
            metrics=self.metrics,
            objects=self.objects,
            diffs=self.diffs,
            handover=self.handover,
            clock=self.clock,
            data_bucket=DATA_BUCKET,
            default_topic_arn=TOPIC,
        )
        self.reports = ShadowTestReports(
            objects=self.objects,
            metrics=self.metrics,
            timeline=self.timeline,
            notifier=self.notifier,
            records=self.records,
            clock=self.clock,
            data_bucket=DATA_BUCKET,
        )
        self.recovery = ShadowTestRecovery(
            timeline=self.timeline,
            records=self.records,
            objects=self.objects,
            hold=hold,
            clock=self.clock,
            data_bucket=DATA_BUCKET,
            default_topic_arn=TOPIC,
        )

    def plan(self, name: str = "run-1", **overrides: Any) -> ShadowTestPlan:
        return self.steps.validate(shadow_input(**overrides), execution_arn=f"{MACHINE}:{name}")

    def lease_holder(self, endpoint: str = ENDPOINT) -> str | None:
        held = self.leases.leases.get(endpoint)
        return held[0] if held is not None else None
