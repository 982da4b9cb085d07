"""Entry points of the response-diff functions: the live consumer of S3 notifications (through SQS) and
the backfill's tasks (a Distributed Map over a capture prefix).

Handlers stay one line: each calls one method here with the raw event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shadowscale.response_diffs.capture_records import parse_capture_key
from shadowscale.response_diffs.models import CaptureObjectRef, DiffMetrics, ObjectOutcome
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline
from shadowscale.shared.diff_contract import CAPTURE_ROOT, CloseDiffs, DiffConfig, diffs_prefix
from shadowscale.shared.errors import CaptureObjectUnreadable, InvalidCaptureObject, InvalidEvent
from shadowscale.shared.observability import logger, metrics
from shadowscale.shared.quarantine import Quarantine, set_aside
from shadowscale.shared.validation import field_problems

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


FUNCTION = "capture_diff"


# --------------------------------------------------------------------------------- event models


class _S3Object(BaseModel):
    key: str
    e_tag: str | None = Field(default=None, alias="eTag")
    size: int | None = None


class _S3Entity(BaseModel):
    bucket: dict[str, Any]
    object: _S3Object


class _S3Record(BaseModel):
    event_name: str = Field(alias="eventName")
    s3: _S3Entity


class S3Notification(BaseModel):
    """The body S3 sends to SQS for object events (keys arrive URL-encoded, spaces as '+')."""

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


# --------------------------------------------------------------------------------- backfill models

RUN_PATTERN = r"^[A-Za-z0-9._-]{1,80}$"


class BackfillRequest(BaseModel):
    """What `shadowscale diffs backfill` (or `aws stepfunctions start-execution`) starts: every capture
    object of a test, optionally of a time range, diffed again into diffs/<test>/backfill/<run>/."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    test_id: str = Field(alias="testId", pattern=r"^[A-Za-z0-9._-]{1,128}$")
    run: str = Field(pattern=RUN_PATTERN)
    since: datetime | None = None
    until: datetime | None = None
    comparison: dict[str, Any] | None = Field(
        default=None, description="Comparison settings for this run instead of the test's own (e.g. a new tolerance)."
    )


class BackfillItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    test_id: str = Field(alias="testId")
    run: str = Field(pattern=RUN_PATTERN)
    object: CaptureObjectRef


def _key_time(key: str) -> datetime | None:
    try:
        return parse_capture_key(key).written_at
    except InvalidCaptureObject:
        return None  # the engine rejects it, with the reason, when it reads it


# --------------------------------------------------------------------------------- metrics


class PowertoolsDiffMetrics:
    """Window metrics as their own EMF documents (their own dimensions and timestamp); pipeline counters
    on the invocation's Metrics (flushed by the handler's decorator)."""

    def publish(self, rendered: DiffMetrics, at: datetime) -> None:
        # No service dimension: the documented set is exactly EndpointName + ShadowTest (the dashboard's).
        emf = EphemeralMetrics(namespace=rendered.namespace, service="")
        for name, value in rendered.dimensions.items():
            emf.add_dimension(name=name, value=value)
        for metric in rendered.metrics:
            emf.add_metric(name=metric.name, unit=MetricUnit(metric.unit), value=metric.value)
        emf.set_timestamp(at)
        emf.flush_metrics()

    def count(self, name: str, value: float) -> None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# --------------------------------------------------------------------------------- entry points


