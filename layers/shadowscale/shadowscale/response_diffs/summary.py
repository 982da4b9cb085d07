"""The running tally of one window: what the engine adds per pair, per unpaired half, per bad line.

Mutable and model-free because it is updated once per record; it becomes a DiffSummary (the boundary
model) when its window closes, and a plain JSON-able dict when its window is saved with the state.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

from shadowscale.response_diffs.comparators import Verdict
from shadowscale.response_diffs.histogram import LogHistogram
from shadowscale.response_diffs.models import (
    FIELD_COUNT_LIMIT,
    OTHER_FIELDS,
    DiffSummary,
    HistogramData,
    LabelStats,
    Mismatch,
    QuarantinedLine,
)
from shadowscale.shared.diff_contract import DiffConfig


class WindowTally:
    __slots__ = (
        "abs_diff",
        "argmax_agreed",
        "argmax_compared",
        "exact",
        "fields",
        "labels_agreed",
        "labels_compared",
        "late_records",
        "paired",
        "paired_by",
        "quarantine_samples",
        "quarantined",
        "records_read",
        "rel_diff",
        "samples",
        "top_k_compared",
        "top_k_overlap_sum",
        "unpaired",
        "within",
    )

    def __init__(self) -> None:
        self.records_read = 0
        self.paired = 0
        self.paired_by: dict[str, int] = {}
        self.unpaired: dict[str, int] = {}
        self.quarantined: dict[str, int] = {}
        self.quarantine_samples: list[tuple[str, int, str, str]] = []
        self.late_records = 0
        self.exact = 0
        self.within = 0
        self.abs_diff = LogHistogram()
        self.rel_diff = LogHistogram()
        self.labels_compared = 0
        self.labels_agreed = 0
        self.argmax_compared = 0
        self.argmax_agreed = 0
        self.top_k_compared = 0
        self.top_k_overlap_sum = 0.0
        self.fields: dict[str, int] = {}
        # A max-heap of the K smallest-priority mismatches seen: (-priority, production location, sample).
        # The location breaks ties, so two samples themselves are never compared.
        self.samples: list[tuple[int, str, dict[str, Any]]] = []

    # ------------------------------------------------------------------------------------ adding

    def add_pair(self, paired_by: str, verdict: Verdict) -> None:
        self.records_read += 2
        self.paired += 1
        counts = self.paired_by
        counts[paired_by] = counts.get(paired_by, 0) + 1
        exact, within, abs_diff, rel_diff, fields, label_agrees, argmax_agrees, top_k_overlap = verdict
        if within:
            self.within += 1
            if exact:
                self.exact += 1
        if abs_diff is not None:
            if abs_diff == 0.0 and rel_diff == 0.0:
                self.abs_diff.zeros += 1  # the common case, inlined: see LogHistogram.add
                self.abs_diff.count += 1
                self.rel_diff.zeros += 1
                self.rel_diff.count += 1
            else:
                self.abs_diff.add(abs_diff)
                if rel_diff is not None:
                    self.rel_diff.add(rel_diff)
        if label_agrees is not None:
            self.labels_compared += 1
            self.labels_agreed += label_agrees
        if argmax_agrees is not None:
            self.argmax_compared += 1
            self.argmax_agreed += argmax_agrees
        if top_k_overlap is not None:
            self.top_k_compared += 1
            self.top_k_overlap_sum += top_k_overlap
        if fields:
            counted = self.fields
            for path in dict.fromkeys(fields):  # a pair counts once per path
                if path not in counted and len(counted) >= FIELD_COUNT_LIMIT - 1:
                    path = OTHER_FIELDS
                counted[path] = counted.get(path, 0) + 1

    def add_pairs(self, paired_by: str, verdict: Verdict, count: int) -> None:
        """`count` pairs with the same verdict (identical answers, counted in bulk)."""
        exact, within, abs_diff, rel_diff, fields, label_agrees, argmax_agrees, top_k_overlap = verdict
        if (
            count == 1
            or fields
            or (abs_diff or 0.0) != 0.0
            or (rel_diff or 0.0) != 0.0
            or top_k_overlap not in (None, 1.0)
        ):
            for _ in range(count):
                self.add_pair(paired_by, verdict)
            return
        # Exact-match verdicts: every count below grows by `count`, every difference is a zero.
        self.records_read += 2 * count
        self.paired += count
        self.paired_by[paired_by] = self.paired_by.get(paired_by, 0) + count
        self.within += count * within
        self.exact += count * (within and exact)
        if abs_diff is not None:
            self.abs_diff.count += count
            self.abs_diff.zeros += count
        if rel_diff is not None:
            self.rel_diff.count += count
            self.rel_diff.zeros += count
        if label_agrees is not None:
            self.labels_compared += count
            self.labels_agreed += count * label_agrees
        if argmax_agrees is not None:
            self.argmax_compared += count
            self.argmax_agreed += count * argmax_agrees
        if top_k_overlap is not None:
            self.top_k_compared += count
            self.top_k_overlap_sum += count * top_k_overlap

    def add_unpaired(self, reason: str, how_many: int = 1) -> None:
        self.records_read += how_many
        self.unpaired[reason] = self.unpaired.get(reason, 0) + how_many

    def add_quarantined(self, key: str, line: int, reason: str, detail: str, keep: int) -> None:
        self.records_read += 1
        self.quarantined[reason] = self.quarantined.get(reason, 0) + 1
        if len(self.quarantine_samples) < keep:
            self.quarantine_samples.append((key, line, reason, detail))

    def wants_sample(self, priority: int, keep: int) -> bool:
        """Whether a mismatch with this priority would be kept (so that only those are rendered)."""
        return len(self.samples) < keep or (keep > 0 and priority < -self.samples[0][0])

    def add_sample(self, priority: int, sample: dict[str, Any], keep: int) -> None:
        entry = (-priority, _location(sample), sample)
        if len(self.samples) < keep:
            heapq.heappush(self.samples, entry)
        elif keep and priority < -self.samples[0][0]:
            heapq.heapreplace(self.samples, entry)

    @property
    def is_empty(self) -> bool:
        return self.records_read == 0 and self.late_records == 0

    # ---------------------------------------------------------------------------------- leaving

    def to_summary(self, config: DiffConfig, start_ms: int, end_ms: int) -> DiffSummary:
        samples = sorted((sample for _, _, sample in self.samples), key=lambda sample: sample["priority"])
        return DiffSummary(
            shadow_test=config.shadow_test,
            endpoint=config.endpoint,
            production_variant=config.production_variant,
            shadow_variant=config.shadow_variant,
            window_start=datetime.fromtimestamp(start_ms / 1000, UTC),
            window_end=datetime.fromtimestamp(end_ms / 1000, UTC),
            records_read=self.records_read,
            paired=self.paired,
            paired_by=self.paired_by,
            unpaired=self.unpaired,
            quarantined=self.quarantined,
            quarantine_samples=tuple(
                QuarantinedLine(key=key, line=line, reason=reason, detail=detail)
                for key, line, reason, detail in self.quarantine_samples
            ),
            late_records=self.late_records,
            exact_matches=self.exact,
            within_tolerance=self.within,
            abs_diff=HistogramData.of(self.abs_diff),
            rel_diff=HistogramData.of(self.rel_diff),
            labels=LabelStats(
                compared=self.labels_compared,
                agreed=self.labels_agreed,
                argmax_compared=self.argmax_compared,
                argmax_agreed=self.argmax_agreed,
                top_k_compared=self.top_k_compared,
                top_k_overlap_sum=self.top_k_overlap_sum,
            ),
            field_differences=self.fields,
            mismatch_samples=tuple(Mismatch.model_validate(sample) for sample in samples),
            redacted_fields=config.redact_fields,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "records_read": self.records_read,
            "paired": self.paired,
            "paired_by": self.paired_by,
            "unpaired": self.unpaired,
            "quarantined": self.quarantined,
            "quarantine_samples": self.quarantine_samples,
            "late_records": self.late_records,
            "exact": self.exact,
            "within": self.within,
            "abs_diff": _histogram_state(self.abs_diff),
            "rel_diff": _histogram_state(self.rel_diff),
            "labels": [
                self.labels_compared,
                self.labels_agreed,
                self.argmax_compared,
                self.argmax_agreed,
                self.top_k_compared,
                self.top_k_overlap_sum,
            ],
            "fields": self.fields,
            "samples": [sample for _, _, sample in self.samples],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WindowTally:
        tally = cls()
        tally.records_read = state["records_read"]
        tally.paired = state["paired"]
        tally.paired_by = state["paired_by"]
        tally.unpaired = state["unpaired"]
        tally.quarantined = state["quarantined"]
        tally.quarantine_samples = [tuple(sample) for sample in state["quarantine_samples"]]
        tally.late_records = state["late_records"]
        tally.exact = state["exact"]
        tally.within = state["within"]
        tally.abs_diff = _histogram_from_state(state["abs_diff"])
        tally.rel_diff = _histogram_from_state(state["rel_diff"])
        (
            tally.labels_compared,
            tally.labels_agreed,
            tally.argmax_compared,
            tally.argmax_agreed,
            tally.top_k_compared,
            tally.top_k_overlap_sum,
        ) = state["labels"]
        tally.fields = state["fields"]
        tally.samples = [(-sample["priority"], _location(sample), sample) for sample in state["samples"]]
        heapq.heapify(tally.samples)
        return tally


def _location(sample: dict[str, Any]) -> str:
    return f"{sample['production']['key']}#{sample['production']['line']}"


def _histogram_state(histogram: LogHistogram) -> list[Any]:
    # orjson writes dict keys as strings only: buckets travel as [bucket, count] pairs.
    return [
        histogram.count,
        histogram.zeros,
        histogram.total,
        histogram.smallest,
        histogram.largest,
        list(histogram.buckets.items()),
    ]


def _histogram_from_state(state: list[Any]) -> LogHistogram:
    count, zeros, total, smallest, largest, buckets = state
    return LogHistogram(
        count=count, zeros=zeros, total=total, smallest=smallest, largest=largest, buckets=dict(map(tuple, buckets))
    )
