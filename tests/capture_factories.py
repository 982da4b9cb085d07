"""Builders for data-capture tests: records, objects, keys, configs, and an engine driver that checks the
accounting invariant after every step."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from shadowscale.response_diffs.engine import DiffEngine
from shadowscale.response_diffs.models import DiffSummary, ObjectResult
from shadowscale.response_diffs.state import StateExport, WindowRef
from shadowscale.shared.diff_contract import DiffConfig

ENDPOINT = "fraud-detector"
PRODUCTION = "primary"
SHADOW = "candidate"
PREFIX = "capture/test-1"
T0 = datetime(2026, 3, 1, 9, 58, 0, tzinfo=UTC)


def diff_config(**overrides: Any) -> DiffConfig:
    document: dict[str, Any] = {
        "shadowTest": "test-1",
        "endpoint": ENDPOINT,
        "productionVariant": PRODUCTION,
        "shadowVariant": SHADOW,
    }
    document.update(overrides)
    return DiffConfig.model_validate(document)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def record(
    event_id: str,
    at: datetime,
    output: str = '{"label":"legit","score":0.9}',
    *,
    body: str = "1.5,2.5,3.5",
    inference_id: str | None = None,
    input_encoding: str = "CSV",
    input_type: str = "text/csv",
    output_encoding: str = "JSON",
    output_type: str = "application/json",
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"eventId": event_id, "inferenceTime": iso(at)}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": input_type,
                "mode": "INPUT",
                "data": body,
                "encoding": input_encoding,
            },
            "endpointOutput": {
                "observedContentType": output_type,
                "mode": "OUTPUT",
                "data": output,
                "encoding": output_encoding,
            },
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def lines(*records: dict[str, Any] | bytes) -> bytes:
    """One JSON line per record; bytes are written as they are (for malformed lines)."""
    return b"".join((item if isinstance(item, bytes) else orjson.dumps(item)) + b"\n" for item in records)


def key(variant: str, at: datetime, name: str = "0000") -> str:
    return f"{PREFIX}/{ENDPOINT}/{variant}/{at:%Y/%m/%d/%H}/{at:%M-%S}-{at.microsecond // 1000:03d}-{name}.jsonl"


@dataclass
class InMemoryDiffState:
    """The whole state of one test in memory: what the S3 adapter does, minus S3 (tests)."""

    manifest: bytes | None = None
    windows: dict[WindowRef, bytes] = field(default_factory=dict)
    commits: int = 0

    def load_window(self, ref: WindowRef) -> bytes:
        return self.windows[ref]

    def commit(self, export: StateExport) -> None:
        self.windows.update(export.windows)
        self.manifest = export.manifest
        for ref in export.obsolete:
            self.windows.pop(ref, None)
        self.commits += 1

    @property
    def stored_bytes(self) -> int:
        return len(self.manifest or b"") + sum(len(blob) for blob in self.windows.values())


@dataclass
class CaptureRun:
    """Feeds objects to an engine (optionally through a stored state per object, as the Lambda does),
    asserting the accounting invariant after every object, every finalisation and at the end."""

    config: DiffConfig = field(default_factory=diff_config)
    round_trip: bool = False
    store: InMemoryDiffState = field(default_factory=InMemoryDiffState)
    summaries: list[DiffSummary] = field(default_factory=list)
    results: list[ObjectResult] = field(default_factory=list)
    engine: DiffEngine | None = None

    def _engine(self) -> DiffEngine:
        if self.round_trip or self.engine is None:
            self.engine = DiffEngine(self.config, self.store.manifest, self.store)
        return self.engine

    def _done(self, engine: DiffEngine) -> None:
        engine.assert_accounting()
        if self.round_trip:
            self.store.commit(engine.export())

    def feed(
        self, variant: str, at: datetime, body: bytes, *, name: str = "0000", etag: str | None = None
    ) -> ObjectResult:
        return self.feed_object(key(variant, at, name), body, etag=etag)

    def feed_object(self, object_key: str, body: bytes, *, etag: str | None = None) -> ObjectResult:
        engine = self._engine()
        result = engine.process_object(object_key, etag or f"etag-{object_key}", body)
        result.assert_accounting()
        self.results.append(result)
        self._done(engine)
        return result

    def finalise(self, until: datetime) -> list[DiffSummary]:
        engine = self._engine()
        closed = engine.finalise(until)
        for summary in closed:
            summary.assert_accounting()
        self.summaries += closed
        self._done(engine)
        return closed

    def close(self) -> DiffSummary:
        """Close every window and merge everything the test produced, checking it against the reader."""
        engine = self._engine()
        closed = engine.close_all()
        self.summaries += closed
        self._done(engine)
        total = DiffSummary.merge(self.summaries)
        total.assert_accounting()
        accounting = engine.accounting()
        assert accounting.pending == 0
        assert total.records_read == accounting.records_read == sum(r.records_read for r in self.results)
        return total


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)


def times(start: datetime, count: int, step_ms: int = 100) -> Iterable[datetime]:
    return (start + timedelta(milliseconds=step_ms * index) for index in range(count))
