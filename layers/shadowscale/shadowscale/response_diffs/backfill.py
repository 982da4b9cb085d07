"""The capture backfill: a shadow test's capture (optionally of a time range) diffed again into
diffs/<test>/backfill/<run>/, by the state machine in statemachine/capture_backfill.asl.json, partitioned
by time. Its three tasks are BackfillTasks' methods:

    start   the request checked, the comparison resolved, the run cut into slices of time (BackfillPlan:
            the Distributed Map's items, through ItemsPath);
    slice   one slice, on its own: its capture read, diffed, every window closed, its partial summary
            written to slices/<start>.json (SliceTask -> SliceDiffed);
    finish  the partial summaries merged into the run's summary.json (FinishTask -> BackfillResult).

Who owns what. Windows are the engine's (pairing_window_seconds W on inferenceTime); a slice [start, end)
owns every window that starts in it, and everything the engine tallies in a window: its pairs (a pair counts
in its production half's window), its unpaired halves and the quarantined lines of objects whose key time
falls in it. Twins are at most W apart, and a record lies at most the allowed lateness L from its object's
key time (later than that it is late for the live pipeline too), so a slice reads every object whose key time
is within W + L of it: its neighbours read the same edge objects, pair the same straddling pairs the same
way, and each keeps only the windows it owns. Items share nothing (no state object, no lock), so they run in
parallel; each closes its windows as its event-time watermark passes them, so its memory is bounded by
W + L of capture, not by the run.

Errors propagate with their class names: the state machine's Retry clauses match on them
(CaptureObjectUnreadable, DiffStateCorrupt, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Self

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_serializer, model_validator

from shadowscale.response_diffs.capture_records import parse_capture_key
from shadowscale.response_diffs.engine import DiffEngine
from shadowscale.response_diffs.engine_choice import pipeline_engine
from shadowscale.response_diffs.models import DiffSummary, ObjectResult, RunningDiffSummary
from shadowscale.response_diffs.pipeline import CaptureDiffPipeline, quarantine_file, set_aside_file
from shadowscale.shared.diff_contract import CAPTURE_ROOT, CamelModel, DiffConfig, diffs_prefix
from shadowscale.shared.errors import (
    CaptureObjectForbidden,
    CaptureObjectUnreadable,
    DiffStateCorrupt,
    InvalidCaptureObject,
    InvalidEvent,
    TransientAwsError,
)
from shadowscale.shared.validation import field_problems

RUN_PATTERN = r"^[A-Za-z0-9._-]{1,80}$"
HOUR = timedelta(hours=1)
DEFAULT_SLICE_SECONDS = 3600
# A day's hour-slices at once; Lambda's default account concurrency is 1,000.
DEFAULT_MAX_CONCURRENCY = 24
# The plan (slices included) is the Map's input and the finish task's: Step Functions caps a payload at
# 256 KiB. A slice is ~70 bytes of JSON, so 2,000 (83 days of hours) stay far below it.
MAX_SLICES = 2000

# ----------------------------------------------------------------------------------------------- ports


class BackfillStorage(Protocol):
    """What the backfill reads beyond the pipeline's DiffStore: S3 listings and its own partial summaries."""

    def folders(self, prefix: str) -> list[str]:
        """The "folders" right under `prefix` (ListObjectsV2 with Delimiter "/": CommonPrefixes)."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`."""
        ...

    def read(self, key: str) -> bytes | None:
        """An object's bytes; None if there is no such key."""
        ...


# ----------------------------------------------------------------------------------------------- input


class BackfillRequest(BaseModel):
    """What `shadowscale diffs backfill` (or `aws stepfunctions start-execution`) starts: a test's capture,
    optionally of [since, until) (by the windows' start), diffed again into diffs/<test>/backfill/<run>/."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", defer_build=True)

    test_id: str = Field(alias="testId", pattern=r"^[A-Za-z0-9._-]{1,128}$")
    run: str = Field(pattern=RUN_PATTERN)
    # With a timezone: a naive time could be any of 24 hours (since/until are compared with UTC key times).
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    comparison: dict[str, Any] | None = Field(
        default=None, description="Comparison settings for this run instead of the test's own (e.g. a new tolerance)."
    )
    slice_seconds: int = Field(
        default=DEFAULT_SLICE_SECONDS, alias="sliceSeconds", ge=60, le=86_400, description="One Map item's time."
    )
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY, alias="maxConcurrency", ge=1, le=1000, description="Items run at once."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class TimeSlice(CamelModel):
    """One item of the Map: the windows starting in [start, end)."""

    start: AwareDatetime
    end: AwareDatetime

    @field_serializer("start", "end")
    def _iso(self, moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat()

    @property
    def name(self) -> str:
        return _stamp(self.start)


class SliceTask(BaseModel):
    """One item of the Map: {"task": "slice", "testId", "run", "comparison", "slice"}."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", defer_build=True)

    test_id: str = Field(alias="testId")
    run: str = Field(pattern=RUN_PATTERN)
    comparison: DiffConfig
    slice: TimeSlice


