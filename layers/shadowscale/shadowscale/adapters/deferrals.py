"""Deferred changes go to an SQS queue (delayed delivery); its redrive policy dead-letters the ones that
keep failing, so nothing decided is dropped silently."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.adapters.aws_errors import raise_domain_error
from shadowscale.models.events import DeferredChange
from shadowscale.models.handover import PromotionHandover

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def _send_delayed(client: SQSClient, queue_url: str, body: str, delay_seconds: int, subject: str) -> None:
    try:
        # SQS delays a message by at most 15 minutes.
        client.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=max(0, min(900, delay_seconds)))
    except ClientError as exc:
        raise_domain_error(exc, subject)


class QueueDeferrals:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def defer(self, change: DeferredChange, delay_seconds: int) -> None:
        _send_delayed(
            self._client, self._queue_url, change.model_dump_json(by_alias=True), delay_seconds, "defer change"
        )


class QueuePromotionAnnouncer:
    """Promotions reach the capacity autopilot on its own queue: the deferred scaler hands the policy over."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def announce(self, handover: PromotionHandover, delay_seconds: int = 0) -> None:
        subject = f"announce the promotion of {handover.to_variant} on {handover.endpoint}"
        _send_delayed(self._client, self._queue_url, handover.model_dump_json(by_alias=True), delay_seconds, subject)


class Quarantine:
    """Events that cannot be processed go to the dead-letter queue with the reason, never retried."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def quarantine(self, function: str, reason: str, event: object) -> None:
        body = json.dumps({"function": function, "reason": reason, "event": event}, default=str)
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=body[:250_000])
