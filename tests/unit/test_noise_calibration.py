"""Noise calibration (A/A): the input, the noise floor, the gates judged relative to it, the side-by-side
report rows, and the rule's error rate on seeded simulated data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shadowscale.shadow_tests import config_plans, noise_calibration, report_noise
from shadowscale.shadow_tests.history_budget import _estimate
from shadowscale.shadow_tests.models import (
    AgreementStats,
    Evaluation,
    MinuteLatencies,
    NoiseFloor,
    ShadowTestInput,
    ShadowTestPlan,
    ShadowTestReport,
    VariantStats,
    parse_shadow_test_input,
)
from shadowscale.shadow_tests.report_page import notification
from shadowscale.shared.errors import InvalidShadowTestInput

from tests.conftest import load_event

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
NOISE_PAIRS, NOISE_MISMATCHES = 12_000, 698  # a model that disagrees with itself on 5.8 % of requests


def make_input(**overrides: Any) -> ShadowTestInput:
    document: dict[str, Any] = {
        "endpointName": "fraud-detector",
        "candidate": {"modelName": "fraud-v2", "instanceType": "ml.g4dn.xlarge", "variantName": "candidate"},
        "sampling": {"percent": 100},
        "durationMinutes": 60,
        "gates": {"agreement": {"minWithinToleranceRate": 0.99}},
        "calibration": {"bakeMinutes": 60},
    }
    document.update(overrides)
    return parse_shadow_test_input(document)


def healthy(invocations: float = 20_000) -> VariantStats:
    return VariantStats.model_validate({"invocations": invocations, "latencyP50Ms": 20, "latencyP90Ms": 30})


def floor(*, paired: int = NOISE_PAIRS, mismatches: int = NOISE_MISMATCHES, min_pairs: int = 100) -> NoiseFloor:
    agreement = AgreementStats(paired=paired, within_tolerance_rate=(paired - mismatches) / paired)
    minutes = MinuteLatencies(
        p50=tuple((20.0 * 1.1, 20.0) for _ in range(30)),  # the copy's placement costs 10 %
        p90=tuple((30.0 * 1.1, 30.0) for _ in range(30)),
        p99=tuple((45.0 * 1.1, 45.0) for _ in range(30)),
    )
    return noise_calibration.noise_floor(
        variant="candidate-noise",
        started_at=T0,
        at=T0 + timedelta(minutes=60),
        copy=healthy(),
        agreement=agreement,
        latencies=minutes,
        confidence=0.95,
        min_pairs=min_pairs,
    )


def candidate_agreement(mismatches: int, paired: int = 12_000) -> AgreementStats:
    return AgreementStats(paired=paired, within_tolerance_rate=(paired - mismatches) / paired)


def gates_of(
    request: ShadowTestInput, agreement: AgreementStats, noise: NoiseFloor | None, **kwargs: Any
) -> dict[str, Any]:
    gates, _ = config_plans.evaluate_gates(request, healthy(), healthy(), agreement, noise=noise, **kwargs)
    return {gate.name: gate for gate in gates}


# --- input ---------------------------------------------------------------------------------------------


def test_the_calibrated_sample_event_is_a_valid_input() -> None:
    # GIVEN the example input WHEN validated THEN its calibration takes the first step's sampling by default
    request = parse_shadow_test_input(load_event("shadow_test_calibrated.json"))
    assert request.calibration is not None
    assert request.calibration.bake_minutes == 60
    assert request.calibration_percent == request.steps[0].percent


def test_without_calibration_the_input_and_the_plan_are_as_before() -> None:
    # GIVEN an input with no calibration block WHEN planned THEN there is no noise config to create
    request = make_input(calibration=None)
    plan = ShadowTestPlan.create(
        request,
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:t1",
        started_at=T0,
        data_bucket="bucket",
        default_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    )
    assert request.calibration is None
    assert plan.noise_config_name is None


def test_a_calibrated_plan_names_its_noise_config_variant_and_diff_id_apart_from_the_candidates() -> None:
    # GIVEN a calibrated input WHEN planned THEN the A/A phase has names of its own
    plan = ShadowTestPlan.create(
        make_input(),
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:t1",
        started_at=T0,
        data_bucket="bucket",
        default_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    )
    assert plan.noise_config_name is not None
    assert plan.noise_config_name.endswith("-noise")
    assert plan.noise_variant_name == "candidate-noise"
    assert plan.noise_test_id == "t1-noise"
    assert plan.noise_capture_s3_uri == "s3://bucket/capture/t1-noise"


@pytest.mark.parametrize(
    ("calibration", "field"),
    [
        ({"bakeMinutes": 2}, "calibration.bakeMinutes"),
        ({"bakeMinutes": 30, "samplePercent": 0}, "calibration.samplePercent"),
        ({"bakeMinutes": 30, "minPairs": 0}, "calibration.minPairs"),
        ({"bakeMinutes": 30, "typo": 1}, "calibration.typo"),
        ({}, "calibration.bakeMinutes"),
    ],
)
def test_a_bad_calibration_is_refused_naming_its_field(calibration: dict[str, Any], field: str) -> None:
    # GIVEN a malformed calibration block WHEN validated THEN the error names the field
    with pytest.raises(InvalidShadowTestInput, match=field.replace(".", r"\.")):
        make_input(calibration=calibration)


def test_a_calibration_needs_the_stacks_capture_bucket() -> None:
    # GIVEN capture sent elsewhere WHEN validated THEN refused: the diff pipeline could not measure the noise
    with pytest.raises(InvalidShadowTestInput, match="calibration needs the stack's capture bucket"):
        make_input(dataCapture={"destinationS3Uri": "s3://elsewhere/capture"})


def test_the_history_budget_counts_the_calibration_bake_as_one_more_step() -> None:
    # GIVEN the same test with and without calibration WHEN its history is estimated THEN calibration adds
    plain, calibrated = _estimate(make_input(calibration=None)), _estimate(make_input())
    assert calibrated.evaluations == plain.evaluations + 60 // 5 + 1
    assert calibrated.events > plain.events


# --- the noise floor and the gates ---------------------------------------------------------------------


def test_the_noise_floor_records_the_mismatch_counts_and_the_latency_spread() -> None:
    # GIVEN an A/A phase WHEN its floor is taken THEN the counts behind the rate, and a ratio per percentile
    noise = floor()
    assert noise.paired == NOISE_PAIRS
    assert noise.tolerance_mismatches == NOISE_MISMATCHES
    assert noise.exact_mismatches is None  # the summary had no exact-match rate
    p90 = noise.latency_at("p90")
    assert p90 is not None
    assert p90.median == pytest.approx(1.1)
    assert p90.minutes == 30


def test_a_candidate_as_noisy_as_production_fails_the_plain_gate_and_passes_the_calibrated_one() -> None:
    # GIVEN a candidate that disagrees as often as production disagrees with itself
    agreement = candidate_agreement(NOISE_MISMATCHES + 10)
    request = make_input()
    # WHEN judged without and with the noise floor
    plain, calibrated = gates_of(request, agreement, None), gates_of(request, agreement, floor())
    # THEN the plain gate fails, the excess gate passes: its whole interval is under the 1 % allowed
    assert plain["within-tolerance-rate"].status == "fail"
    excess = calibrated["within-tolerance-excess"]
    assert "within-tolerance-rate" not in calibrated
    assert excess.status == "pass"
    assert excess.method == "Newcombe"
    assert excess.threshold == pytest.approx(0.01)
    assert excess.lower is not None
    assert excess.upper is not None
    assert excess.lower <= excess.observed <= excess.upper <= 0.01


def test_a_candidate_truly_worse_than_the_noise_floor_is_still_rejected_when_calibrated() -> None:
    # GIVEN a candidate disagreeing on 9 % where the noise is 5.8 %: 3.2 points beyond it, 1 allowed
    agreement = candidate_agreement(1_080)
    # WHEN judged against the noise floor THEN the excess gate fails, and so does the verdict
    gates, verdict = config_plans.evaluate_gates(make_input(), healthy(), healthy(), agreement, noise=floor())
    excess = next(gate for gate in gates if gate.name == "within-tolerance-excess")
    assert excess.status == "fail"
    assert excess.lower is not None
    assert excess.lower > 0.01
    assert verdict == "fail"


def test_too_few_pairs_in_the_a_a_phase_leave_the_calibrated_gate_without_evidence() -> None:
    # GIVEN an A/A phase that diffed fewer pairs than calibration.minPairs WHEN judged THEN insufficient data
    gates = gates_of(make_input(), candidate_agreement(10, 1000), floor(paired=50, mismatches=3, min_pairs=100))
    assert gates["within-tolerance-excess"].status == "insufficient-data"
    assert "calibration.minPairs is 100" in gates["within-tolerance-excess"].detail


def test_the_early_looks_use_the_always_valid_interval_of_the_difference() -> None:
    # GIVEN the early-stopping evaluation WHEN calibrated THEN the excess is judged by the confidence sequence
    gates = gates_of(make_input(), candidate_agreement(NOISE_MISMATCHES), floor(), sequential=True)
    assert gates["within-tolerance-excess"].method == "beta-binomial CS difference"


def test_the_latency_gates_divide_out_the_a_a_median_ratio() -> None:
    # GIVEN a shadow 10 % slower than production both in the A/A phase and as the candidate
    minutes = MinuteLatencies(p90=tuple((30.0 * 1.1 * (1 + 0.01 * (i % 3)), 30.0) for i in range(30)))
    request = make_input(gates={"latency": {"p50Ratio": None, "p90Ratio": 1.05, "p99Ratio": None}})
    # WHEN judged plainly and relative to the noise floor
    plain, _ = config_plans.evaluate_gates(request, healthy(), healthy(), None, minutes)
    relative, _ = config_plans.evaluate_gates(request, healthy(), healthy(), None, minutes, noise=floor())
    by_name = {gate.name: gate for gate in relative}
    # THEN plainly 1.1 fails 1.05; relative to the A/A 1.1 the candidate costs nothing more and passes
    assert next(gate for gate in plain if gate.name == "latency-p90-ratio").status == "fail"
    assert by_name["latency-p90-ratio"].status == "pass"
    assert by_name["latency-p90-ratio"].observed == pytest.approx(1.0, abs=0.02)
    assert "divided by the A/A median ratio 1.100" in by_name["latency-p90-ratio"].detail


def test_the_noise_phase_never_promotes() -> None:
    # GIVEN an evaluation of the A/A phase that ended early (a spent budget) with its copy's gates passing
    evaluation = Evaluation(
        at=T0,
        step_index=0,
        step_started_at=T0,
        window_start=T0,
        production=healthy(),
        shadow=healthy(),
        gates=(),
        verdict="pass",
        next="decide",
        wait_seconds=0,
        phase="noise",
        noise=floor(),
    )
    # WHEN decided THEN the shadow is removed: the candidate never ran
    decision = config_plans.decide(make_input(), evaluation)
    assert decision.action == "remove"
    assert decision.verdict == "insufficient-data"
    assert "noise calibration" in decision.reason


@pytest.mark.parametrize(("minutes", "over"), [(10, False), (59, False), (60, True), (75, True)])
def test_the_a_a_bake_lasts_its_minutes(minutes: int, over: bool) -> None:
    # GIVEN the A/A bake of 60 min WHEN looked at after `minutes` THEN it is over from minute 60 on
    baked, wait = noise_calibration.next_in_noise_phase(
        make_input(), started_at=T0, now=T0 + timedelta(minutes=minutes)
    )
    assert baked is over
    assert 1 <= wait <= 5 * 60


# --- the report's side-by-side rows ----------------------------------------------------------------------


def decided_calibrated_evaluation() -> Evaluation:
    """A calibrated evaluation whose candidate disagrees on 10 pairs more than the noise, decided."""
    agreement = candidate_agreement(NOISE_MISMATCHES + 10)
    gates, verdict = config_plans.evaluate_gates(make_input(), healthy(), healthy(), agreement, noise=floor())
    return Evaluation(
        at=T0,
        step_index=0,
        step_started_at=T0,
        window_start=T0,
        production=healthy(),
        shadow=healthy(),
        agreement=agreement,
        gates=gates,
        verdict=verdict,
        next="decide",
        wait_seconds=0,
        noise=floor(),
    )


def test_the_report_rows_put_noise_and_candidate_side_by_side() -> None:
    # GIVEN a decided calibrated evaluation WHEN its rows are drawn THEN noise, candidate and excess show
    evaluation = decided_calibrated_evaluation()
    row = report_noise.rows(evaluation)[0]
    assert row.noise == "5.817% (698 of 12,000)"
    assert row.candidate == "5.900% (708 of 12,000)"
    assert row.judged.startswith("+")
    assert row.status == "pass"
    assert report_noise.lines(evaluation)[0].startswith("noise (A/A) vs candidate:")
    assert "Noise calibration (A/A)" in report_noise.noise_section(evaluation)
    assert report_noise.noise_section(evaluation.model_copy(update={"noise": None})) == ""


# --- the rule's error on simulated data (seeded: the same runs every time) -------------------------------


def test_a_candidate_exactly_as_noisy_as_production_is_wrongly_failed_in_at_most_alpha_of_runs() -> None:
    # GIVEN 2,000 simulated tests where the candidate's disagreement equals the noise's (no excess at all)
    rng, runs, noise_rate, pairs = random.Random(16), 2_000, 0.058, 20_000
    failed = passed = 0
    for _ in range(runs):
        noise = rng.binomialvariate(pairs, noise_rate)
        candidate = rng.binomialvariate(pairs, noise_rate)
        interval = noise_calibration.excess_disagreement(candidate, pairs, noise, pairs, 0.95)
        # WHEN the rule judges an excess of 0 allowed (the strictest tolerance) and of 1 point allowed
        failed += interval.lower > 0.0  # the interval claims an excess that is not there
        passed += interval.upper <= 0.01
    # THEN a false claim of excess is at most the 2.5 % one tail allows (with room for sampling), and with 1
    # point allowed the true candidate passes in most runs
    assert failed / runs <= 0.035
    assert passed / runs >= 0.95


def test_the_excess_interval_covers_the_true_excess_in_95_percent_of_runs() -> None:
    # GIVEN a candidate truly 2 points worse than a 5 % noise floor, over 2,000 seeded runs
    rng, runs, pairs = random.Random(17), 2_000, 2_000
    covered = 0
    for _ in range(runs):
        noise = rng.binomialvariate(pairs, 0.05)
        candidate = rng.binomialvariate(pairs, 0.07)
        interval = noise_calibration.excess_disagreement(candidate, pairs, noise, pairs, 0.95)
        covered += interval.lower <= 0.02 <= interval.upper
    # WHEN counted THEN the 95 % interval holds the true 0.02 in about 95 % of them
    assert 0.93 <= covered / runs <= 0.97


def test_the_sns_message_carries_the_noise_beside_the_candidate() -> None:
    # GIVEN a calibrated test's report WHEN its notification is written THEN the side-by-side lines are in it
    evaluation = decided_calibrated_evaluation()
    report = ShadowTestReport(
        test_id="t1",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:t1",
        endpoint="fraud-detector",
        outcome="promoted",
        verdict=evaluation.verdict,
        reason="all gates passed",
        finished_at=T0,
        evaluation=evaluation,
    )
    _, message = notification(report)
    assert "noise (A/A) vs candidate:" in message
    assert "noise 5.817% (698 of 12,000); candidate 5.900% (708 of 12,000)" in message
