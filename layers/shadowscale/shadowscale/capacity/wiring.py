"""The capacity functions' composition root: real adapters wired to the autopilot, built once per
container on first use. The clock is an argument: the deployed functions pass wall time, the local
cloud passes its own (see shadowscale_localcloud.lambda_runtime)."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from shadowscale.capacity.alarms import CloudWatchAlarmComparisons, CloudWatchAlarmDimensions
from shadowscale.capacity.autopilot import Autopilot
from shadowscale.capacity.dedup import Dedup
from shadowscale.capacity.deferrals import QueueDeferrals
from shadowscale.capacity.entrypoints import CapacityEntryPoints
from shadowscale.capacity.policy_handover import PolicyHandover
from shadowscale.capacity.policy_store import CachedPolicyStore, PolicyRepository, TableParameterProvider
from shadowscale.shared import clients
from shadowscale.shared.autoscaling import VariantScalableTargets
from shadowscale.shared.clock import Clock, SystemClock
from shadowscale.shared.endpoint_state import DynamoEndpointState
from shadowscale.shared.queues import QueuePromotionAnnouncer, QueueQuarantine
from shadowscale.shared.retry import RetryBudget
from shadowscale.shared.sagemaker import SageMakerEndpoints
from shadowscale.shared.settings import Settings, get_settings


def build_entrypoints(settings: Settings, clock: Clock) -> CapacityEntryPoints:
    dynamodb = clients.dynamodb()
    sqs = clients.sqs()
    cloudwatch = clients.cloudwatch()
    autopilot = Autopilot(
        policies=CachedPolicyStore(
            TableParameterProvider(dynamodb, settings.policy_table),
            settings.policy_cache_seconds,
        ),
        state=DynamoEndpointState(dynamodb, settings.state_table),
        endpoints=SageMakerEndpoints(clients.sagemaker()),
        scalable_targets=VariantScalableTargets(clients.application_autoscaling()),
        deferrals=QueueDeferrals(sqs, settings.intent_queue_url),
        clock=clock,
        retry=RetryBudget(
            max_attempts=settings.update_max_attempts, budget_seconds=settings.update_retry_budget_seconds
        ),
        lease_seconds=settings.lock_lease_seconds,
        defer_delay_seconds=settings.defer_delay_seconds,
        hold_recheck_seconds=settings.hold_recheck_seconds,
        dry_run=settings.dry_run,
        comparisons=CloudWatchAlarmComparisons(cloudwatch),
    )
    return CapacityEntryPoints(
        autopilot=autopilot,
        handover=PolicyHandover(
            revisions=PolicyRepository(dynamodb, settings.policy_table),
            alarms=CloudWatchAlarmDimensions(cloudwatch),
            state=DynamoEndpointState(dynamodb, settings.state_table),
            lease_seconds=settings.lock_lease_seconds,
            resend=QueuePromotionAnnouncer(sqs, settings.intent_queue_url),
            clock=clock,
        ),
        dedup=Dedup(
            DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb),
            settings.idempotency_ttl_seconds,
        ),
        quarantine=QueueQuarantine(sqs, settings.dead_letter_queue_url),
    )


@cache
def entrypoints() -> CapacityEntryPoints:
    return build_entrypoints(get_settings(), SystemClock())
