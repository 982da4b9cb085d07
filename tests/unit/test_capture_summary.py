"""Window summaries: the histogram, merging, the accounting check, what the lifecycle reads, EMF metrics."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from shadowscale.response_diffs.histogram import HIGHEST_BUCKET, LOWEST_BUCKET, LogHistogram
from shadowscale.response_diffs.metrics import diff_metrics
from shadowscale.response_diffs.models import DiffSummary, HistogramData, ObjectResult
from shadowscale.shared.errors import AccountingMismatch

from tests.capture_factories import PRODUCTION, SHADOW, T0, CaptureRun, diff_config, lines, record


class TestLogHistogram:
    def test_given_many_values_when_quantiles_read_then_within_one_bucket(self) -> None:
        rng = random.Random(3)
        values = [rng.lognormvariate(-8, 2) for _ in range(20_000)]
        histogram = LogHistogram()
        for value in values:
            histogram.add(value)
        ordered = sorted(values)
        for q in (0.5, 0.95, 0.99):
            exact = ordered[int(q * len(ordered)) - 1]
            assert histogram.quantile(q) == pytest.approx(exact, rel=0.07)
        assert histogram.maximum == max(values)
        assert histogram.mean == pytest.approx(sum(values) / len(values))

    def test_given_wild_values_when_added_then_buckets_stay_bounded(self) -> None:
        histogram = LogHistogram()
        for exponent in range(-300, 300):
            histogram.add(10.0**exponent)
        assert len(histogram.buckets) <= HIGHEST_BUCKET - LOWEST_BUCKET + 1
        assert min(histogram.buckets) == LOWEST_BUCKET
        assert max(histogram.buckets) == HIGHEST_BUCKET

    def test_given_zeros_when_quantile_then_zero_until_rank_passes_them(self) -> None:
        histogram = LogHistogram()
        for value in [0.0] * 90 + [1.0] * 10:
            histogram.add(value)
        assert (histogram.quantile(0.5), histogram.quantile(0.95), histogram.minimum) == (0.0, 1.0, 0.0)

    def test_given_two_halves_when_merged_then_same_as_one(self) -> None:
        values = [i / 7 for i in range(100)]
        whole, left, right = LogHistogram(), LogHistogram(), LogHistogram()
        for index, value in enumerate(values):
            whole.add(value)
            (left if index % 2 else right).add(value)
        left.merge(right)
        assert HistogramData.of(left) == HistogramData.of(whole)

    def test_given_empty_when_read_then_nothing(self) -> None:
        assert LogHistogram().quantile(0.5) is None
        assert LogHistogram().maximum is None


def finished_run() -> tuple[CaptureRun, list[DiffSummary]]:
    """Three windows' worth of pairs, a quarter of them disagreeing, some unpaired, one bad line."""
    run = CaptureRun(
        config=diff_config(classification={"labelPath": "label", "scoresPath": "scores"}, mismatchSamples=3)
    )
    production, shadow = [], []
    for i in range(48):
        at = T0 + timedelta(seconds=7 * i)
        scores = [0.25, 0.75]
        theirs = [0.75, 0.25] if i % 4 == 0 else [0.25, 0.75 + 1e-8 * (i % 2)]
        production.append(record(f"e{i}", at, f'{{"label":"b","scores":{scores}}}'.replace(" ", ""), body=str(i)))
        if i % 5:
            label = "a" if i % 4 == 0 else "b"
            shadow.append(record(f"e{i}", at, f'{{"label":"{label}","scores":{theirs}}}'.replace(" ", ""), body=str(i)))
    run.feed(PRODUCTION, T0, lines(*production, b"{broken"))
    run.feed(SHADOW, T0, lines(*shadow))
    run.close()
    return run, run.summaries


