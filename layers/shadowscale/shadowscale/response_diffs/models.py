"""The response-diff pipeline at its boundaries: a shadow test's comparison settings, what one capture
object yielded, and the per-window summaries the lifecycle reads.

Accounting (checked by `assert_accounting()` on every result and summary, and by the engine's ledger):
every non-blank line read from a capture object ends up exactly once as

    half of a pair  |  an unpaired half (after its window closed, with a reason)  |  a quarantined line

so, for an object:   records_read == paired + pending + unpaired + quarantined   (pending: held for a twin)
and for a window:    records_read == 2 * paired + unpaired + quarantined          (a closed window holds nothing)
A pair belongs to the window of its production half; a quarantined line to the window of its object's
key time (a malformed line may have no time of its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from heapq import nsmallest
from typing import Any, Literal, Self

from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    JsonValue,
    computed_field,
)

from shadowscale.response_diffs.histogram import LogHistogram
from shadowscale.shared.diff_contract import (  # noqa: F401  (the response-diff models re-export their contract with the lifecycle)
    CAPTURE_ROOT,
    DIFFS_ROOT,
    CamelModel,
    ClassificationRule,
    CloseDiffs,
    ComparatorName,
    DiffConfig,
    Tolerance,
    diff_config_key,
    diffs_prefix,
    shadow_test_of_capture_key,
)
from shadowscale.shared.errors import AccountingMismatch

Side = Literal["production", "shadow"]
PairingKey = Literal["inferenceId", "eventId", "fingerprint"]
UnpairedReason = Literal["no-shadow-twin", "no-production-twin", "duplicate-record"]
QuarantineReason = Literal[
    "truncated-line",
    "invalid-json",
    "not-a-record",
    "missing-field",
    "invalid-field",
    "unknown-encoding",
    "undecodable-data",
]
OTHER_FIELDS = "(other)"


class LineLocation(CamelModel):
    key: str
    line: int = Field(ge=1)


class QuarantinedLine(CamelModel):
    key: str
    line: int = Field(ge=1)
    reason: QuarantineReason
    detail: str = ""


class Mismatch(CamelModel):
    """One pair whose answers disagree beyond tolerance, redacted and truncated before it was stored."""

    production: LineLocation
    shadow: LineLocation
    paired_by: PairingKey
    inference_time: datetime
    input: str
    production_output: str
    shadow_output: str
    fields: tuple[str, ...] = ()
    abs_diff: float | None = None
    rel_diff: float | None = None
    # Samples are the K mismatches with the smallest priority (a hash of the pair): a uniform sample
    # that merges exactly, whatever the order windows are merged in.
    priority: int


class DistributionStats(CamelModel):
    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    max: float | None


class HistogramData(CamelModel):
    """A LogHistogram at rest (see shadowscale.response_diffs.histogram)."""

    count: int = 0
    zeros: int = 0
    total: float = 0.0
    smallest: float | None = Field(default=None, description="The smallest positive value.")
    largest: float | None = None
    buckets: dict[int, int] = Field(default_factory=dict)

    @classmethod
    def of(cls, histogram: LogHistogram) -> HistogramData:
        return cls(
            count=histogram.count,
            zeros=histogram.zeros,
            total=histogram.total,
            smallest=histogram.smallest,
            largest=histogram.largest,
            buckets=dict(histogram.buckets),
        )

    def histogram(self) -> LogHistogram:
        return LogHistogram(
            count=self.count,
            zeros=self.zeros,
            total=self.total,
            smallest=self.smallest,
            largest=self.largest,
            buckets=self.buckets,
        )

    def stats(self) -> DistributionStats:
        histogram = self.histogram()
        return DistributionStats(
            count=self.count,
            mean=histogram.mean,
            p50=histogram.quantile(0.50),
            p95=histogram.quantile(0.95),
            max=histogram.maximum,
        )


class LabelStats(CamelModel):
    compared: int = 0
    agreed: int = 0
    argmax_compared: int = 0
    argmax_agreed: int = 0
    top_k_compared: int = 0
    top_k_overlap_sum: float = 0.0

    def __add__(self, other: LabelStats) -> LabelStats:
        return LabelStats(
            compared=self.compared + other.compared,
            agreed=self.agreed + other.agreed,
            argmax_compared=self.argmax_compared + other.argmax_compared,
            argmax_agreed=self.argmax_agreed + other.argmax_agreed,
            top_k_compared=self.top_k_compared + other.top_k_compared,
            top_k_overlap_sum=self.top_k_overlap_sum + other.top_k_overlap_sum,
        )


class FieldCount(CamelModel):
    path: str
    pairs: int


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _add_counts(into: dict[str, int], counts: Mapping[Any, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def cap_field_counts(counts: Mapping[str, int], limit: int) -> dict[str, int]:
    """The `limit` most frequent paths; the rest are folded into OTHER_FIELDS so memory stays bounded."""
    if len(counts) <= limit:
        return dict(counts)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[: limit - 1])
    kept[OTHER_FIELDS] = sum(count for _, count in ranked[limit - 1 :])
    return kept


FIELD_COUNT_LIMIT = 200


class DiffSummary(CamelModel):
    """What one shadow test's diffs came to over one window, or (merged) over several."""

    # Read back from its own JSON (e.g. the running test summary), which also carries the computed fields.
    model_config = ConfigDict(extra="ignore", defer_build=True)

    shadow_test: str
    endpoint: str
    production_variant: str
    shadow_variant: str
    window_start: datetime
    window_end: datetime
    windows: int = 1
    records_read: int = 0
    paired: int = 0
    paired_by: dict[PairingKey, int] = Field(default_factory=dict)
    unpaired: dict[UnpairedReason, int] = Field(default_factory=dict)
    quarantined: dict[QuarantineReason, int] = Field(default_factory=dict)
    quarantine_samples: tuple[QuarantinedLine, ...] = ()
    late_records: int = Field(default=0, description="Records that arrived after their window had been finalised.")
    exact_matches: int = 0
    within_tolerance: int = Field(default=0, description="Pairs that agree within tolerance (exact ones included).")
    abs_diff: HistogramData = Field(default_factory=HistogramData)
    rel_diff: HistogramData = Field(default_factory=HistogramData)
    labels: LabelStats = Field(default_factory=LabelStats)
    field_differences: dict[str, int] = Field(default_factory=dict)
    mismatch_samples: tuple[Mismatch, ...] = ()
    redacted_fields: tuple[str, ...] = Field(
        default=(), description="What was blanked in the samples (the comparison's redactFields); () = nothing."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def exact_match_rate(self) -> float | None:
        return _rate(self.exact_matches, self.paired)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def within_tolerance_rate(self) -> float | None:
        return _rate(self.within_tolerance, self.paired)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label_agreement_rate(self) -> float | None:
        return _rate(self.labels.agreed, self.labels.compared)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def argmax_agreement_rate(self) -> float | None:
        return _rate(self.labels.argmax_agreed, self.labels.argmax_compared)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mean_top_k_overlap(self) -> float | None:
        compared = self.labels.top_k_compared
        return self.labels.top_k_overlap_sum / compared if compared else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def abs_diff_stats(self) -> DistributionStats:
        return self.abs_diff.stats()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rel_diff_stats(self) -> DistributionStats:
        return self.rel_diff.stats()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def most_differing_fields(self) -> tuple[FieldCount, ...]:
        ranked = sorted(self.field_differences.items(), key=lambda item: (-item[1], item[0]))
        return tuple(FieldCount(path=path, pairs=pairs) for path, pairs in ranked[:20])

    @property
    def unpaired_total(self) -> int:
        return sum(self.unpaired.values())

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def mismatches(self) -> int:
        return self.paired - self.within_tolerance

    def assert_accounting(self) -> None:
        """Raise AccountingMismatch unless every record read is accounted for exactly once."""
        problems = []
        outcomes = 2 * self.paired + self.unpaired_total + self.quarantined_total
        if self.records_read != outcomes:
            problems.append(
                f"records_read {self.records_read} != 2*paired {2 * self.paired} + unpaired {self.unpaired_total}"
                f" + quarantined {self.quarantined_total}"
            )
        if sum(self.paired_by.values()) != self.paired:
            problems.append(f"paired_by {self.paired_by} does not add up to paired {self.paired}")
        if not 0 <= self.exact_matches <= self.within_tolerance <= self.paired:
            problems.append(f"exact {self.exact_matches} <= within {self.within_tolerance} <= paired {self.paired}")
        if self.abs_diff.count > self.paired or self.rel_diff.count > self.paired:
            problems.append("more differences measured than pairs compared")
        if self.labels.agreed > self.labels.compared or self.labels.compared > self.paired:
            problems.append(f"labels {self.labels} inconsistent with {self.paired} pairs")
        if problems:
            raise AccountingMismatch(f"{self.shadow_test} {self.window_start.isoformat()}: " + "; ".join(problems))

    @classmethod
    def merge(cls, summaries: Iterable[DiffSummary], mismatch_samples: int = 20, quarantine_samples: int = 20) -> Self:
        """One summary of many (windows of one test, or parts of one window): counts add, histograms merge,
        samples keep the K smallest priorities. Merging is associative and commutative."""
        parts = list(summaries)
        if not parts:
            raise ValueError("nothing to merge")
        first = parts[0]
        identity = (first.shadow_test, first.endpoint, first.production_variant, first.shadow_variant)
        for part in parts[1:]:
            if (part.shadow_test, part.endpoint, part.production_variant, part.shadow_variant) != identity:
                raise ValueError(f"cannot merge summaries of different tests: {identity} and {part.shadow_test}")
        paired_by: dict[str, int] = {}
        unpaired: dict[str, int] = {}
        quarantined: dict[str, int] = {}
        fields: dict[str, int] = {}
        abs_diff, rel_diff = LogHistogram(), LogHistogram()
        labels = LabelStats()
        for part in parts:
            _add_counts(paired_by, part.paired_by)
            _add_counts(unpaired, part.unpaired)
            _add_counts(quarantined, part.quarantined)
            _add_counts(fields, part.field_differences)
            abs_diff.merge(part.abs_diff.histogram())
            rel_diff.merge(part.rel_diff.histogram())
            labels = labels + part.labels
        samples = nsmallest(mismatch_samples, (m for part in parts for m in part.mismatch_samples), key=_priority)
        quarantine = sorted(
            (q for part in parts for q in part.quarantine_samples), key=lambda q: (q.key, q.line, q.reason)
        )[:quarantine_samples]
        return cls.model_validate(
            {
                "shadow_test": first.shadow_test,
                "endpoint": first.endpoint,
                "production_variant": first.production_variant,
                "shadow_variant": first.shadow_variant,
                "window_start": min(part.window_start for part in parts),
                "window_end": max(part.window_end for part in parts),
                "windows": sum(part.windows for part in parts),
                "records_read": sum(part.records_read for part in parts),
                "paired": sum(part.paired for part in parts),
                "paired_by": paired_by,
                "unpaired": unpaired,
                "quarantined": quarantined,
                "quarantine_samples": quarantine,
                "late_records": sum(part.late_records for part in parts),
                "exact_matches": sum(part.exact_matches for part in parts),
                "within_tolerance": sum(part.within_tolerance for part in parts),
                "abs_diff": HistogramData.of(abs_diff),
                "rel_diff": HistogramData.of(rel_diff),
                "labels": labels,
                "field_differences": cap_field_counts(fields, FIELD_COUNT_LIMIT),
                "mismatch_samples": samples,
                "redacted_fields": tuple(sorted({path for part in parts for path in part.redacted_fields})),
            }
        )


def _priority(mismatch: Mismatch) -> int:
    return mismatch.priority


class ObjectResult(CamelModel):
    """What reading one capture object did. Quarantined lines are listed (up to a cap) so the adapter can
    store them beside the object; the counts are always complete."""

    key: str
    etag: str
    side: Side
    status: Literal["processed", "duplicate"]
    records_read: int = 0
    paired: int = Field(default=0, description="Lines of this object that completed a pair now.")
    pending: int = Field(default=0, description="Lines of this object now waiting for their twin.")
    unpaired: dict[UnpairedReason, int] = Field(default_factory=dict)
    quarantined: int = 0
    quarantine: tuple[QuarantinedLine, ...] = ()
    quarantine_omitted: int = Field(default=0, description="Quarantined lines beyond the listing cap.")
    problems: tuple[str, ...] = Field(default=(), description="Object-level trouble, e.g. a truncated gzip stream.")
    windows: tuple[datetime, ...] = Field(default=(), description="Start of every window this object touched.")

    def assert_accounting(self) -> None:
        accounted = self.paired + self.pending + sum(self.unpaired.values()) + self.quarantined
        if self.records_read != accounted:
            raise AccountingMismatch(
                f"{self.key}: records_read {self.records_read} != paired {self.paired} + pending {self.pending}"
                f" + unpaired {sum(self.unpaired.values())} + quarantined {self.quarantined}"
            )
        if len(self.quarantine) + self.quarantine_omitted != self.quarantined:
            raise AccountingMismatch(f"{self.key}: {len(self.quarantine)} listed + omitted != {self.quarantined}")


class Accounting(CamelModel):
    """The engine's running ledger for one test: the reader's count against every outcome so far."""

    records_read: int
    paired_halves: int
    unpaired: int
    quarantined: int
    pending: int

    def assert_balanced(self) -> None:
        accounted = self.paired_halves + self.unpaired + self.quarantined + self.pending
        if self.records_read != accounted:
            raise AccountingMismatch(
                f"records_read {self.records_read} != paired halves {self.paired_halves} + unpaired {self.unpaired}"
                f" + quarantined {self.quarantined} + pending {self.pending}"
            )


MetricUnitName = Literal["Count", "None", "Percent"]


class DiffMetric(CamelModel):
    name: str
    unit: MetricUnitName
    value: float


class DiffMetrics(CamelModel):
    """The EMF metrics of one summary: the handler publishes them with Powertools (add_dimension/add_metric)."""

    namespace: str
    dimensions: dict[str, str]
    metrics: tuple[DiffMetric, ...]

    def emf(self, timestamp_ms: int) -> dict[str, JsonValue]:
        """The same metrics as one CloudWatch Embedded Metric Format document (for tests and log lines)."""
        document: dict[str, JsonValue] = {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [list(self.dimensions)],
                        "Metrics": [{"Name": metric.name, "Unit": metric.unit} for metric in self.metrics],
                    }
                ],
            },
        }
        document.update(self.dimensions)
        document.update({metric.name: metric.value for metric in self.metrics})
        return document


