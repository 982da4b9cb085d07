"""The shadow-test tasks function's composition root: real adapters wired to the steps, the report and the
recovery, built once
per container on first use. The clock is an argument (wall time when deployed, the local cloud's own
clock there)."""

from __future__ import annotations

from functools import cache

from shadowscale.shadow_tests.data_bucket import DataBucketObjects
from shadowscale.shadow_tests.endpoint_hold import WriterHold
from shadowscale.shadow_tests.entrypoints import ShadowTestEntryPoints
from shadowscale.shadow_tests.lifecycle import ShadowTestSteps
from shadowscale.shadow_tests.notifier import SnsNotifier
from shadowscale.shadow_tests.promotion_alarms import CloudWatchPromotionAlarms
from shadowscale.shadow_tests.promotion_guardrails import alarm_prefix
from shadowscale.shadow_tests.records import DynamoShadowTestRecords
from shadowscale.shadow_tests.recovery import ShadowTestRecovery
from shadowscale.shadow_tests.reports import ShadowTestReports
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
    sqs = clients.sqs()
    cloudwatch = clients.cloudwatch()
    hold = WriterHold(DynamoEndpointState(dynamodb, settings.state_table), clock)
    records = DynamoShadowTestRecords(dynamodb, settings.state_table)
    objects = DataBucketObjects(S3Objects(clients.s3()))
    metrics = EndpointMetrics(cloudwatch)
    timeline = ExecutionTimeline(clients.stepfunctions())
    steps = ShadowTestSteps(
        configs=SageMakerEndpointConfigs(clients.sagemaker()),
        scaling=VariantScalableTargets(clients.application_autoscaling()),
        hold=hold,
        records=records,
        metrics=metrics,
        objects=objects,
        diffs=QueueDiffControl(sqs, settings.capture_diff_queue_url),
        handover=QueuePromotionAnnouncer(sqs, settings.intent_queue_url),
        clock=clock,
        data_bucket=settings.data_bucket,
        default_topic_arn=settings.notification_topic_arn,
        alarms=CloudWatchPromotionAlarms(cloudwatch),
        alarm_prefix=alarm_prefix(settings.stage),
    )
    reports = ShadowTestReports(
        objects=objects,
        metrics=metrics,
        timeline=timeline,
        notifier=SnsNotifier(clients.sns()),
        records=records,
        clock=clock,
        data_bucket=settings.data_bucket,
    )
    recovery = ShadowTestRecovery(
        timeline=timeline,
        records=records,
        objects=objects,
        hold=hold,
        clock=clock,
        data_bucket=settings.data_bucket,
        default_topic_arn=settings.notification_topic_arn,
    )
    return ShadowTestEntryPoints(steps, reports, recovery)


@cache
def entrypoints() -> ShadowTestEntryPoints:
    return build_entrypoints(get_settings(), SystemClock())
