"""Deferred changes go to an SQS queue (delayed delivery); its redrive policy dead-letters the ones that
keep failing, so nothing decided is dropped silently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shadowscale.capacity.events import DeferredChange
from shadowscale.shared.queues import send_delayed

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class QueueDeferrals:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def defer(self, change: DeferredChange, delay_seconds: int) -> None:
        send_delayed(
            self._client, self._queue_url, change.model_dump_json(by_alias=True), delay_seconds, "defer change"
        )
