"""SQS senders more than one capability uses: delayed sends, the dead-letter quarantine, the promotion
handover (shadow tests → capacity) and the close-diffs request (shadow tests → response diffs)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.shared.aws_errors import raise_domain_error
from shadowscale.shared.diff_contract import CloseDiffs
from shadowscale.shared.handover import PromotionHandover

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from shadowscale.shared.diff_contract import CloseDiffs


def send_delayed(client: SQSClient, queue_url: str, body: str, delay_seconds: int, subject: str) -> None:
    try:
        # SQS delays a message by at most 15 minutes.
        client.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=max(0, min(900, delay_seconds)))
    except ClientError as exc:
        raise_domain_error(exc, subject)


class QueuePromotionAnnouncer:
    """Promotions reach the capacity autopilot on its own queue: the deferred scaler hands the policy over."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def announce(self, handover: PromotionHandover, delay_seconds: int = 0) -> None:
        subject = f"announce the promotion of {handover.to_variant} on {handover.endpoint}"
        send_delayed(self._client, self._queue_url, handover.model_dump_json(by_alias=True), delay_seconds, subject)


class QueueQuarantine:
    """Events that cannot be processed go to the dead-letter queue with the reason, never retried."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def quarantine(self, function: str, reason: str, event: object) -> None:
        body = json.dumps({"function": function, "reason": reason, "event": event}, default=str)
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=body[:250_000])


# SQS caps a message's delay at 15 minutes.
MAX_DELAY_SECONDS = 900


class QueueDiffControl:
    """Tells the pipeline a test has ended, through the capture-diff queue (delayed: capture lands late)."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def close(self, message: CloseDiffs, delay_seconds: int) -> None:
        if not self._queue_url:
            return  # a deployment without the diff pipeline (tools, some tests)
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=message.model_dump_json(by_alias=True),
                DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
            )
        except ClientError as exc:
            raise_domain_error(exc, f"SendMessage {self._queue_url}")