class FinishTask(BaseModel):
    """{"task": "finish", "testId", "run", "comparison", "slices"}."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", defer_build=True)

    test_id: str = Field(alias="testId")
    run: str = Field(pattern=RUN_PATTERN)
    comparison: DiffConfig
    slices: list[TimeSlice]


# ---------------------------------------------------------------------------------------------- output


class BackfillPlan(CamelModel):
    """The start task's output, the Map's input: the slices (ItemsPath) and how to diff each."""

    test_id: str
    run: str
    comparison: DiffConfig
    max_concurrency: int
    slices: tuple[TimeSlice, ...]


class SlicePartial(CamelModel):
    """slices/<start>.json: what one slice's windows came to (summary None: none held anything)."""

    start: datetime
    end: datetime
    summary: DiffSummary | None
    objects_read: int
    objects_processed: int
    objects_rejected: int
    objects_missing: int


class SliceDiffed(CamelModel):
    """A slice task's output (small: the Map's ResultWriter keeps them)."""

    start: datetime
    objects_read: int
    windows: int
    records: int
    paired: int


class BackfillResult(CamelModel):
    """The finish task's output, the execution's: where the run's summary is, and its headline numbers."""

    summary_key: str
    paired: int
    exact_match_rate: float | None
    within_tolerance_rate: float | None