# ------------------------------------------------------------------------------------ the pipeline


class CaptureObjectRef(CamelModel):
    """One capture object to diff: from an S3 notification, or an item of the backfill's S3 listing."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    key: str = Field(min_length=1, validation_alias=AliasChoices("key", "Key"))
    etag: str | None = Field(default=None, validation_alias=AliasChoices("etag", "eTag", "ETag", "Etag"))
    size: int | None = Field(default=None, validation_alias=AliasChoices("size", "Size"))


ObjectStatus = Literal["processed", "duplicate", "rejected", "missing", "failed"]


class ObjectOutcome(CamelModel):
    """What the pipeline did with one capture object: `failed` ones are retried (batch item failures)."""

    key: str
    status: ObjectStatus
    test_id: str | None = None
    reason: str = ""
    records_read: int = 0
    paired: int = 0
    quarantined: int = 0


class ClosedWindow(CamelModel):
    """A closed window in the outbox: its file is (re)written by every commit cycle until it leaves; its
    metrics are emitted by the writer that claims it, which removes it only after emitting them."""

    sequence: int = Field(ge=1, description="The state commit that closed it: names its file, idempotently.")
    summary: DiffSummary
    metrics_pending: bool = Field(default=False, description="Its EMF document is still to be emitted.")
    claimed_by: str | None = Field(default=None, description="The commit attempt that emits its metrics.")
    claimed_until: datetime | None = Field(
        default=None, description="After this, another writer may claim it (the claimant crashed)."
    )


class PipelineLedger(CamelModel):
    """The pipeline's part of a test's state, committed with the engine's manifest in one object."""

    sequence: int = 0
    closed: DiffSummary | None = Field(default=None, description="Every window closed so far, merged.")
    outbox: tuple[ClosedWindow, ...] = Field(
        default=(), description="Closed windows whose file or metrics may not be published yet."
    )
    ended_at: datetime | None = None
    final: bool = False
    objects_processed: int = 0
    objects_duplicate: int = 0
    objects_rejected: int = 0


class RunningDiffSummary(DiffSummary):
    """diffs/<test>/summary.json: the closed windows and the open ones merged, rewritten after every commit.
    Pairs in open windows are final; halves still waiting for a twin are `pending`, so for a test:
    records_read + pending == every record read so far."""

    pending: int = 0
    final: bool = Field(default=False, description="Every window closed after the test ended: nothing will change.")
    sequence: int = 0
    updated_at: datetime
    open_windows: int = 0
    objects_processed: int = 0
    objects_duplicate: int = 0
    objects_rejected: int = 0
