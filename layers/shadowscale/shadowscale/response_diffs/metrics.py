"""The CloudWatch metrics of a diff summary, as pure data (namespace Shadowscale, dimensions EndpointName
and ShadowTest). The capture-diff handler publishes them with Powertools:

    rendered = diff_metrics(summary)
    for name, value in rendered.dimensions.items(): metrics.add_dimension(name=name, value=value)
    for metric in rendered.metrics: metrics.add_metric(name=metric.name, unit=metric.unit, value=metric.value)

Rates are fractions in [0, 1] (as in the summary and the lifecycle's gates), published with unit None;
a rate with nothing to divide by is left out rather than reported as 0.
"""

from __future__ import annotations

from shadowscale.response_diffs.models import DiffMetric, DiffMetrics, DiffSummary, MetricUnitName

NAMESPACE = "Shadowscale"


def diff_metrics(summary: DiffSummary, namespace: str = NAMESPACE) -> DiffMetrics:
    counts: list[tuple[str, MetricUnitName, float | None]] = [
        ("RecordsRead", "Count", summary.records_read),
        ("PairsCompared", "Count", summary.paired),
        ("UnpairedRecords", "Count", summary.unpaired_total),
        ("QuarantinedRecords", "Count", summary.quarantined_total),
        ("Mismatches", "Count", summary.mismatches),
        ("LateRecords", "Count", summary.late_records),
        ("ExactMatchRate", "None", summary.exact_match_rate),
        ("WithinToleranceRate", "None", summary.within_tolerance_rate),
        ("LabelAgreementRate", "None", summary.label_agreement_rate),
        ("AbsDiffP50", "None", summary.abs_diff_stats.p50),
        ("AbsDiffP95", "None", summary.abs_diff_stats.p95),
        ("AbsDiffMax", "None", summary.abs_diff_stats.max),
        ("RelDiffP95", "None", summary.rel_diff_stats.p95),
    ]
    return DiffMetrics(
        namespace=namespace,
        dimensions={"EndpointName": summary.endpoint, "ShadowTest": summary.shadow_test},
        metrics=tuple(
            DiffMetric(name=name, unit=unit, value=value) for name, unit, value in counts if value is not None
        ),
    )
