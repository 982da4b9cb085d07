"""Interval estimates the shadow test's gates decide on: pure Python (the layer carries no numpy).

Each gate turns its evidence into an `Interval` (estimate, lower and upper bound, confidence, method) and
`judge` compares the interval, not the point, with the gate's threshold: pass when the whole interval is on
the good side, fail when it is wholly on the bad side, inconclusive otherwise.

Two kinds of interval:
- fixed-sample intervals (Wilson, Newcombe, the sign-test interval of a median), valid when looked at once:
  the decision at the end of the test;
- confidence sequences (Robbins' beta-binomial mixture, and quantile sequences built on it), valid at every
  look at once: the early-stopping checks at each evaluation of a ramp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal


def finite_or_none(value: float, digits: int) -> float | None:
    """`value` rounded for a report, or None where it is not finite (an unbounded side of an interval)."""
    return round(value, digits) if math.isfinite(value) else None


Judgement = Literal["pass", "fail", "inconclusive"]

WILSON = "Wilson"
NEWCOMBE = "Newcombe"
SIGN_TEST = "sign-test"
BETA_BINOMIAL_CS = "beta-binomial CS"
DIFFERENCE_CS = "beta-binomial CS difference"
QUANTILE_CS = "quantile CS"


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided bounds; an unbounded side is +/-inf."""

    estimate: float
    lower: float
    upper: float
    confidence: float
    method: str


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return 1 - confidence