@dataclass
class CaptureDiffEntryPoints:
    pipeline: CaptureDiffPipeline
    quarantine: Quarantine
    data_bucket: str

    def batch(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """SQS batch of S3 notifications (and close requests). The batch is diffed together, one state
        round trip per test; a message any of whose objects failed is a batch item failure."""
        # Imported here: Batch is only needed by this function.
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

        records = event.get("Records") if isinstance(event, dict) else None
        if not isinstance(records, list):
            raise InvalidEvent("an SQS event has a Records list")
        refs: dict[str, list[CaptureObjectRef]] = {}
        closes: dict[str, CloseDiffs] = {}
        for record in records:
            message_id, body = str(record.get("messageId", "")), str(record.get("body", ""))
            try:
                message = parse_message(body)
            except InvalidEvent as exc:
                set_aside(self.quarantine, FUNCTION, exc, {"messageId": message_id, "body": body[:2048]})
                continue
            if isinstance(message, S3Notification):
                refs[message_id] = [ref for ref in message.created() if ref.key.startswith(f"{CAPTURE_ROOT}/")]
            elif isinstance(message, CloseDiffs):
                closes[message_id] = message

        outcomes = self.pipeline.process([ref for group in refs.values() for ref in group])
        failed_keys = {outcome.key: outcome for outcome in outcomes if outcome.status == "failed"}
        self._log_outcomes(outcomes)
        failed_closes: dict[str, str] = {}
        for message_id, close in closes.items():
            try:
                self.pipeline.close(close)
            except Exception as exc:
                failed_closes[message_id] = f"{type(exc).__name__}: {exc}"

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

        def record_handler(record: SQSRecord) -> None:
            failures = [failed_keys[ref.key] for ref in refs.get(record.message_id, []) if ref.key in failed_keys]
            if failures:
                raise RuntimeError(f"{len(failures)} object(s) to retry: {failures[0].reason}")
            if record.message_id in failed_closes:
                raise RuntimeError(failed_closes[record.message_id])

        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    def backfill_task(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """The backfill state machine's tasks: start (validate), object (one listed object), finish."""
        task = event.get("task") if isinstance(event, dict) else None
        if task == "start":
            request = self._backfill_request(event.get("input"))
            config = self._backfill_config(request.test_id, request.comparison)
            return {
                "testId": request.test_id,
                "run": request.run,
                "prefix": f"{CAPTURE_ROOT}/{request.test_id}/",
                "bucket": self.data_bucket,
                "since": request.since.isoformat() if request.since else None,
                "until": request.until.isoformat() if request.until else None,
                "comparison": config.model_dump(mode="json", by_alias=True),
            }
        if task == "object":
            item = BackfillItem.model_validate(event.get("item"))
            config = DiffConfig.model_validate(event.get("comparison"))
            when = _key_time(item.object.key)
            since, until = event.get("since"), event.get("until")
            if when is not None and (
                (since and when < datetime.fromisoformat(since)) or (until and when >= datetime.fromisoformat(until))
            ):
                return {"key": item.object.key, "status": "skipped"}
            outcome = self.pipeline.backfill(item.run, item.test_id, item.object, config)
            if outcome.status == "failed":
                raise CaptureObjectUnreadable(outcome.reason)
            return {"key": outcome.key, "status": outcome.status, "records": outcome.records_read}
        if task == "finish":
            config = DiffConfig.model_validate(event.get("comparison"))
            summary = self.pipeline.finish_backfill(str(event.get("run")), str(event.get("testId")), config)
            return {
                "summaryKey": f"{diffs_prefix(str(event.get('testId')), str(event.get('run')))}summary.json",
                "paired": summary.paired if summary else 0,
                "exactMatchRate": summary.exact_match_rate if summary else None,
                "withinToleranceRate": summary.within_tolerance_rate if summary else None,
            }
        raise InvalidEvent(f"unknown backfill task {task!r}")

    # ------------------------------------------------------------------------------------------

    def _backfill_request(self, raw: object) -> BackfillRequest:
        try:
            return BackfillRequest.model_validate(raw)
        except ValidationError as exc:
            raise InvalidEvent(f"invalid backfill input: {field_problems(exc)}") from exc

    def _backfill_config(self, test_id: str, comparison: dict[str, Any] | None) -> DiffConfig:
        # The override is checked before anything is read: a wrong field is named even for a test whose
        # config is missing, and nothing is listed for input that cannot run.
        if comparison is not None:
            self._comparison_override(test_id, "endpoint", "production", "shadow", comparison)
        stored = self.pipeline.store.load_config(test_id)
        if stored is None:
            raise InvalidEvent(f"no shadow test {test_id!r}: diffs/{test_id}/config.json is missing")
        if comparison is None:
            return stored
        return self._comparison_override(
            test_id, stored.endpoint, stored.production_variant, stored.shadow_variant, comparison
        )

    @staticmethod
    def _comparison_override(
        test_id: str, endpoint: str, production: str, shadow: str, comparison: dict[str, Any]
    ) -> DiffConfig:
        try:
            return DiffConfig.for_test(test_id, endpoint, production, shadow, comparison)
        except ValidationError as exc:
            raise InvalidEvent(f"invalid backfill input: {field_problems(exc, 'comparison.')}") from exc

    @staticmethod
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
