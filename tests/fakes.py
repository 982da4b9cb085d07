"""In-memory fakes of the domain's ports: real behaviour, no mocks that know call signatures."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from shadowscale.capacity.events import DeferredChange
from shadowscale.capacity.policy import CapacityPolicy
from shadowscale.capacity.ports import AlarmRepointing
from shadowscale.response_diffs.models import DiffMetrics
from shadowscale.response_diffs.ports import StoredState
from shadowscale.response_diffs.state import WindowRef
from shadowscale.shared.diff_contract import CloseDiffs, DiffConfig
from shadowscale.shared.endpoint import (
    EndpointMemory,
    EndpointObservation,
    ScalableTarget,
    VariantObservation,
    VariantUpdate,
)
from shadowscale.shared.errors import (
    AwsServiceUnavailable,
    CaptureObjectForbidden,
    DiffStateConflict,
    EndpointBusy,
    EndpointLocked,
    LockLost,
    PolicyNotFound,
)
from shadowscale.shared.handover import PromotionHandover
from shadowscale.shared.stored_bytes import StoredBytes


@dataclass
class ManualClock:
    current: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += timedelta(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class InMemoryPolicies:
    policies: dict[str, CapacityPolicy] = field(default_factory=dict)

    def add(self, policy: CapacityPolicy) -> None:
        self.policies[policy.endpoint] = policy

    def policy(self, endpoint: str) -> CapacityPolicy:
        if endpoint not in self.policies:
            raise PolicyNotFound(f"no policy for endpoint {endpoint!r}")
        return self.policies[endpoint]

    def endpoint_for_alarm(self, alarm_name: str) -> str:
        for policy in self.policies.values():
            if alarm_name in policy.alarm_names:
                return policy.endpoint
        raise PolicyNotFound(f"no policy reacts to alarm {alarm_name!r}")


@dataclass
class InMemoryEndpointState:
    memories: dict[str, EndpointMemory] = field(default_factory=dict)
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def acquire(self, endpoint: str, owner: str, lease_seconds: int, now: datetime) -> EndpointMemory:
        held = self.leases.get(endpoint)
        if held is not None and held[0] != owner and held[1] > now:
            raise EndpointLocked(endpoint, held[0])
        self.leases[endpoint] = (owner, now + timedelta(seconds=lease_seconds))
        return self.memories.get(endpoint, EndpointMemory())

    def release(self, endpoint: str, owner: str, memory: EndpointMemory | None) -> None:
        held = self.leases.get(endpoint)
        if held is None or held[0] != owner:
            raise LockLost(endpoint)
        del self.leases[endpoint]
        if memory is not None:
            self.memories[endpoint] = memory

    def peek(self, endpoint: str) -> EndpointMemory:
        return self.memories.get(endpoint, EndpointMemory())


@dataclass
class FakeVariant:
    instances: int
    weight: float = 1.0


@dataclass
class FakeSageMaker:
    """Endpoints with variants; `busy_for` makes the next N update calls fail as in-progress."""

    endpoints: dict[str, dict[str, FakeVariant]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    busy_for: int = 0
    updates: list[tuple[str, tuple[VariantUpdate, ...]]] = field(default_factory=list)
    describes: int = 0

    def add(self, endpoint: str, **variants: FakeVariant) -> None:
        self.endpoints[endpoint] = dict(variants)
        self.status[endpoint] = "InService"

    def describe_endpoint(self, endpoint: str) -> EndpointObservation:
        self.describes += 1
        return EndpointObservation(
            name=endpoint,
            status=self.status[endpoint],
            config_name=f"{endpoint}-config",
            variants=tuple(
                VariantObservation(name=name, current_instances=v.instances, current_weight=v.weight)
                for name, v in self.endpoints[endpoint].items()
            ),
        )

    def update_weights_and_capacities(self, endpoint: str, updates: Sequence[VariantUpdate]) -> None:
        if self.busy_for > 0 or self.status[endpoint] != "InService":
            self.busy_for = max(0, self.busy_for - 1)
            raise EndpointBusy(f"{endpoint}: Cannot update in-progress endpoint")
        self.updates.append((endpoint, tuple(updates)))
        for update in updates:
            variant = self.endpoints[endpoint][update.variant]
            if update.instances is not None:
                variant.instances = update.instances
            if update.weight is not None:
                variant.weight = update.weight


@dataclass
class FakeScalableTargets:
    targets: dict[tuple[str, str], ScalableTarget] = field(default_factory=dict)
    bound_changes: list[tuple[str, str, int, int]] = field(default_factory=list)

    def register(self, endpoint: str, variant: str, min_capacity: int, max_capacity: int) -> None:
        self.targets[(endpoint, variant)] = ScalableTarget(
            variant=variant, min_capacity=min_capacity, max_capacity=max_capacity
        )

    def registered(self, endpoint: str, variants: Sequence[str]) -> dict[str, ScalableTarget]:
        return {v: self.targets[(endpoint, v)] for v in variants if (endpoint, v) in self.targets}

    def set_bounds(self, endpoint: str, variant: str, min_capacity: int, max_capacity: int) -> None:
        self.bound_changes.append((endpoint, variant, min_capacity, max_capacity))
        self.register(endpoint, variant, min_capacity, max_capacity)


@dataclass
class RecordingDeferrals:
    deferred: list[tuple[DeferredChange, int]] = field(default_factory=list)

    def defer(self, change: DeferredChange, delay_seconds: int) -> None:
        self.deferred.append((change, delay_seconds))


@dataclass
class RecordingQuarantine:
    quarantined: list[tuple[str, str, object]] = field(default_factory=list)

    def quarantine(self, function: str, reason: str, event: object) -> None:
        self.quarantined.append((function, reason, event))


@dataclass
class InMemoryDiffStore:
    """The diff pipeline's S3 in memory: objects by key with ETags, conditional commits, injectable faults."""

    objects: dict[str, StoredBytes] = field(default_factory=dict)
    configs: dict[str, DiffConfig] = field(default_factory=dict)
    commits: int = 0
    conflict_next_commit: bool = False
    fail_reads: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    fail_puts_matching: str | None = None

    def add(self, key: str, body: bytes) -> str:
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        self.objects[key] = StoredBytes(body, etag)
        return etag

    def json(self, key: str) -> Any:
        return orjson.loads(self.objects[key].body)

    def keys(self, prefix: str) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))

    # --- the backfill's BackfillStorage port (keys() above is its listing) ------------------------

    def folders(self, prefix: str) -> list[str]:
        """ListObjectsV2's CommonPrefixes with Delimiter "/"."""
        return sorted(
            {f"{prefix}{key[len(prefix) :].split('/')[0]}/" for key in self.keys(prefix) if "/" in key[len(prefix) :]}
        )

    def read(self, key: str) -> bytes | None:
        found = self.objects.get(key)
        return found.body if found is not None else None

    # --- the DiffStore port ---------------------------------------------------------------------

    def read_capture(self, key: str) -> StoredBytes | None:
        if key in self.fail_reads:
            raise AwsServiceUnavailable(f"GetObject {key}: 503 SlowDown")
        if key in self.forbidden:
            raise CaptureObjectForbidden(f"GetObject {key}: AccessDenied")
        return self.objects.get(key)

    def load_config(self, test_id: str) -> DiffConfig | None:
        return self.configs.get(test_id)

    def load_state(self, prefix: str) -> StoredState:
        stored = self.objects.get(f"{prefix}state/manifest.bin")
        return StoredState(stored.body, stored.etag) if stored else StoredState(None, None)

    def load_window(self, prefix: str, ref: WindowRef) -> bytes:
        return self.objects[f"{prefix}state/windows/{ref.name}.bin"].body

    def write_windows(self, prefix: str, blobs: dict[WindowRef, bytes]) -> None:
        for ref, blob in blobs.items():
            self.put(f"{prefix}state/windows/{ref.name}.bin", blob)

    def commit(self, prefix: str, manifest: bytes, expected_version: str | None) -> None:
        key = f"{prefix}state/manifest.bin"
        current = self.objects.get(key)
        if self.conflict_next_commit or (current.etag if current else None) != (expected_version or None):
            self.conflict_next_commit = False
            raise DiffStateConflict(f"{key} was committed by another writer")
        self.add(key, manifest)
        self.commits += 1

    def delete_windows(self, prefix: str, refs: tuple[WindowRef, ...]) -> None:
        for ref in refs:
            self.objects.pop(f"{prefix}state/windows/{ref.name}.bin", None)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        if self.fail_puts_matching and self.fail_puts_matching in key:
            raise AwsServiceUnavailable(f"PutObject {key}: 503")
        self.add(key, body)