def _z(confidence: float) -> float:
    """The two-sided standard normal quantile: 1.959964 at 95 %."""
    alpha = _check_confidence(confidence)
    return NormalDist().inv_cdf(1 - alpha / 2)


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a binomial rate (Wilson 1927, "Probable inference, the law of succession, and
    statistical inference", JASA 22; recommended by Brown, Cai & DasGupta 2001, Statist. Sci. 16).

    Unlike the textbook p +/- z*sqrt(p(1-p)/n), it keeps its coverage near 0 and 1, where agreement rates live:
    998 of 1,000 gives [0.9928, 0.9995], not an upper bound above 1."""
    _check_counts(successes, trials)
    z = _z(confidence)
    if trials == 0:
        return Interval(math.nan, 0.0, 1.0, confidence, WILSON)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; rounding must not leave it a hair away.
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(p, lower, upper, confidence, WILSON)


def newcombe_difference(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, confidence: float = 0.95
) -> Interval:
    """Interval of the difference of two independent rates a - b by Newcombe's hybrid score method (method 10
    of Newcombe 1998, "Interval estimation for the difference between independent proportions: comparison of
    eleven methods", Statistics in Medicine 17): each rate's Wilson interval, combined."""
    a = wilson(successes_a, trials_a, confidence)
    b = wilson(successes_b, trials_b, confidence)
    if trials_a == 0 or trials_b == 0:
        return Interval(math.nan, -1.0, 1.0, confidence, NEWCOMBE)
    difference = a.estimate - b.estimate
    lower = difference - math.sqrt((a.estimate - a.lower) ** 2 + (b.upper - b.estimate) ** 2)
    upper = difference + math.sqrt((a.upper - a.estimate) ** 2 + (b.estimate - b.lower) ** 2)
    return Interval(difference, max(-1.0, lower), min(1.0, upper), confidence, NEWCOMBE)


def _sign_test_rank(n: int, alpha: float) -> int:
    """The largest k with P(B <= k - 1) <= alpha/2 for B ~ Binomial(n, 1/2), at most n // 2 (0 if none); the
    terms are summed in log space so that n in the thousands does not overflow."""
    cumulative, rank = 0.0, 0
    log_half_n = n * math.log(0.5)
    for j in range(n // 2):
        cumulative += math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + log_half_n)
        if cumulative > alpha / 2:
            break
        rank = j + 1
    return rank


def _order_statistic(ordered: Sequence[float], rank: int) -> float:
    """The rank-th smallest (1-based); rank 0 is -inf and n + 1 is +inf."""
    if rank < 1:
        return -math.inf
    if rank > len(ordered):
        return math.inf
    return ordered[rank - 1]


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def median_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Distribution-free interval of a median from order statistics, the inversion of the sign test
    (Thompson 1936, "On confidence ranges for the median and other expectation distributions for populations
    of unknown distribution form", Ann. Math. Statist. 7; Conover 1999, Practical Nonparametric Statistics,
    section 3.2): [x(k), x(n+1-k)] with the largest k whose two tails hold at most alpha.

    It assumes only that the values are independent draws of one continuous distribution; it is exact (at
    least the confidence asked for) for any n, and unbounded when n is too small (fewer than 6 at 95 %)."""
    alpha = _check_confidence(confidence)
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, confidence, SIGN_TEST)
    rank = _sign_test_rank(n, alpha)
    lower = _order_statistic(ordered, rank)
    upper = _order_statistic(ordered, n + 1 - rank)
    return Interval(_median(ordered), lower, upper, confidence, SIGN_TEST)


def ratio_median_interval(pairs: Sequence[tuple[float, float]], confidence: float = 0.95) -> Interval:
    """The median of per-minute shadow/production ratios with its sign-test interval, computed on the log
    ratios (the median commutes with the monotone log, so the bounds are exact ratios). `pairs` are (shadow,
    production) values of the same minute; minutes where either is not positive are left out."""
    logs = [math.log(shadow / production) for shadow, production in pairs if shadow > 0 and production > 0]
    interval = median_interval(logs, confidence)
    return Interval(
        _exp(interval.estimate), _exp(interval.lower), _exp(interval.upper), confidence, f"{SIGN_TEST} median ratio"
    )


def _exp(value: float) -> float:
    if math.isnan(value):
        return math.nan
    if value == math.inf:
        return math.inf
    if value == -math.inf:
        return 0.0
    return math.exp(value)


# --- always-valid intervals (confidence sequences) ---------------------------------------------------------

# Beta(1/2, 1/2), Jeffreys' prior: the mixture that spends its width evenly over rates near 0, 1 and between.
_PRIOR = 0.5


def _log_mixture(successes: int, trials: int, p: float, prior: float) -> float:
    """log of Robbins' beta-binomial mixture martingale at rate p: the Beta(prior, prior) average of the
    likelihood ratio q^S (1-q)^(n-S) / p^S (1-p)^(n-S)."""
    failures = trials - successes
    log_marginal = (
        math.lgamma(prior + successes)
        + math.lgamma(prior + failures)
        - math.lgamma(2 * prior + trials)
        - (2 * math.lgamma(prior) - math.lgamma(2 * prior))
    )
    log_likelihood = 0.0
    if successes:
        log_likelihood += successes * math.log(p) if p > 0 else -math.inf
    if failures:
        log_likelihood += failures * math.log1p(-p) if p < 1 else -math.inf
    return log_marginal - log_likelihood


def _boundary(inside: float, outside: float, excluded: Callable[[float], bool]) -> float:
    """Bisection between a rate in the sequence and one outside it."""
    for _ in range(60):
        middle = (inside + outside) / 2
        if excluded(middle):
            outside = middle
        else:
            inside = middle
    return inside


def bernoulli_sequence(successes: int, trials: int, confidence: float = 0.95, prior: float = _PRIOR) -> Interval:
    """Always-valid interval (confidence sequence) of a Bernoulli rate: the rates p whose beta-binomial mixture
    martingale is still below 1/alpha (Robbins 1970, "Statistical methods related to the law of the iterated
    logarithm", Ann. Math. Statist. 41; Howard, Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric,
    nonasymptotic confidence sequences", Ann. Statist. 49).

    By Ville's inequality the true rate leaves the interval at some look, ever, with probability at most alpha:
    a test may look after every evaluation period and stop at the first decisive one. It is wider than Wilson
    (about sqrt(log n) times), the price of looking as often as one likes."""
    alpha = _check_confidence(confidence)
    _check_counts(successes, trials)
    if trials == 0:
        return Interval(math.nan, 0.0, 1.0, confidence, BETA_BINOMIAL_CS)
    limit = math.log(1 / alpha)
    estimate = successes / trials

    def excluded(p: float) -> bool:
        return _log_mixture(successes, trials, p, prior) >= limit

    # The martingale is convex in p with its minimum (below 0 <= limit) at the estimate.
    lower = 0.0 if not excluded(1e-300) else _boundary(estimate, 0.0, excluded)
    upper = 1.0 if not excluded(1 - 1e-16) else _boundary(estimate, 1.0, excluded)
    return Interval(estimate, lower, upper, confidence, BETA_BINOMIAL_CS)


def difference_sequence(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, confidence: float = 0.95
) -> Interval:
    """Always-valid interval of a - b for two Bernoulli rates: each rate's confidence sequence at half the
    error, combined by the union bound (Bonferroni; Howard et al. 2021 section 6 for differences of means)."""
    alpha = _check_confidence(confidence)
    a = bernoulli_sequence(successes_a, trials_a, 1 - alpha / 2)
    b = bernoulli_sequence(successes_b, trials_b, 1 - alpha / 2)
    estimate = a.estimate - b.estimate if trials_a and trials_b else math.nan
    return Interval(estimate, a.lower - b.upper, a.upper - b.lower, confidence, DIFFERENCE_CS)


def median_sequence(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Always-valid interval of a median from order statistics: m stays in while the confidence sequence of
    P(X <= m), given how many values are <= m, still holds 1/2 (the quantile confidence sequences of Howard &
    Ramdas 2022, "Sequential estimation of quantiles with applications to A/B-testing and best-arm
    identification", Bernoulli 28, built here on the beta-binomial sequence)."""
    limit = math.log(1 / _check_confidence(confidence))
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, confidence, QUANTILE_CS)
    # 1/2 is in the sequence for k of n exactly when the mixture martingale at 1/2 is below 1/alpha.
    holding = [k for k in range(n + 1) if _log_mixture(k, n, 0.5, _PRIOR) < limit]
    # m in [x(k), x(k+1)) has k values at or below it; the kept k form one run (the sequence is convex in k).
    lower = _order_statistic(ordered, holding[0]) if holding else math.inf
    upper = _order_statistic(ordered, holding[-1] + 1) if holding else -math.inf
    return Interval(_median(ordered), lower, upper, confidence, QUANTILE_CS)


def ratio_median_sequence(pairs: Sequence[tuple[float, float]], confidence: float = 0.95) -> Interval:
    """`median_sequence` of per-minute shadow/production ratios (on their logs, as `ratio_median_interval`)."""
    logs = [math.log(shadow / production) for shadow, production in pairs if shadow > 0 and production > 0]
    interval = median_sequence(logs, confidence)
    return Interval(
        _exp(interval.estimate), _exp(interval.lower), _exp(interval.upper), confidence, f"{QUANTILE_CS} median ratio"
    )


def judge(interval: Interval, threshold: float, *, at_least: bool) -> Judgement:
    """The gate's decision from its interval: "at least 0.99" passes when the lower bound is >= 0.99 and fails
    when the upper bound is below it; "at most 1.25" passes when the upper bound is <= 1.25 and fails when the
    lower bound is above it. An interval across the threshold is not evidence either way."""
    if math.isnan(interval.estimate):
        return "inconclusive"
    if at_least:
        if interval.lower >= threshold:
            return "pass"
        return "fail" if interval.upper < threshold else "inconclusive"
    if interval.upper <= threshold:
        return "pass"
    return "fail" if interval.lower > threshold else "inconclusive"
