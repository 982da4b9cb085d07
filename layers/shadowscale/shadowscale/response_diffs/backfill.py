"""The capture backfill: every capture object of a shadow test (optionally of a time range) diffed again
into diffs/<test>/backfill/<run>/, by the state machine in statemachine/capture_backfill.asl.json. Its three
tasks are BackfillTasks' methods:

    start   the request checked, the comparison resolved (the test's own, or the run's override): the
            Distributed Map's input (BackfillPlan);
    object  one listed object (ObjectTask), skipped outside [since, until) by its key's time;
    finish  every window of the run closed, its summary written (FinishTask -> BackfillResult).

Errors propagate with their class names: the state machine's Retry clauses match on them
(DiffStateConflict, CaptureObjectUnreadable, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from shadowscale.response_diffs.capture_records import parse_capture_key
from shadowscale.response_diffs.models import CaptureObjectRef, ObjectStatus
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline
from shadowscale.shared.diff_contract import CAPTURE_ROOT, CamelModel, DiffConfig, diffs_prefix
from shadowscale.shared.errors import CaptureObjectUnreadable, InvalidCaptureObject, InvalidEvent
from shadowscale.shared.validation import field_problems

RUN_PATTERN = r"^[A-Za-z0-9._-]{1,80}$"

# ----------------------------------------------------------------------------------------------- input


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


class ObjectTask(BaseModel):
    """One item of the Map: {"task": "object", "item", "comparison", "since", "until"}."""

    model_config = ConfigDict(extra="ignore")

    item: BackfillItem
    comparison: DiffConfig
    since: datetime | None = None
    until: datetime | None = None


class FinishTask(BaseModel):
    """{"task": "finish", "testId", "run", "comparison"}."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    test_id: str = Field(alias="testId")
    run: str
    comparison: DiffConfig


# ---------------------------------------------------------------------------------------------- output


class BackfillPlan(CamelModel):
    """The start task's output, the Map's input: what to list (bucket, prefix) and how to diff each item."""

    test_id: str
    run: str
    prefix: str
    bucket: str
    since: datetime | None
    until: datetime | None
    comparison: DiffConfig

    @field_serializer("since", "until")
    def _as_given(self, moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None


class ObjectDiffed(CamelModel):
    """An object task's output (`records` only when it was diffed, not when skipped)."""

    key: str
    status: ObjectStatus | Literal["skipped"]
    records: int | None = None


class BackfillResult(CamelModel):
    """The finish task's output, the execution's: where the run's summary is, and its headline numbers."""

    summary_key: str
    paired: int
    exact_match_rate: float | None
    within_tolerance_rate: float | None


# ----------------------------------------------------------------------------------------------- rules


def outside_range(key: str, since: datetime | None, until: datetime | None) -> bool:
    """Whether the object's key time falls outside [since, until). A key without a time is not skipped:
    the engine rejects it, with the reason, when it reads it."""
    try:
        when = parse_capture_key(key).written_at
    except InvalidCaptureObject:
        return False
    return (since is not None and when < since) or (until is not None and when >= until)


@dataclass
class BackfillTasks:
    pipeline: CaptureDiffPipeline
    data_bucket: str

    def start(self, raw: object) -> BackfillPlan:
        """The request checked and its comparison resolved; InvalidEvent names what is wrong."""
        try:
            request = BackfillRequest.model_validate(raw)
        except ValidationError as exc:
            raise InvalidEvent(f"invalid backfill input: {field_problems(exc)}") from exc
        return BackfillPlan(
            test_id=request.test_id,
            run=request.run,
            prefix=f"{CAPTURE_ROOT}/{request.test_id}/",
            bucket=self.data_bucket,
            since=request.since,
            until=request.until,
            comparison=self._comparison(request.test_id, request.comparison),
        )

    def diff_object(self, task: ObjectTask) -> ObjectDiffed:
        """One listed object into the run's state; CaptureObjectUnreadable if it could not be read (retried)."""
        item = task.item
        if outside_range(item.object.key, task.since, task.until):
            return ObjectDiffed(key=item.object.key, status="skipped")
        outcome = self.pipeline.backfill(item.run, item.test_id, item.object, task.comparison)
        if outcome.status == "failed":
            raise CaptureObjectUnreadable(outcome.reason)
        return ObjectDiffed(key=outcome.key, status=outcome.status, records=outcome.records_read)

    def finish(self, task: FinishTask) -> BackfillResult:
        summary = self.pipeline.finish_backfill(task.run, task.test_id, task.comparison)
        return BackfillResult(
            summary_key=f"{diffs_prefix(task.test_id, task.run)}summary.json",
            paired=summary.paired if summary else 0,
            exact_match_rate=summary.exact_match_rate if summary else None,
            within_tolerance_rate=summary.within_tolerance_rate if summary else None,
        )

    def _comparison(self, test_id: str, override: dict[str, Any] | None) -> DiffConfig:
        """The test's own comparison, or the run's override on the test's endpoint and variants."""
        # The override is checked before anything is read: a wrong field is named even for a test whose
        # config is missing, and nothing is listed for input that cannot run.
        if override is not None:
            _with_override(test_id, "endpoint", "production", "shadow", override)
        stored = self.pipeline.store.load_config(test_id)
        if stored is None:
            raise InvalidEvent(f"no shadow test {test_id!r}: diffs/{test_id}/config.json is missing")
        if override is None:
            return stored
        return _with_override(test_id, stored.endpoint, stored.production_variant, stored.shadow_variant, override)


def _with_override(test_id: str, endpoint: str, production: str, shadow: str, comparison: dict[str, Any]) -> DiffConfig:
    try:
        return DiffConfig.for_test(test_id, endpoint, production, shadow, comparison)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid backfill input: {field_problems(exc, 'comparison.')}") from exc
