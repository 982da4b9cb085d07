"""What the capture_diff function's queue delivers, and what it answers.

The event is Lambda's SQS batch; each message's body is one of:
- an S3 event notification for capture objects (keys arrive URL-encoded, spaces as '+');
- S3's test event, sent once when the bucket's notification configuration is saved;
- the lifecycle's close request (shared.diff_contract.CloseDiffs).
The answer is the partial batch response of ReportBatchItemFailures: the messages the queue should retry.

The batch is modelled here with the two fields the function reads (messageId, body) rather than with
Powertools' SqsModel: that one validates a dozen attributes nobody reads, and importing the Parser package
costs ~0.1 s at every cold start (python -X importtime).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shadowscale.response_diffs.models import CaptureObjectRef
from shadowscale.shared.diff_contract import CloseDiffs
from shadowscale.shared.errors import InvalidEvent
from shadowscale.shared.validation import field_problems

# ------------------------------------------------------------------------------------------- the batch


class QueuedMessage(BaseModel):
    """One SQS record of the batch: what the function reads of it."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    message_id: str = Field(alias="messageId")
    body: str


class QueueBatch(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    records: list[QueuedMessage] = Field(alias="Records")


def parse_batch(event: object) -> list[QueuedMessage]:
    """Lambda's SQS event -> its messages; InvalidEvent if it is not one."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise InvalidEvent("an SQS event has a Records list")
    try:
        return QueueBatch.model_validate(event).records
    except ValidationError as exc:
        raise InvalidEvent(f"SQS event: {field_problems(exc)}") from exc


def batch_item_failures(message_ids: Iterable[str]) -> dict[str, Any]:
    """The partial batch response: these messages are retried by the queue, every other one is deleted."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids]}


# ------------------------------------------------------------------------------------------ the bodies


class _S3Object(BaseModel):
    model_config = ConfigDict(defer_build=True)

    key: str
    e_tag: str | None = Field(default=None, alias="eTag")
    size: int | None = None


class _S3Entity(BaseModel):
    model_config = ConfigDict(defer_build=True)

    bucket: dict[str, Any]
    object: _S3Object


class _S3Record(BaseModel):
    model_config = ConfigDict(defer_build=True)

    event_name: str = Field(alias="eventName")
    s3: _S3Entity


class S3Notification(BaseModel):
    """The body S3 sends to SQS for object events (keys arrive URL-encoded, spaces as '+')."""

    model_config = ConfigDict(defer_build=True)

    records: list[_S3Record] = Field(alias="Records", min_length=1)

    def created(self) -> list[CaptureObjectRef]:
        return [
            CaptureObjectRef(
                key=unquote_plus(record.s3.object.key), etag=record.s3.object.e_tag, size=record.s3.object.size
            )
            for record in self.records
            if record.event_name.startswith("ObjectCreated:")
        ]


class S3TestEvent(BaseModel):
    """Sent once when the bucket's notification configuration is saved."""

    model_config = ConfigDict(defer_build=True)

    event: Literal["s3:TestEvent"] = Field(alias="Event")


Message = S3Notification | S3TestEvent | CloseDiffs


def parse_message(body: str) -> Message:
    """One SQS body → what it asks for; InvalidEvent names what is wrong with it."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InvalidEvent(f"message body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidEvent(f"message body must be a JSON object, got {type(document).__name__}")
    shape: type[BaseModel]
    if "Records" in document:
        shape = S3Notification
    elif document.get("Event") == "s3:TestEvent":
        shape = S3TestEvent
    elif document.get("kind") == "shadowscale.close-diffs":
        shape = CloseDiffs
    else:
        raise InvalidEvent("message is neither an S3 notification nor a shadowscale.close-diffs request")
    try:
        return shape.model_validate(document)
    except ValidationError as exc:
        raise InvalidEvent(f"{shape.__name__}: {field_problems(exc, whole='(body)')}") from exc