@dataclass
class RecordingDiffMetrics:
    published: list[tuple[DiffMetrics, datetime]] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)

    def publish(self, metrics: DiffMetrics, at: datetime) -> None:
        self.published.append((metrics, at))

    def count(self, name: str, value: float) -> None:
        self.counters[name] = self.counters.get(name, 0) + value


@dataclass
class RecordingCloser:
    sent: list[tuple[CloseDiffs, int]] = field(default_factory=list)

    def close(self, message: CloseDiffs, delay_seconds: int) -> None:
        self.sent.append((message, delay_seconds))


@dataclass
class InMemoryPolicyRevisions:
    """The write side of policies: every revision kept with its reason, as the table's document says."""

    revisions: dict[str, list[tuple[CapacityPolicy, str | None]]] = field(default_factory=dict)
    fail_puts: int = 0

    def add(self, policy: CapacityPolicy) -> None:
        self.revisions.setdefault(policy.endpoint, []).append((policy, None))

    def get(self, endpoint: str) -> tuple[CapacityPolicy, int] | None:
        stored = self.revisions.get(endpoint)
        return (stored[-1][0], len(stored)) if stored else None

    def put(
        self,
        policy: CapacityPolicy,
        *,
        reason: str | None = None,
        applied_by: str | None = None,
        applied_at: datetime | None = None,
    ) -> int:
        if self.fail_puts:
            self.fail_puts -= 1
            raise AwsServiceUnavailable("DynamoDB: InternalServerError")
        self.revisions.setdefault(policy.endpoint, []).append((policy, reason))
        return len(self.revisions[policy.endpoint])


@dataclass
class InMemoryAlarms:
    """Alarms by name with their dimensions; re-pointing follows CloudWatchAlarmDimensions' rules."""

    dimensions: dict[str, dict[str, str]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    fail_next: int = 0

    def repoint(self, alarm_name: str, endpoint: str, from_variant: str, to_variant: str) -> AlarmRepointing:
        if self.fail_next:
            self.fail_next -= 1
            raise AwsServiceUnavailable("CloudWatch: ServiceUnavailable")
        if alarm_name in self.forbidden:
            return "not-allowed"
        watched = self.dimensions.get(alarm_name)
        if watched is None:
            return "missing"
        if watched.get("EndpointName") != endpoint:
            return "not-this-variant"
        if watched.get("VariantName") == to_variant:
            return "already"
        if watched.get("VariantName") != from_variant:
            return "not-this-variant"
        watched["VariantName"] = to_variant
        return "re-pointed"


@dataclass
class RecordingAnnouncer:
    announced: list[tuple[PromotionHandover, int]] = field(default_factory=list)

    def announce(self, handover: PromotionHandover, delay_seconds: int = 0) -> None:
        self.announced.append((handover, delay_seconds))
