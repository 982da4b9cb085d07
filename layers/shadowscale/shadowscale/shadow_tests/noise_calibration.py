"""Noise calibration (A/A): the candidate judged against the production model's disagreement with itself.

A model that is not deterministic (GPU kernels, sampling, a race in feature lookups) disagrees with a copy of
itself; a plain "at least 99 % agreement" gate then rejects a candidate that is exactly as good as production.
So a calibrated test first shadows production with a copy of the production model and records the noise
floor (`NoiseFloor`): how often the two answered differently, and how the copy's latency compares per minute.
The candidate's gates are then judged relative to that floor:

- agreement: the candidate's disagreement rate minus the noise disagreement rate (the disagreement *in
  excess* of the noise), with Newcombe's interval of the difference of the two proportions at
  gates.confidence (a confidence sequence on the early looks), against the tolerance 1 - minRate: pass when
  the upper bound is at most the tolerance, fail when the lower bound is above it;
- latency: each per-minute candidate/production ratio is divided by the A/A median ratio at the same
  percentile (what the shadow's own placement costs, measured on the production model), and the median of
  those with its sign-test interval goes against the configured ratio as before.

Pure functions: the task steps (lifecycle.py) read the metrics and diff summaries, config_plans.py builds the
gates from these intervals.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shadowscale.shadow_tests import statistics
from shadowscale.shadow_tests.models import (
    AgreementStats,
    Evaluation,
    MinuteLatencies,
    NoiseFloor,
    NoiseLatency,
    ShadowTestInput,
    VariantStats,
)
from shadowscale.shadow_tests.statistics import Interval
from shadowscale.shadow_tests.time_limits import seconds_until

PERCENTILES = ("p50", "p90", "p99")


def mismatches(rate: float | None, paired: int) -> int | None:
    """Pairs that differed, from the summary's agreement rate over `paired` (whole numbers behind the rate)."""
    if rate is None:
        return None
    return paired - max(0, min(paired, round(rate * paired)))


def noise_floor(
    *,
    variant: str,
    started_at: datetime,
    at: datetime,
    copy: VariantStats,
    agreement: AgreementStats | None,
    latencies: MinuteLatencies | None,
    confidence: float,
    min_pairs: int,
) -> NoiseFloor:
    """What the A/A phase measured so far: the copy's disagreements with production, and per percentile the
    median per-minute copy/production latency ratio with its sign-test interval."""
    paired = agreement.paired if agreement is not None else 0
    minutes = latencies or MinuteLatencies()
    latency = []
    for percentile in PERCENTILES:
        usable = [(a, b) for a, b in getattr(minutes, percentile) if a > 0 and b > 0]
        if not usable:
            latency.append(NoiseLatency(percentile=percentile, minutes=0))
            continue
        interval = statistics.ratio_median_interval(usable, confidence)
        latency.append(
            NoiseLatency(
                percentile=percentile,
                minutes=len(usable),
                median=statistics.finite_or_none(interval.estimate, 6),
                lower=statistics.finite_or_none(interval.lower, 6),
                upper=statistics.finite_or_none(interval.upper, 6),
            )
        )
    return NoiseFloor(
        variant=variant,
        started_at=started_at,
        at=at,
        invocations=copy.invocations,
        paired=paired,
        exact_mismatches=mismatches(agreement.exact_match_rate, paired) if agreement else None,
        tolerance_mismatches=mismatches(agreement.within_tolerance_rate, paired) if agreement else None,
        latency=tuple(latency),
        min_pairs=min_pairs,
    )


def excess_disagreement(
    candidate_mismatches: int,
    candidate_pairs: int,
    noise_mismatches: int,
    noise_pairs: int,
    confidence: float,
    *,
    sequential: bool = False,
) -> Interval:
    """The candidate's disagreement rate minus the noise floor's, with its interval: Newcombe's hybrid score
    interval for a decision looked at once, the beta-binomial confidence sequence of a difference for the early
    looks (both in statistics.py). The two samples are independent: different requests, different phases."""
    method = statistics.difference_sequence if sequential else statistics.newcombe_difference
    return method(candidate_mismatches, candidate_pairs, noise_mismatches, noise_pairs, confidence)


def noise_mismatches(noise: NoiseFloor, rate_attribute: str) -> int | None:
    """The floor's mismatch count for the agreement rate `rate_attribute` of AgreementStats."""
    if rate_attribute == "exact_match_rate":
        return noise.exact_mismatches
    return noise.tolerance_mismatches


def relative_minutes(minutes: tuple[tuple[float, float], ...], noise_median: float) -> tuple[tuple[float, float], ...]:
    """Per-minute (shadow, production) latencies with each shadow value divided by the A/A median ratio, so
    that their ratios are the candidate's relative to the noise."""
    return tuple((shadow / noise_median, production) for shadow, production in minutes)


def candidate_phase(progress: Evaluation | None, now: datetime) -> tuple[bool, NoiseFloor | None, datetime | None]:
    """For an evaluation of the candidate after `progress`: (whether its phase starts now, the noise floor it is
    judged against, when its phase began). It starts at the first evaluation, or the first after the A/A phase."""
    if progress is None:
        return True, None, None
    if progress.phase == "noise":
        return True, progress.noise, now
    return False, progress.noise, progress.candidate_started_at


def next_in_noise_phase(request: ShadowTestInput, *, started_at: datetime, now: datetime) -> tuple[bool, int]:
    """(whether the A/A bake is over, seconds until the next look): the copy bakes calibration.bakeMinutes,
    looked at every evaluation period."""
    assert request.calibration is not None
    end = started_at + timedelta(minutes=request.calibration.bake_minutes)
    if now >= end:
        return True, 1
    period = request.evaluation_period_minutes * 60
    return False, seconds_until(now, end, period)
