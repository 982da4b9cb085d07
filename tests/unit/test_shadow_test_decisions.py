"""Pure shadow-test logic: input validation, gates, hard limits, the ramp and the decision."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shadowscale.shadow_tests import config_plans
from shadowscale.shadow_tests.models import (
    AgreementStats,
    EndpointSnapshot,
    Evaluation,
    MinuteLatencies,
    ShadowTestInput,
    ShadowTestPlan,
    VariantStats,
    lease_owner,
    parse_shadow_test_input,
)
from shadowscale.shadow_tests.sagemaker_documents import config_of, config_request, endpoint_of
from shadowscale.shared.errors import InvalidShadowTestInput

from tests.conftest import load_event

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def make_input(**overrides: Any) -> ShadowTestInput:
    document: dict[str, Any] = {
        "endpointName": "fraud-detector",
        "candidate": {"modelName": "fraud-v2", "instanceType": "ml.g4dn.xlarge"},
        "sampling": {"percent": 20},
        "durationMinutes": 60,
    }
    document.update(overrides)
    return parse_shadow_test_input(document)


def healthy(**overrides: float) -> VariantStats:
    values: dict[str, float] = {
        "invocations": 1000,
        "latencyP50Ms": 20,
        "latencyP90Ms": 30,
        "latencyP99Ms": 45,
        "errors4xx": 1,
        "errors5xx": 0,
        "modelErrors": 0,
    }
    values.update(overrides)
    return VariantStats.model_validate(values)


def test_the_sample_event_is_a_valid_input() -> None:
    request = parse_shadow_test_input(load_event("shadow_test.json"))
    assert [step.percent for step in request.steps] == [10, 50, 100]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"sampling": {"percent": 0}}, "sampling.percent"),
        ({"sampling": {}}, "give either percent or ramp"),
        ({"sampling": {"ramp": [{"percent": 50, "bakeMinutes": 5}, {"percent": 10, "bakeMinutes": 5}]}}, "ramp.1"),
        ({"candidate": {"modelName": "m", "instanceType": "g5.xlarge"}}, "candidate.instanceType"),
        ({"durationMinutes": 10, "sampling": {"ramp": [{"percent": 5, "bakeMinutes": 30}]}}, "ramp's bakes"),
        ({"decisionMode": "yolo"}, "decisionMode"),
        ({"surprise": 1}, "surprise"),
        ({"durationMinutes": 60 * 24 * 90, "evaluationPeriodMinutes": 1}, "execution history limit"),
    ],
)
def test_invalid_input_names_the_field(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidShadowTestInput, match=named.replace(".", r"\.").replace("'", ".")):
        make_input(**overrides)


def test_the_plan_fixes_every_name_within_sagemaker_limits() -> None:
    request = make_input(
        endpointName="e" * 63,
        candidate={"modelName": "m" * 63, "instanceType": "ml.m5.large", "environment": {"A": "1"}},
    )
    plan = ShadowTestPlan.create(
        request,
        execution_arn="arn:aws:states:us-east-1:1:execution:sm:run.1",
        started_at=T0,
        data_bucket="bucket",
        default_topic_arn="arn:aws:sns:us-east-1:1:topic",
    )
    assert plan.test_id == "run-1-86773151"  # "run.1" had to change: the ARN's hash keeps it unique
    for name in (plan.shadow_config_name, plan.promoted_config_name, plan.derived_model_name or ""):
        assert 0 < len(name) <= 63
    assert plan.capture_s3_uri == "s3://bucket/capture/run-1-86773151"
    assert plan.approval_timeout_seconds == 24 * 3600


def test_names_that_sanitise_alike_get_different_test_ids_and_owners() -> None:
    # GIVEN two executions whose names differ only in characters a test id cannot hold
    machine = "arn:aws:states:us-east-1:123456789012:execution:shadowscale-dev-shadow-test"
    dotted, underscored, plain = f"{machine}:fraud.v2", f"{machine}:fraud_v2", f"{machine}:fraud-v2"

    # WHEN their ids and lease owners are derived
    ids = {ShadowTestPlan.test_id_of(arn) for arn in (dotted, underscored, plain)}

    # THEN no two share an id (reports, diffs) and each lease owner is the execution itself
    assert len(ids) == 3
    assert ShadowTestPlan.test_id_of(plain) == "fraud-v2"
    assert all(len(test_id) <= 80 for test_id in ids)
    assert lease_owner(dotted) == f"shadow-test:{dotted}"


def minutes(shadow_over_production: float = 1.0, count: int = 30, spread: float = 0.05) -> MinuteLatencies:
    """`count` minutes of paired latencies whose shadow/production ratio wobbles around a value."""
    generator = random.Random(count)
    pairs = tuple(
        (20.0 * shadow_over_production * generator.uniform(1 - spread, 1 + spread), 20.0) for _ in range(count)
    )
    return MinuteLatencies(p50=pairs, p90=pairs, p99=pairs)


def test_gates_pass_for_a_twin_and_fail_for_a_slow_candidate() -> None:
    request = make_input()
    gates, verdict = config_plans.evaluate_gates(request, healthy(), healthy(), None, minutes())
    assert verdict == "pass"
    assert {gate.name for gate in gates} >= {"latency-p99-ratio", "5xx-rate-delta", "min-invocations"}

    gates, verdict = config_plans.evaluate_gates(request, healthy(), healthy(), None, minutes(2.0))
    failed = {gate.name: gate for gate in gates if gate.status == "fail"}
    assert verdict == "fail"
    ratio = failed["latency-p90-ratio"]
    assert ratio.observed == pytest.approx(2.0, abs=0.05)
    assert ratio.threshold == 1.25
    assert ratio.lower is not None
    assert ratio.lower > 1.25
    assert (ratio.confidence, ratio.method) == (0.95, "sign-test median ratio")


def test_without_per_minute_latencies_the_latency_gates_wait_for_evidence() -> None:
    gates, verdict = config_plans.evaluate_gates(make_input(), healthy(), healthy(), None, None)
    assert verdict == "insufficient-data"
    assert {gate.name for gate in gates if gate.status == "insufficient-data"} == {
        "latency-p50-ratio",
        "latency-p90-ratio",
        "latency-p99-ratio",
    }


def test_a_latency_interval_across_the_ceiling_is_insufficient_evidence() -> None:
    # GIVEN a shadow 1.25x production on its median minute, wobbling +/-10 %: neither below nor above 1.25
    gates, verdict = config_plans.evaluate_gates(make_input(), healthy(), healthy(), None, minutes(1.25, spread=0.1))
    gate = next(g for g in gates if g.name == "latency-p90-ratio")
    # THEN the gate does not decide on the point estimate
    assert gate.status == "insufficient-data"
    assert gate.lower is not None
    assert gate.upper is not None
    assert gate.lower < 1.25 < gate.upper
    assert "straddles the threshold" in gate.detail
    assert verdict == "insufficient-data"


def test_too_few_invocations_is_insufficient_data_not_failure() -> None:
    _, verdict = config_plans.evaluate_gates(make_input(), healthy(), healthy(invocations=10), None)
    assert verdict == "insufficient-data"


def test_agreement_gates_read_the_diff_pipeline() -> None:
    request = make_input(gates={"minPairedResponses": 100, "agreement": {"minWithinToleranceRate": 0.99}})
    _, missing = config_plans.evaluate_gates(request, healthy(), healthy(), None, minutes())
    assert missing == "insufficient-data"
    low = AgreementStats(paired=500, exact_match_rate=0.5, within_tolerance_rate=0.9)
    gates, verdict = config_plans.evaluate_gates(request, healthy(), healthy(), low, minutes())
    assert verdict == "fail"
    assert [g.name for g in gates if g.status == "fail"] == ["within-tolerance-rate"]


@pytest.mark.parametrize(
    ("paired", "rate", "status"),
    [
        (300, 0.989, "insufficient-data"),  # 0.989 of 300 is no evidence of anything below 0.99
        (100_000, 0.989, "fail"),  # of 100,000 it is: the upper bound is 0.9896
        (300, 1.0, "insufficient-data"),  # even 300 of 300 is not: the lower bound is 0.9874
        (1000, 1.0, "pass"),  # 1,000 of 1,000 is: the lower bound is 0.9962
    ],
)
def test_an_agreement_floor_is_judged_by_the_wilson_bound(paired: int, rate: float, status: str) -> None:
    # GIVEN "at least 0.99 within tolerance": the interval's lower bound must reach 0.99
    request = make_input(gates={"agreement": {"minWithinToleranceRate": 0.99}})
    gates, _ = config_plans.evaluate_gates(
        request, healthy(), healthy(), AgreementStats(paired=paired, within_tolerance_rate=rate), minutes()
    )
    gate = next(g for g in gates if g.name == "within-tolerance-rate")
    assert gate.method == "Wilson"
    assert gate.lower is not None
    assert gate.upper is not None
    assert gate.lower <= rate <= gate.upper
    assert gate.status == status


def test_error_rate_delta_is_shadow_minus_production_with_newcombes_interval() -> None:
    # GIVEN 2.0 % 5xx on the shadow against 1.0 % on production, over 1,000 requests each
    gates, _ = config_plans.evaluate_gates(make_input(), healthy(errors5xx=10), healthy(errors5xx=20), None, minutes())
    gate = next(g for g in gates if g.name == "5xx-rate-delta")
    # THEN the delta is 0.01, but 1,000 requests do not show it above the 0.005 ceiling
    assert gate.observed == pytest.approx(0.01)
    assert gate.method == "Newcombe"
    assert gate.lower is not None
    assert gate.observed is not None
    assert gate.lower < 0.005 < gate.observed
    assert gate.status == "insufficient-data"
    # AND 20,000 requests each do (the interval is wholly above 0.005)
    many = config_plans.evaluate_gates(
        make_input(),
        healthy(invocations=20_000, errors5xx=200),
        healthy(invocations=20_000, errors5xx=400),
        None,
        minutes(),
    )[0]
    assert next(g for g in many if g.name == "5xx-rate-delta").status == "fail"


def test_the_confidence_is_an_input_and_every_interval_uses_it() -> None:
    request = make_input(gates={"confidence": 0.9, "agreement": {"minExactMatchRate": 0.5}})
    agreement = AgreementStats(paired=1000, exact_match_rate=0.9)
    gates, _ = config_plans.evaluate_gates(request, healthy(), healthy(), agreement, minutes())
    assert {gate.confidence for gate in gates if gate.method and "point" not in gate.method} == {0.9}
    with pytest.raises(InvalidShadowTestInput, match=r"gates\.confidence"):
        make_input(gates={"confidence": 1.0})


def test_hard_limit_on_shadow_errors() -> None:
    request = make_input(hardLimits={"maxShadowErrorRate": 0.1})
    assert config_plans.hard_limit_breach(request, healthy(), healthy(errors5xx=50, modelErrors=60)) is not None
    assert config_plans.hard_limit_breach(request, healthy(), healthy(errors5xx=50)) is None


def test_the_ramp_moves_on_after_each_bake_and_decides_after_the_last() -> None:
    request = make_input(
        sampling={"ramp": [{"percent": 10, "bakeMinutes": 20}, {"percent": 50, "bakeMinutes": 20}]},
        durationMinutes=40,
        evaluationPeriodMinutes=15,
    )

    def at(minutes: int, index: int = 0, started: datetime = T0, breached: bool = False) -> tuple[str, int, int]:
        now = T0 + timedelta(minutes=minutes)
        return config_plans.next_step(
            request, step_index=index, step_started_at=started, test_started_at=T0, now=now, breached=breached
        )

    assert at(0) == ("bake", 0, 900)
    assert at(15) == ("bake", 0, 300)
    assert at(20) == ("ramp", 1, 900)
    assert at(40, index=1, started=T0 + timedelta(minutes=20))[0] == "decide"
    assert at(0, breached=True)[0] == "abort"


def _evaluation(verdict: str, breach: str | None = None) -> Evaluation:
    return Evaluation.model_validate(
        {
            "at": T0,
            "stepIndex": 0,
            "stepStartedAt": T0,
            "windowStart": T0,
            "production": {},
            "shadow": {},
            "gates": [],
            "verdict": verdict,
            "hardLimitBreached": breach,
            "next": "decide",
            "waitSeconds": 0,
        }
    )


@pytest.mark.parametrize(
    ("mode", "verdict", "breach", "action"),
    [
        ("auto", "pass", None, "promote"),
        ("auto", "fail", None, "remove"),
        ("auto", "insufficient-data", None, "remove"),
        ("approve", "pass", None, "await-approval"),
        ("approve", "fail", None, "await-approval"),
        ("approve", "pass", "errors", "remove"),
        ("report-only", "pass", None, "remove"),
    ],
)
def test_decision_by_mode(mode: str, verdict: str, breach: str | None, action: str) -> None:
    decision = config_plans.decide(make_input(decisionMode=mode), _evaluation(verdict, breach))
    assert decision.action == action


def test_shadow_config_keeps_production_live_and_captures_both() -> None:
    request = make_input(sampling={"percent": 25})
    plan = ShadowTestPlan.create(
        request, execution_arn="arn:x:run", started_at=T0, data_bucket="b", default_topic_arn="arn:aws:sns:r:1:t"
    )
    snapshot = EndpointSnapshot.model_validate(
        {
            "endpoint": "fraud-detector",
            "configName": "c1",
            "productionVariants": [
                {
                    "VariantName": "primary",
                    "ModelName": "v1",
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": 1.0,
                }
            ],
            "currentInstances": {"primary": 5},
            "currentWeights": {"primary": 2.0},
            "takenAt": T0,
        }
    )
    request_body = config_request(config_plans.shadow_config(plan, snapshot))
    [production] = request_body["ProductionVariants"]
    [shadow] = request_body["ShadowProductionVariants"]
    assert production["InitialInstanceCount"] == 5  # the autopilot's live count, not the config's
    assert shadow["InitialVariantWeight"] == pytest.approx(0.5)  # 25 % of production's weight 2.0
    assert request_body["DataCaptureConfig"]["DestinationS3Uri"] == "s3://b/capture/run"
    promoted = config_request(config_plans.promoted_config(plan, snapshot))
    assert promoted["ProductionVariants"][0]["InitialInstanceCount"] == 5
    assert "DataCaptureConfig" not in promoted  # the snapshot had none


def _plan_and_snapshot(**overrides: Any) -> tuple[ShadowTestPlan, EndpointSnapshot]:
    plan = ShadowTestPlan.create(
        make_input(**overrides),
        execution_arn="arn:x:run",
        started_at=T0,
        data_bucket="b",
        default_topic_arn="arn:aws:sns:r:1:t",
    )
    snapshot = EndpointSnapshot.model_validate(
        {
            "endpoint": "fraud-detector",
            "configName": "c1",
            "productionVariants": [
                {"VariantName": "primary", "ModelName": "v1", "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"}
            ],
            "currentInstances": {"primary": 2},
            "currentWeights": {"primary": 1.0},
            "takenAt": T0,
        }
    )
    return plan, snapshot


def test_a_ramp_config_carries_the_step_weight_and_the_live_production_count() -> None:
    # GIVEN a two-step ramp and production at 4 instances now (2 when the test began)
    plan, snapshot = _plan_and_snapshot(
        sampling={"ramp": [{"percent": 10, "bakeMinutes": 10}, {"percent": 50, "bakeMinutes": 10}]}
    )
    # WHEN the second step's config is built
    request = config_request(config_plans.ramp_config(plan, snapshot, 1, production_instances=4))
    # THEN it is the shadow config with 50 % sampling, 4 production instances, and a name of its own
    assert request["EndpointConfigName"] == plan.ramp_config_name(1) != plan.shadow_config_name
    assert request["ProductionVariants"][0]["InitialInstanceCount"] == 4
    assert request["ShadowProductionVariants"][0]["InitialVariantWeight"] == pytest.approx(0.5)
    assert (
        request["DataCaptureConfig"] == config_request(config_plans.shadow_config(plan, snapshot))["DataCaptureConfig"]
    )
    assert plan.ramp_config_names == (plan.ramp_config_name(1),)
    assert len(plan.ramp_config_name(1)) <= 63  # SageMaker's limit for config names


def _described(**capture: Any) -> dict[str, Any]:
    return {
        "EndpointConfigName": "c2",
        "ProductionVariants": [{"VariantName": "primary"}],
        "ShadowProductionVariants": [{"VariantName": "shadow"}],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": 100,
            "DestinationS3Uri": "s3://b/capture/run",
            **capture,
        },
    }


def test_a_live_endpoint_like_its_config_has_no_mismatch() -> None:
    plan, snapshot = _plan_and_snapshot(sampling={"percent": 25})
    config = config_request(config_plans.shadow_config(plan, snapshot))
    assert config_plans.mismatches(config_of(config), endpoint_of(_described())) == []


@pytest.mark.parametrize(
    ("described", "named"),
    [
        (_described(DestinationS3Uri="s3://team/old"), "data capture destination: asked s3://b/capture/run"),
        (_described(CurrentSamplingPercentage=20), "data capture sampling: asked 100 %, live 20 %"),
        (_described(EnableCapture=False), "data capture: asked on, live off"),
        ({**_described(), "ShadowProductionVariants": []}, "shadow variants: asked for ['shadow'], live []"),
        ({**_described(), "ProductionVariants": [{"VariantName": "other"}]}, "production variants"),
    ],
)
def test_each_difference_between_config_and_live_endpoint_is_named(described: dict[str, Any], named: str) -> None:
    plan, snapshot = _plan_and_snapshot(sampling={"percent": 25})
    config = config_request(config_plans.shadow_config(plan, snapshot))
    found = config_plans.mismatches(config_of(config), endpoint_of(described))
    assert len(found) == 1
    assert named in found[0]


def test_capture_off_in_both_is_no_mismatch() -> None:
    config = {"ProductionVariants": [{"VariantName": "primary"}]}
    described = {"ProductionVariants": [{"VariantName": "primary"}]}
    assert config_plans.mismatches(config_of(config), endpoint_of(described)) == []


def test_given_a_provisional_summary_when_the_pair_gate_runs_then_it_says_which_summary_it_counted() -> None:
    request = make_input(gates={"minPairedResponses": 100})
    read_at = T0 + timedelta(minutes=14)
    counted = AgreementStats(paired=120, summary_updated_at=read_at, final=False)
    gates, _ = config_plans.evaluate_gates(request, healthy(), healthy(), counted)
    gate = next(g for g in gates if g.name == "min-paired-responses")
    assert (gate.observed, gate.status) == (120, "pass")
    assert gate.detail == f"request pairs in the diff summary of {read_at.isoformat()} (provisional)"
    _, none_yet = config_plans.evaluate_gates(request, healthy(), healthy(), None)
    assert none_yet == "insufficient-data"


# --- early stopping ---------------------------------------------------------------------------------------

RAMP = {"ramp": [{"percent": 10, "bakeMinutes": 20}, {"percent": 50, "bakeMinutes": 20}]}


def test_without_early_stopping_no_look_ends_the_test() -> None:
    request = make_input(sampling=RAMP, durationMinutes=40)
    worse = AgreementStats(paired=5000, within_tolerance_rate=0.5)
    assert config_plans.early_decision(request, healthy(), healthy(), worse, minutes(), step_index=0) is None


def test_a_clear_failure_ends_the_ramp_early_with_the_sequences_interval() -> None:
    # GIVEN early stopping on failure and a candidate that agrees with production on 95 % of 5,000 pairs
    request = make_input(
        sampling=RAMP,
        durationMinutes=40,
        gates={"earlyStop": {"onFailure": True}, "agreement": {"minWithinToleranceRate": 0.99}},
    )
    worse = AgreementStats(paired=5000, within_tolerance_rate=0.95)
    # WHEN the first step's look runs
    early = config_plans.early_decision(request, healthy(), healthy(), worse, minutes(), step_index=0)
    # THEN the always-valid interval fails the gate, at the early looks' share of the error
    assert early is not None
    assert early.verdict == "fail"
    gate = next(g for g in early.gates if g.name == "within-tolerance-rate")
    assert gate.method == "beta-binomial CS"
    assert gate.confidence == pytest.approx(1 - 0.05 / 2 / 2)  # half the error for early looks, per step
    assert gate.upper is not None
    assert gate.upper < 0.99
    assert early.reason.startswith("stopped early at step 1 of 2")
    # AND the ramp goes to its decision now, whose reason says so
    following = config_plans.next_step(
        request, step_index=0, step_started_at=T0, test_started_at=T0, now=T0, breached=False, stopped_early=True
    )
    assert following == ("decide", 0, 0)
    evaluation = _evaluation("fail").model_copy(update={"early_stop": early.reason, "gates": early.gates})
    decision = config_plans.decide(request, evaluation)
    assert (decision.action, decision.verdict) == ("remove", "fail")
    assert decision.reason.startswith("stopped early at step 1 of 2: always-valid 98.75% intervals fail")


def test_a_pass_ends_the_test_early_only_when_the_input_allows_early_promotion() -> None:
    clear = AgreementStats(paired=20_000, within_tolerance_rate=1.0)
    stats = healthy(invocations=50_000)
    gates = {"agreement": {"minWithinToleranceRate": 0.99}}
    failing_only = make_input(gates={**gates, "earlyStop": {"onFailure": True}})
    assert config_plans.early_decision(failing_only, stats, stats, clear, minutes(count=60), step_index=0) is None
    promoting = make_input(gates={**gates, "earlyStop": {"onPass": True}})
    early = config_plans.early_decision(promoting, stats, stats, clear, minutes(count=60), step_index=0)
    assert early is not None
    assert early.verdict == "pass"
    assert "pass all" in early.reason


def test_with_early_stopping_the_final_decision_spends_the_other_half_of_the_error() -> None:
    request = make_input(gates={"earlyStop": {"onFailure": True}, "agreement": {"minExactMatchRate": 0.5}})
    gates, _ = config_plans.evaluate_gates(
        request, healthy(), healthy(), AgreementStats(paired=100, exact_match_rate=0.9), minutes()
    )
    assert next(g for g in gates if g.name == "exact-match-rate").confidence == pytest.approx(0.975)
