"""The gates' interval estimates: known values from the papers, and coverage on seeded simulated data."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from shadowscale.shadow_tests import statistics
from shadowscale.shadow_tests.statistics import Interval, judge

# --- known values -----------------------------------------------------------------------------------------


def test_wilson_matches_newcombes_worked_example() -> None:
    # GIVEN 81 successes of 263 (Newcombe 1998, Statistics in Medicine 17, table II)
    # WHEN the 95 % Wilson interval is computed
    interval = statistics.wilson(81, 263)
    # THEN it is the published [0.2553, 0.3662] around 0.3080
    assert interval.estimate == pytest.approx(0.3080, abs=5e-5)
    assert interval.lower == pytest.approx(0.2553, abs=5e-5)
    assert interval.upper == pytest.approx(0.3662, abs=5e-5)
    assert (interval.confidence, interval.method) == (0.95, "Wilson")


@pytest.mark.parametrize(
    ("successes", "trials", "lower", "upper"),
    [
        (0, 10, 0.0, 0.2775),  # Newcombe 1998 table II: 0/10
        (1, 29, 0.0061, 0.1718),  # 1/29
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_keeps_its_bounds_inside_zero_and_one(successes: int, trials: int, lower: float, upper: float) -> None:
    interval = statistics.wilson(successes, trials)
    assert interval.lower == pytest.approx(lower, abs=5e-5)
    assert interval.upper == pytest.approx(upper, abs=5e-5)


def test_a_higher_confidence_widens_the_interval() -> None:
    narrow, wide = statistics.wilson(990, 1000, 0.90), statistics.wilson(990, 1000, 0.99)
    assert wide.lower < narrow.lower < 0.99 < narrow.upper < wide.upper


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
def test_a_confidence_outside_zero_and_one_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        statistics.wilson(1, 2, confidence)


def test_newcombe_difference_matches_the_papers_example() -> None:
    # GIVEN 56/70 against 48/80 (Newcombe 1998, example (a)), WHEN the hybrid score interval is computed
    interval = statistics.newcombe_difference(56, 70, 48, 80)
    # THEN it is the published [0.0524, 0.3339] around 0.2
    assert interval.estimate == pytest.approx(0.2)
    assert interval.lower == pytest.approx(0.0524, abs=5e-5)
    assert interval.upper == pytest.approx(0.3339, abs=5e-5)


def test_newcombe_difference_with_no_events_on_either_side_still_has_width() -> None:
    # 0/10 - 0/10 (Newcombe 1998, example (h)): [-0.2775, 0.2775]
    interval = statistics.newcombe_difference(0, 10, 0, 10)
    assert interval.lower == pytest.approx(-0.2775, abs=5e-5)
    assert interval.upper == pytest.approx(0.2775, abs=5e-5)


def test_the_sign_test_interval_of_a_median_takes_the_textbook_order_statistics() -> None:
    # GIVEN 10 values: at 95 % the interval is [x(2), x(9)] (P(B <= 1) = 0.0107 <= 0.025 < P(B <= 2))
    interval = statistics.median_interval([float(value) for value in range(10, 0, -1)])
    assert (interval.estimate, interval.lower, interval.upper) == (5.5, 2.0, 9.0)
    # AND 5 values cannot bound a median at 95 % (2 * 0.5^5 = 0.0625 > 0.05)
    few = statistics.median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (few.lower, few.upper) == (-math.inf, math.inf)


def test_the_ratio_interval_is_the_median_ratio_with_exact_bounds() -> None:
    # GIVEN 20 minutes whose shadow is 1.1x, 1.2x, ... production
    pairs = [(10.0 * (1 + step / 10), 10.0) for step in range(1, 21)]
    interval = statistics.ratio_median_interval(pairs)
    # THEN the median ratio is 2.05 and the bounds are ratios seen (n=20: x(6), x(15))
    assert interval.estimate == pytest.approx(math.sqrt(2.0 * 2.1))  # geometric middle of the two central logs
    assert interval.lower == pytest.approx(1.6)
    assert interval.upper == pytest.approx(2.5)
    # AND minutes where a variant has no latency are left out
    assert statistics.ratio_median_interval([(0.0, 10.0), (5.0, -1.0)]).lower == 0.0


def test_the_bernoulli_sequence_contains_the_estimate_and_is_wider_than_wilson() -> None:
    sequence, once = statistics.bernoulli_sequence(990, 1000), statistics.wilson(990, 1000)
    assert sequence.lower < once.lower < 0.99 < once.upper < sequence.upper
    assert sequence.method == "beta-binomial CS"
    # Its boundary is where the mixture martingale reaches 1/alpha = 20.
    boundary = statistics._log_mixture(990, 1000, sequence.lower, 0.5)
    assert boundary == pytest.approx(math.log(20), abs=1e-6)


def test_the_bernoulli_sequence_at_the_edges_reaches_zero_or_one() -> None:
    none_yet = statistics.bernoulli_sequence(0, 50)
    assert none_yet.lower == 0.0 < none_yet.upper < 0.2
    all_of_them = statistics.bernoulli_sequence(50, 50)
    assert 0.8 < all_of_them.lower < all_of_them.upper == 1.0
    assert statistics.bernoulli_sequence(0, 0).upper == 1.0


def test_the_difference_sequence_spends_half_the_error_on_each_rate() -> None:
    interval = statistics.difference_sequence(30, 1000, 10, 1000)
    a, b = statistics.bernoulli_sequence(30, 1000, 0.975), statistics.bernoulli_sequence(10, 1000, 0.975)
    assert interval.lower == pytest.approx(a.lower - b.upper)
    assert interval.upper == pytest.approx(a.upper - b.lower)
    assert interval.estimate == pytest.approx(0.02)


def test_the_median_sequence_is_wider_than_the_sign_test_interval() -> None:
    values = [float(value) for value in range(200)]
    sequence, once = statistics.median_sequence(values), statistics.median_interval(values)
    assert sequence.lower < once.lower <= 99.5 <= once.upper < sequence.upper


@pytest.mark.parametrize(
    ("lower", "upper", "at_least", "judged"),
    [
        (0.992, 0.998, True, "pass"),
        (0.980, 0.989, True, "fail"),
        (0.985, 0.995, True, "inconclusive"),
        (1.01, 1.20, False, "pass"),
        (1.30, 1.40, False, "fail"),
        (1.10, 1.30, False, "inconclusive"),
        (1.10, math.inf, False, "inconclusive"),
    ],
)
def test_a_gate_decides_from_where_its_interval_lies(lower: float, upper: float, at_least: bool, judged: str) -> None:
    # "at least 0.99" for the floors, "at most 1.25" for the ceilings
    threshold = 0.99 if at_least else 1.25
    interval = Interval((lower + upper) / 2 if math.isfinite(upper) else lower, lower, upper, 0.95, "test")
    assert judge(interval, threshold, at_least=at_least) == judged


# --- coverage on simulated data (seeded: the same runs every time) ---------------------------------------

RUNS = 2000


@pytest.mark.parametrize(("rate", "trials"), [(0.95, 300), (0.9, 200), (0.3, 263)])
def test_a_95_percent_wilson_interval_covers_the_true_rate_in_95_percent_of_runs(rate: float, trials: int) -> None:
    # GIVEN 2,000 simulated runs of `trials` Bernoulli(rate) pairs
    generator = random.Random(16 + trials)
    covered = 0
    for _ in range(RUNS):
        successes = sum(generator.random() < rate for _ in range(trials))
        interval = statistics.wilson(successes, trials)
        covered += interval.lower <= rate <= interval.upper
    # THEN the interval holds the true rate in 93.5-96.5 % of them
    assert 0.935 <= covered / RUNS <= 0.965


def test_a_95_percent_newcombe_interval_covers_the_true_difference() -> None:
    generator = random.Random(1998)
    covered = 0
    for _ in range(RUNS):
        a = sum(generator.random() < 0.05 for _ in range(400))
        b = sum(generator.random() < 0.03 for _ in range(400))
        interval = statistics.newcombe_difference(a, 400, b, 400)
        covered += interval.lower <= 0.02 <= interval.upper
    assert 0.935 <= covered / RUNS <= 0.97  # Newcombe's method is slightly conservative


def test_the_sign_test_interval_covers_the_true_median_ratio() -> None:
    # GIVEN per-minute ratios lognormal around a true median of 1.1 (skewed: the mean is not the median)
    generator = random.Random(1936)
    covered = 0
    for _ in range(RUNS):
        pairs = [(20.0 * 1.1 * generator.lognormvariate(0, 0.3), 20.0) for _ in range(40)]
        interval = statistics.ratio_median_interval(pairs)
        covered += interval.lower <= 1.1 <= interval.upper
    # THEN the interval covers 1.1 at least 95 % of the time (order statistics are conservative, n=40: 96.2 %)
    assert 0.945 <= covered / RUNS <= 0.98


def _ever_excluded(rate: float, looks: int, excluded: Callable[[int, int], bool], first_look: int = 1) -> float:
    """The exact probability that a run of Bernoulli(rate) pairs, looked at after every pair, is ever
    excluded: dynamic programming over (pairs, successes), the paths not yet excluded carried on."""
    alive: dict[int, float] = {0: 1.0}
    ever = 0.0
    for trials in range(1, looks + 1):
        following: dict[int, float] = {}
        for successes, mass in alive.items():
            following[successes + 1] = following.get(successes + 1, 0.0) + mass * rate
            following[successes] = following.get(successes, 0.0) + mass * (1 - rate)
        alive = {}
        for successes, mass in following.items():
            if trials >= first_look and excluded(successes, trials):
                ever += mass
            else:
                alive[successes] = mass
    return ever


def _misses(interval: Interval, rate: float) -> bool:
    return not interval.lower <= rate <= interval.upper


def test_looking_after_every_pair_keeps_the_sequences_error_under_alpha() -> None:
    # GIVEN a true agreement rate of 0.98, looked at after each of 400 pairs (400 looks)
    # WHEN the chance that any look's interval misses the truth is computed exactly
    sequence = _ever_excluded(0.98, 400, lambda hits, n: _misses(statistics.bernoulli_sequence(hits, n), 0.98))
    once = _ever_excluded(0.98, 400, lambda hits, n: _misses(statistics.wilson(hits, n), 0.98))
    # THEN the confidence sequence stays under alpha = 5 %, while Wilson looked at as often misses in a
    # third of the runs: the inflation of repeated looks the sequence exists to prevent
    assert sequence <= 0.05
    assert once > 0.30


def test_the_median_sequence_misses_exactly_when_the_sign_sequence_leaves_one_half() -> None:
    # GIVEN seeded runs of 60 per-minute log ratios whose true median is 0, looked at from the 6th minute
    generator = random.Random(2022)
    for _ in range(50):
        values: list[float] = []
        for _ in range(60):
            values.append(generator.gauss(0, 1))
            if len(values) < 6:
                continue
            # WHEN the median sequence is computed THEN it misses 0 exactly when the Bernoulli sequence of
            # "at or below 0" excludes 1/2: the median sequence inherits that sequence's guarantee
            below = sum(value <= 0 for value in values)
            assert _misses(statistics.median_sequence(values), 0.0) == _misses(
                statistics.bernoulli_sequence(below, len(values)), 0.5
            )
    # AND that guarantee, exactly: over 60 looks the sequence of a fair coin leaves 1/2 with chance <= 5 %
    fair = _ever_excluded(0.5, 60, lambda hits, n: _misses(statistics.bernoulli_sequence(hits, n), 0.5), 6)
    assert fair <= 0.05
