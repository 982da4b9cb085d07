"""The composition root: real adapters wired to the domain, built once per container, on first use."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from shadowscale.adapters import clients
from shadowscale.adapters.autoscaling import VariantScalableTargets
from shadowscale.adapters.clock import SystemClock
from shadowscale.adapters.deferrals import Quarantine
from shadowscale.adapters.endpoint_state import DynamoEndpointState
from shadowscale.domain.ports import Clock
from shadowscale.settings import Settings, get_settings

if TYPE_CHECKING:  # each function's cold start imports only its own part, when it is built
    from shadowscale.entrypoints.capacity import CapacityEntryPoints
    from shadowscale.entrypoints.capture_diff import CaptureDiffEntryPoints
    from shadowscale.entrypoints.shadow_test import ShadowTestEntryPoints

_clock: list[Clock] = [SystemClock()]


def set_clock(clock: Clock | None) -> None:
    """Replace wall time (the local cloud's accelerated clock, tests); None restores the system clock."""
    _clock[0] = clock or SystemClock()
    capacity_entrypoints.cache_clear()
    shadow_test_entrypoints.cache_clear()
    capture_diff_entrypoints.cache_clear()


def build_capacity_entrypoints(settings: Settings, clock: Clock | None = None) -> CapacityEntryPoints:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from shadowscale.adapters.alarm_dimensions import CloudWatchAlarmComparisons, CloudWatchAlarmDimensions
    from shadowscale.adapters.deferrals import QueueDeferrals, QueuePromotionAnnouncer
    from shadowscale.adapters.policy_store import CachedPolicyStore, PolicyRepository, TableParameterProvider
    from shadowscale.adapters.sagemaker import SageMakerEndpoints
    from shadowscale.domain.autopilot import Autopilot
    from shadowscale.domain.policy_handover import PolicyHandover
    from shadowscale.domain.retry import RetryBudget
    from shadowscale.entrypoints.capacity import CapacityEntryPoints
    from shadowscale.entrypoints.dedup import Dedup

    dynamodb = clients.dynamodb()
    sqs = clients.sqs()
    autopilot = Autopilot(
        policies=CachedPolicyStore(
            TableParameterProvider(dynamodb, settings.policy_table),
            settings.policy_cache_seconds,
        ),
        state=DynamoEndpointState(dynamodb, settings.state_table),
        endpoints=SageMakerEndpoints(clients.sagemaker()),
        scalable_targets=VariantScalableTargets(clients.application_autoscaling()),
        deferrals=QueueDeferrals(sqs, settings.intent_queue_url),
        clock=clock or _clock[0],
        retry=RetryBudget(
            max_attempts=settings.update_max_attempts, budget_seconds=settings.update_retry_budget_seconds
        ),
        lease_seconds=settings.lock_lease_seconds,
        defer_delay_seconds=settings.defer_delay_seconds,
        hold_recheck_seconds=settings.hold_recheck_seconds,
        dry_run=settings.dry_run,
        comparisons=CloudWatchAlarmComparisons(clients.cloudwatch()),
    )
    return CapacityEntryPoints(
        autopilot=autopilot,
        handover=PolicyHandover(
            revisions=PolicyRepository(dynamodb, settings.policy_table),
            alarms=CloudWatchAlarmDimensions(clients.cloudwatch()),
            state=DynamoEndpointState(dynamodb, settings.state_table),
            lease_seconds=settings.lock_lease_seconds,
            resend=QueuePromotionAnnouncer(sqs, settings.intent_queue_url),
            clock=clock or _clock[0],
        ),
        dedup=Dedup(
            DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb),
            settings.idempotency_ttl_seconds,
        ),
        quarantine=Quarantine(sqs, settings.dead_letter_queue_url),
    )


@cache
def capacity_entrypoints() -> CapacityEntryPoints:
    return build_capacity_entrypoints(get_settings())


def build_shadow_test_entrypoints(settings: Settings, clock: Clock | None = None) -> ShadowTestEntryPoints:
    from shadowscale.adapters.deferrals import QueuePromotionAnnouncer
    from shadowscale.adapters.diff_store import QueueDiffControl
    from shadowscale.adapters.endpoint_configs import SageMakerEndpointConfigs
    from shadowscale.adapters.endpoint_metrics import EndpointMetrics
    from shadowscale.adapters.endpoint_state import ShadowTestRecord
    from shadowscale.adapters.test_artifacts import ExecutionTimeline, S3Objects, SnsNotifier
    from shadowscale.domain.shadow_lifecycle import ShadowLifecycle
    from shadowscale.entrypoints.shadow_test import ShadowTestEntryPoints

    dynamodb = clients.dynamodb()
    lifecycle = ShadowLifecycle(
        configs=SageMakerEndpointConfigs(clients.sagemaker()),
        scaling=VariantScalableTargets(clients.application_autoscaling()),
        leases=DynamoEndpointState(dynamodb, settings.state_table),
        records=ShadowTestRecord(dynamodb, settings.state_table),
        metrics=EndpointMetrics(clients.cloudwatch()),
        objects=S3Objects(clients.s3()),
        notifier=SnsNotifier(clients.sns()),
        timeline=ExecutionTimeline(clients.stepfunctions()),
        diffs=QueueDiffControl(clients.sqs(), settings.capture_diff_queue_url),
        handover=QueuePromotionAnnouncer(clients.sqs(), settings.intent_queue_url),
        clock=clock or _clock[0],
        data_bucket=settings.data_bucket,
        default_topic_arn=settings.notification_topic_arn,
    )
    return ShadowTestEntryPoints(lifecycle)


@cache
def shadow_test_entrypoints() -> ShadowTestEntryPoints:
    return build_shadow_test_entrypoints(get_settings())


def build_capture_diff_entrypoints(settings: Settings, clock: Clock | None = None) -> CaptureDiffEntryPoints:
    from shadowscale.adapters.diff_store import QueueDiffControl, S3DiffStore
    from shadowscale.domain.capture_diff import CaptureDiffPipeline
    from shadowscale.entrypoints.capture_diff import CaptureDiffEntryPoints, PowertoolsDiffMetrics

    sqs = clients.sqs()
    pipeline = CaptureDiffPipeline(
        store=S3DiffStore(clients.s3(), settings.data_bucket),
        metrics=PowertoolsDiffMetrics(),
        clock=clock or _clock[0],
        closer=QueueDiffControl(sqs, settings.capture_diff_queue_url),
    )
    return CaptureDiffEntryPoints(
        pipeline=pipeline, quarantine=Quarantine(sqs, settings.dead_letter_queue_url), data_bucket=settings.data_bucket
    )


@cache
def capture_diff_entrypoints() -> CaptureDiffEntryPoints:
    return build_capture_diff_entrypoints(get_settings())
