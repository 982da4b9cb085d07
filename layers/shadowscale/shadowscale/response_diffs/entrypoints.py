"""Entry points of the response-diff functions: the live consumer of S3 notifications (through SQS) and
the backfill's tasks (a Distributed Map over slices of capture time). Each parses its event (events.py,
backfill.py), makes one call into the pipeline and returns a model dumped to a dict; handlers stay one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shadowscale.response_diffs.backfill import BackfillTasks, FinishTask, SliceTask
from shadowscale.response_diffs.events import (
    QueuedMessage,
    S3Notification,
    batch_item_failures,
    parse_batch,
    parse_message,
)
from shadowscale.response_diffs.models import CaptureObjectRef, ObjectOutcome
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline
from shadowscale.shared.diff_contract import CAPTURE_ROOT, CloseDiffs
from shadowscale.shared.errors import InvalidEvent
from shadowscale.shared.observability import logger
from shadowscale.shared.quarantine import Quarantine, set_aside

FUNCTION = "capture_diff"


@dataclass
class CaptureDiffEntryPoints:
    pipeline: CaptureDiffPipeline
    quarantine: Quarantine
    backfill: BackfillTasks

    def batch(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """SQS batch of S3 notifications (and close requests), diffed together: one state round trip per
        test. A message any of whose objects failed, or whose close failed, is a batch item failure (retried
        by the queue, finally dead-lettered); one that cannot be understood is set aside, not retried.

        Not Powertools' BatchProcessor: it hands the records to a handler one at a time, while the objects
        of the whole batch are diffed in one go, so which messages failed is known only at the end. The
        response is the one BatchProcessor would give (ReportBatchItemFailures)."""
        messages = parse_batch(event)
        objects, closes = self._requests(messages)
        outcomes = self.pipeline.process([ref for refs in objects.values() for ref in refs])
        _log_outcomes(outcomes)
        unread = {outcome.key for outcome in outcomes if outcome.status == "failed"}
        failed = {message_id for message_id, refs in objects.items() if any(ref.key in unread for ref in refs)}
        failed.update(message_id for message_id, close in closes.items() if not self._closed(message_id, close))
        return batch_item_failures(message.message_id for message in messages if message.message_id in failed)

    def backfill_task(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """The backfill state machine's tasks: start (validate and slice), slice (one item), finish (merge)."""
        task = event.get("task") if isinstance(event, dict) else None
        if task == "start":
            return self.backfill.start(event.get("input")).model_dump(mode="json", by_alias=True)
        if task == "slice":
            return self.backfill.diff_slice(SliceTask.model_validate(event)).model_dump(mode="json", by_alias=True)
        if task == "finish":
            return self.backfill.finish(FinishTask.model_validate(event)).model_dump(mode="json", by_alias=True)
        raise InvalidEvent(f"unknown backfill task {task!r}")

    # ------------------------------------------------------------------------------------------

    def _requests(
        self, messages: list[QueuedMessage]
    ) -> tuple[dict[str, list[CaptureObjectRef]], dict[str, CloseDiffs]]:
        """By message: the capture objects to diff, and the close requests."""
        objects: dict[str, list[CaptureObjectRef]] = {}
        closes: dict[str, CloseDiffs] = {}
        for message in messages:
            understood = self._understood(message)
            if isinstance(understood, S3Notification):
                objects[message.message_id] = [
                    ref for ref in understood.created() if ref.key.startswith(f"{CAPTURE_ROOT}/")
                ]
            elif isinstance(understood, CloseDiffs):
                closes[message.message_id] = understood
        return objects, closes

    def _understood(self, message: QueuedMessage) -> S3Notification | CloseDiffs | None:
        """What the message asks for (None: nothing, e.g. S3's test event); a body that cannot be
        understood is set aside, with the reason, and asks for nothing."""
        try:
            parsed = parse_message(message.body)
        except InvalidEvent as exc:
            set_aside(self.quarantine, FUNCTION, exc, {"messageId": message.message_id, "body": message.body[:2048]})
            return None
        return parsed if isinstance(parsed, S3Notification | CloseDiffs) else None

    def _closed(self, message_id: str, close: CloseDiffs) -> bool:
        try:
            self.pipeline.close(close)
        except Exception as exc:  # any failure: the queue retries the message, and finally dead-letters it
            logger.warning(
                "close request failed", extra={"messageId": message_id, "reason": f"{type(exc).__name__}: {exc}"}
            )
            return False
        return True


def _log_outcomes(outcomes: list[ObjectOutcome]) -> None:
    for outcome in outcomes:
        if outcome.status in {"rejected", "failed", "missing"}:
            logger.warning("capture object not diffed", extra=outcome.model_dump(mode="json"))
    if outcomes:
        logger.info(
            "capture batch diffed",
            extra={
                "objects": len(outcomes),
                "records": sum(outcome.records_read for outcome in outcomes),
                "paired": sum(outcome.paired for outcome in outcomes),
                "quarantined": sum(outcome.quarantined for outcome in outcomes),
            },
        )