# ----------------------------------------------------------------------------------------------- rules


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + step * ((moment - epoch) // step)


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def slices_between(since: datetime, until: datetime, slice_seconds: int) -> list[TimeSlice]:
    """[since, until) cut at the multiples of slice_seconds (since the epoch): whole hours for hour slices."""
    step = timedelta(seconds=slice_seconds)
    slices, start = [], since
    while start < until:
        end = min(_floor(start, step) + step, until)
        slices.append(TimeSlice(start=start, end=end))
        start = end
    return slices


def reach(config: DiffConfig) -> timedelta:
    """How far beyond its edges a slice reads objects (by key time): a twin is at most one pairing window
    away, and a record at most the allowed lateness from its object's key time."""
    return timedelta(seconds=config.pairing_window_seconds + config.allowed_lateness_seconds)


def hours_between(since: datetime, until: datetime) -> Iterator[datetime]:
    hour = _floor(since, HOUR)
    while hour < until:
        yield hour
        hour += HOUR


def hour_folder(config: DiffConfig, variant: str, hour: datetime) -> str:
    """Where SageMaker writes one variant's capture of one hour (the variant comes before the date)."""
    return f"{CAPTURE_ROOT}/{config.shadow_test}/{config.endpoint}/{variant}/{hour:%Y/%m/%d/%H}/"


def _json(document: object) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


@dataclass
class _SliceRun:
    """One slice's objects through a fresh engine: the owned windows' summaries and the objects' counts."""

    task: SliceTask
    read: int = 0
    processed: int = 0
    rejected: int = 0
    missing: int = 0

    def owns_time(self, moment: datetime) -> bool:
        return self.task.slice.start <= moment < self.task.slice.end

    def keep(self, summaries: Iterable[DiffSummary], into: dict[datetime, list[DiffSummary]]) -> None:
        for summary in summaries:
            if self.owns_time(summary.window_start):
                into.setdefault(summary.window_start, []).append(summary)


@dataclass
class BackfillTasks:
    pipeline: CaptureDiffPipeline
    storage: BackfillStorage

    # --- start ----------------------------------------------------------------------------------

    def start(self, raw: object) -> BackfillPlan:
        """The request checked, its comparison resolved and the run cut into slices; InvalidEvent names what
        is wrong, before anything is listed or written."""
        try:
            request = BackfillRequest.model_validate(raw)
        except ValidationError as exc:
            raise InvalidEvent(f"invalid backfill input: {field_problems(exc)}") from exc
        config = self._comparison(request.test_id, request.comparison)
        since, until = request.since, request.until
        if since is None or until is None:
            found = self._capture_span(config)
            if found is None:
                return self._plan(request, config, [])
            # Records of the first and last hours may lie up to `reach` outside them.
            step = timedelta(seconds=request.slice_seconds)
            since = since or _floor(found[0] - reach(config), step)
            until = until or _ceil(found[1] + reach(config), step)
            if since >= until:
                return self._plan(request, config, [])
        slices = slices_between(since.astimezone(UTC), until.astimezone(UTC), request.slice_seconds)
        if len(slices) > MAX_SLICES:
            raise InvalidEvent(
                f"invalid backfill input: {len(slices)} slices of {request.slice_seconds} s, at most {MAX_SLICES}"
                " fit the Map's input: a larger sliceSeconds, or a shorter since/until"
            )
        return self._plan(request, config, slices)

    def _plan(self, request: BackfillRequest, config: DiffConfig, slices: list[TimeSlice]) -> BackfillPlan:
        return BackfillPlan(
            test_id=request.test_id,
            run=request.run,
            comparison=config,
            max_concurrency=request.max_concurrency,
            slices=tuple(slices),
        )

    def _capture_span(self, config: DiffConfig) -> tuple[datetime, datetime] | None:
        """The first hour folder's start and the last one's end, of either variant (a few delimiter listings
        per day of capture, never a listing of the objects)."""
        hours: list[datetime | None] = []
        for variant in (config.production_variant, config.shadow_variant):
            root = f"{CAPTURE_ROOT}/{config.shadow_test}/{config.endpoint}/{variant}/"
            for year in self.storage.folders(root):
                for month in self.storage.folders(year):
                    for day in self.storage.folders(month):
                        hours.extend(_folder_hour(hour) for hour in self.storage.folders(day))
        known = [hour for hour in hours if hour is not None]
        return (min(known), max(known) + HOUR) if known else None

    # --- slice ----------------------------------------------------------------------------------

    def diff_slice(self, task: SliceTask) -> SliceDiffed:
        """One slice, on its own: every object within reach read in key-time order, windows closed as the
        watermark passes them, the owned ones written, then the partial summary (written last: finish reads
        it as the proof that the item completed). CaptureObjectUnreadable if an object could not be read."""
        config = task.comparison
        prefix = diffs_prefix(task.test_id, task.run)
        run = _SliceRun(task)
        owned: dict[datetime, list[DiffSummary]] = {}
        engine = pipeline_engine(config)
        now = self.pipeline.clock.now()
        for when, key in self._objects_within_reach(task):
            result = self._diff_object(engine, run, prefix, key, owner=run.owns_time(when))
            if result is not None:
                run.keep(engine.finalise_watermark(now), owned)
        run.keep(engine.close_all(), owned)
        engine.assert_accounting()

        windows = []
        for window_start in sorted(owned):
            window = DiffSummary.merge(owned[window_start], config.mismatch_samples, config.quarantine_samples)
            self.pipeline.store.put(
                f"{prefix}windows/{_stamp(window_start)}-0.json", _json(window.model_dump(mode="json", by_alias=True))
            )
            windows.append(window)
        summary = DiffSummary.merge(windows, config.mismatch_samples, config.quarantine_samples) if windows else None
        partial = SlicePartial(
            start=task.slice.start,
            end=task.slice.end,
            summary=summary,
            objects_read=run.read,
            objects_processed=run.processed,
            objects_rejected=run.rejected,
            objects_missing=run.missing,
        )
        self.pipeline.store.put(
            f"{prefix}slices/{task.slice.name}.json", _json(partial.model_dump(mode="json", by_alias=True))
        )
        return SliceDiffed(
            start=task.slice.start,
            objects_read=run.read,
            windows=len(windows),
            records=summary.records_read if summary else 0,
            paired=summary.paired if summary else 0,
        )

    def _objects_within_reach(self, task: SliceTask) -> list[tuple[datetime, str]]:
        """(key time, key) of both variants' objects within reach of the slice, in key-time order (then by
        key: the same order for every slice that reads an object). A key without a time is kept, at its
        hour folder's time, if that folder is the slice's (the engine rejects it, with the reason)."""
        config = task.comparison
        lowest, highest = task.slice.start - reach(config), task.slice.end + reach(config)
        found: list[tuple[datetime, str]] = []
        for variant in (config.production_variant, config.shadow_variant):
            for hour in hours_between(lowest, highest):
                for key in self.storage.keys(hour_folder(config, variant, hour)):
                    try:
                        when = parse_capture_key(key).written_at
                    except InvalidCaptureObject:
                        when = hour
                        if not task.slice.start <= hour < task.slice.end:
                            continue
                    if lowest <= when < highest:
                        found.append((when, key))
        return sorted(found)

    def _diff_object(
        self, engine: DiffEngine, run: _SliceRun, prefix: str, key: str, *, owner: bool
    ) -> ObjectResult | None:
        """One object into the slice's engine; its outcome counted (and its files written) only by the slice
        that owns its key time (`owner`), as its quarantined lines count in that slice's window."""
        run.read += 1
        try:
            capture = self.pipeline.store.read_capture(key)
        except TransientAwsError as exc:
            raise CaptureObjectUnreadable(f"{key}: {exc}") from exc
        except CaptureObjectForbidden as exc:
            self._reject(run, prefix, key, None, str(exc), owner)
            return None
        if capture is None:
            run.missing += owner  # deleted or expired since it was listed
            return None
        try:
            result = engine.process_object(key, capture.etag, capture.body)
        except InvalidCaptureObject as exc:
            self._reject(run, prefix, key, capture.etag, str(exc), owner)
            return None
        result.assert_accounting()
        if owner:
            run.processed += result.status == "processed"
            if result.quarantine or result.problems:
                self.pipeline.store.put(*quarantine_file(prefix, result))
        return result

    def _reject(self, run: _SliceRun, prefix: str, key: str, etag: str | None, reason: str, owner: bool) -> None:
        if not owner:
            return
        run.rejected += 1
        self.pipeline.store.put(*set_aside_file(f"{prefix}rejected/", key, etag, reason))

    # --- finish ---------------------------------------------------------------------------------

    def finish(self, task: FinishTask) -> BackfillResult:
        """The slices' partial summaries merged into the run's summary.json (final: every window closed).
        DiffStateCorrupt if a slice left none (its item did not complete)."""
        config = task.comparison
        prefix = diffs_prefix(task.test_id, task.run)
        partials = [self._partial(prefix, piece) for piece in task.slices]
        parts = [partial.summary for partial in partials if partial.summary is not None]
        summary_key = f"{prefix}summary.json"
        if not parts:
            return BackfillResult(summary_key=summary_key, paired=0, exact_match_rate=None, within_tolerance_rate=None)
        merged = DiffSummary.merge(parts, config.mismatch_samples, config.quarantine_samples)
        running = RunningDiffSummary.model_validate(
            {
                **merged.model_dump(exclude=set(DiffSummary.model_computed_fields)),
                "pending": 0,
                "final": True,
                "sequence": len(task.slices),
                "updated_at": self.pipeline.clock.now(),
                "open_windows": 0,
                "objects_processed": sum(partial.objects_processed for partial in partials),
                "objects_duplicate": 0,  # a listing names each object once
                "objects_rejected": sum(partial.objects_rejected for partial in partials),
            }
        )
        running.assert_accounting()
        self.pipeline.store.put(summary_key, _json(running.model_dump(mode="json", by_alias=True)))
        return BackfillResult(
            summary_key=summary_key,
            paired=running.paired,
            exact_match_rate=running.exact_match_rate,
            within_tolerance_rate=running.within_tolerance_rate,
        )

    def _partial(self, prefix: str, piece: TimeSlice) -> SlicePartial:
        key = f"{prefix}slices/{piece.name}.json"
        found = self.storage.read(key)
        if found is None:
            raise DiffStateCorrupt(f"{key} is missing: the slice from {piece.start.isoformat()} did not complete")
        try:
            partial = SlicePartial.model_validate_json(found)
        except ValidationError as exc:
            raise DiffStateCorrupt(f"{key}: {exc}") from exc
        if partial.start != piece.start or partial.end != piece.end:
            raise DiffStateCorrupt(f"{key} is of [{partial.start}, {partial.end}), not of this run's slice")
        return partial

    # --------------------------------------------------------------------------------------------

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


def _folder_hour(folder: str) -> datetime | None:
    """The hour of a .../yyyy/mm/dd/hh/ folder; None for a folder that is not one."""
    parts = folder.rstrip("/").split("/")[-4:]
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return None
    year, month, day, hour = (int(part) for part in parts)
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def _with_override(test_id: str, endpoint: str, production: str, shadow: str, comparison: dict[str, Any]) -> DiffConfig:
    try:
        return DiffConfig.for_test(test_id, endpoint, production, shadow, comparison)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid backfill input: {field_problems(exc, 'comparison.')}") from exc
