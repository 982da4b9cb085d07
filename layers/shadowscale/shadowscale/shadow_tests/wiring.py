"""The shadow-test tasks function's composition root: real adapters wired to the lifecycle, built once
per container on first use. The clock is an argument (wall time when deployed, the local cloud's own
clock there)."""

from __future__ import annotations

from functools import cache

from shadowscale.shadow_tests.entrypoints import ShadowTestEntryPoints
from shadowscale.shadow_tests.lifecycle import ShadowLifecycle
from shadowscale.shadow_tests.notifier import SnsNotifier
from shadowscale.shadow_tests.records import ShadowTestRecord
from shadowscale.shadow_tests.sagemaker_configs import SageMakerEndpointConfigs
from shadowscale.shadow_tests.timeline import ExecutionTimeline
from shadowscale.shadow_tests.variant_metrics import EndpointMetrics
from shadowscale.shared import clients
from shadowscale.shared.autoscaling import VariantScalableTargets
from shadowscale.shared.clock import Clock, SystemClock
from shadowscale.shared.endpoint_state import DynamoEndpointState
from shadowscale.shared.queues import QueueDiffControl, QueuePromotionAnnouncer
from shadowscale.shared.s3 import S3Objects
from shadowscale.shared.settings import Settings, get_settings


def build_entrypoints(settings: Settings, clock: Clock) -> ShadowTestEntryPoints:
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
        clock=clock,
        data_bucket=settings.data_bucket,
        default_topic_arn=settings.notification_topic_arn,
    )
    return ShadowTestEntryPoints(lifecycle)


@cache
def entrypoints() -> ShadowTestEntryPoints:
    return build_entrypoints(get_settings(), SystemClock())
