"""The response-diff functions' composition root: the S3 store and the queue wired to the pipeline,
built once per container on first use. The clock is an argument (wall time when deployed, the local
cloud's own clock there)."""

from __future__ import annotations

from functools import cache

from shadowscale.response_diffs.backfill import BackfillTasks
from shadowscale.response_diffs.backfill_store import S3BackfillStorage
from shadowscale.response_diffs.emf import PowertoolsDiffMetrics
from shadowscale.response_diffs.entrypoints import CaptureDiffEntryPoints
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline
from shadowscale.response_diffs.store import S3DiffStore
from shadowscale.shared import clients
from shadowscale.shared.clock import Clock, SystemClock
from shadowscale.shared.queues import QueueDiffControl, QueueQuarantine
from shadowscale.shared.settings import Settings, get_settings


def build_entrypoints(settings: Settings, clock: Clock) -> CaptureDiffEntryPoints:
    sqs = clients.sqs()
    pipeline = CaptureDiffPipeline(
        store=S3DiffStore(clients.s3(), settings.data_bucket),
        metrics=PowertoolsDiffMetrics(),
        clock=clock,
        closer=QueueDiffControl(sqs, settings.capture_diff_queue_url),
    )
    return CaptureDiffEntryPoints(
        pipeline=pipeline,
        quarantine=QueueQuarantine(sqs, settings.dead_letter_queue_url),
        backfill=BackfillTasks(pipeline, S3BackfillStorage(clients.s3(), settings.data_bucket)),
    )


@cache
def entrypoints() -> CaptureDiffEntryPoints:
    return build_entrypoints(get_settings(), SystemClock())