class TestSummaries:
    def test_given_windows_when_merged_then_counts_add_and_accounting_holds(self) -> None:
        _, summaries = finished_run()
        assert len(summaries) > 1
        total = DiffSummary.merge(summaries, mismatch_samples=3)
        total.assert_accounting()
        assert total.records_read == 48 + len([i for i in range(48) if i % 5]) + 1
        assert total.paired == 38
        assert total.unpaired == {"no-shadow-twin": 10}
        assert total.quarantined == {"invalid-json": 1}
        assert total.mismatches == len([i for i in range(48) if i % 5 and i % 4 == 0])
        assert total.label_agreement_rate == pytest.approx(1 - total.mismatches / 38)
        assert total.windows == len(summaries)

    def test_given_any_merge_order_when_merged_then_same_summary(self) -> None:
        _, summaries = finished_run()
        forwards = DiffSummary.merge(summaries, mismatch_samples=3)
        backwards = DiffSummary.merge(
            [DiffSummary.merge(summaries[1:][::-1], mismatch_samples=3), summaries[0]], mismatch_samples=3
        )
        assert forwards.model_dump(exclude={"rel_diff", "abs_diff"}) == backwards.model_dump(
            exclude={"rel_diff", "abs_diff"}
        )
        assert forwards.abs_diff.histogram().quantile(0.95) == backwards.abs_diff.histogram().quantile(0.95)

    def test_given_mismatch_samples_when_merged_then_smallest_priorities_kept_and_redacted_examples(self) -> None:
        _, summaries = finished_run()
        everything = sorted(m.priority for s in summaries for m in s.mismatch_samples)
        merged = DiffSummary.merge(summaries, mismatch_samples=3)
        assert [m.priority for m in merged.mismatch_samples] == everything[:3]
        sample = merged.mismatch_samples[0]
        assert sample.production.key.split("/")[3] == PRODUCTION
        assert sample.shadow.line >= 1
        assert "label" in sample.fields
        assert sample.input.isdigit()

    def test_given_broken_numbers_when_checked_then_accounting_mismatch(self) -> None:
        _, summaries = finished_run()
        broken = summaries[0].model_copy(update={"records_read": summaries[0].records_read + 1})
        with pytest.raises(AccountingMismatch):
            broken.assert_accounting()
        with pytest.raises(AccountingMismatch):
            ObjectResult(
                key="k", etag="e", side="shadow", status="processed", records_read=2, paired=1
            ).assert_accounting()

    def test_given_different_tests_when_merged_then_refused(self) -> None:
        _, summaries = finished_run()
        other = summaries[0].model_copy(update={"shadow_test": "another"})
        with pytest.raises(ValueError, match="different tests"):
            DiffSummary.merge([summaries[0], other])

    def test_given_summary_json_when_lifecycle_reads_it_then_camel_case_keys(self) -> None:
        _, summaries = finished_run()
        document = DiffSummary.merge(summaries).model_dump(mode="json", by_alias=True)
        assert {"paired", "exactMatchRate", "withinToleranceRate", "mostDifferingFields", "absDiffStats"} <= set(
            document
        )
        assert DiffSummary.model_validate(document) == DiffSummary.merge(summaries)

    def test_given_summary_when_rendered_as_emf_then_namespace_dimensions_and_rates(self) -> None:
        _, summaries = finished_run()
        total = DiffSummary.merge(summaries)
        rendered = diff_metrics(total)
        assert rendered.namespace == "Shadowscale"
        assert rendered.dimensions == {"EndpointName": "fraud-detector", "ShadowTest": "test-1"}
        values = {metric.name: metric.value for metric in rendered.metrics}
        assert values["PairsCompared"] == 38
        assert values["WithinToleranceRate"] == total.within_tolerance_rate
        emf = rendered.emf(1_772_358_000_000)
        aws = emf["_aws"]
        assert isinstance(aws, dict)
        directives = aws["CloudWatchMetrics"]
        assert isinstance(directives, list)
        directive = directives[0]
        assert isinstance(directive, dict)
        assert directive["Dimensions"] == [["EndpointName", "ShadowTest"]]
        assert emf["WithinToleranceRate"] == total.within_tolerance_rate
        assert emf["ShadowTest"] == "test-1"

    def test_given_nothing_compared_when_rendered_then_rates_left_out(self) -> None:
        run = CaptureRun()
        run.feed(PRODUCTION, T0, lines(record("alone", T0)))
        names = {metric.name for metric in diff_metrics(run.close()).metrics}
        assert "UnpairedRecords" in names
        assert "WithinToleranceRate" not in names
