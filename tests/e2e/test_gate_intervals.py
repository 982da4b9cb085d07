"""Confidence-bounded gates end to end on the local cloud: the simulated candidate flips a known 2 % of the
labels production gives (simulated_endpoint.ModelServer.label_flip_rate), the capture pipeline diffs the
answers, and the deployed state machine judges the agreement gate by its interval, not by its point:
(a) a full-length test rejects the candidate and its report JSON carries the interval; (b) a ramp with
early stopping on failure ends in its first step on the always-valid interval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_endpoint_once_visible, create_models
from shadowscale_localcloud.simulated_endpoint import CaptureSimulation, ModelServer, TrafficPattern

REPO = Path(__file__).resolve().parents[2]
ENDPOINT = "churn-scorer"
FLIP_RATE = 0.02  # the candidate is truly 2 % worse in agreement
GATES: dict[str, Any] = {"minInvocations": 100, "agreement": {"minWithinToleranceRate": 0.99}}
COMPARISON = {"comparator": "classification", "classification": {"labelPath": "label"}}


@dataclass
class Outcome:
    execution: dict[str, Any]
    report: dict[str, Any]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    clock = AcceleratedClock(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    with LocalCloud(root=REPO, clock=clock, stack_name="gate-intervals-e2e") as local:
        sagemaker = local.client("sagemaker")
        create_models(sagemaker, "churn-v1", "churn-v2")
        sagemaker.create_endpoint_config(
            EndpointConfigName="churn-config-1",
            ProductionVariants=[
                {
                    "VariantName": "primary",
                    "ModelName": "churn-v1",
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.m5.xlarge",
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
        create_endpoint_once_visible(sagemaker, ENDPOINT, "churn-config-1", local.advance)
        production = ModelServer(output_content_type="application/json")
        local.simulate(
            ENDPOINT,
            TrafficPattern.flat(20),
            models={"primary": production, "candidate": replace(production, label_flip_rate=FLIP_RATE)},
            capture=CaptureSimulation(limit_per_step=400, delivery_delay_seconds=60),
        )
        yield local


def _run(cloud: LocalCloud, name: str, test: dict[str, Any]) -> Outcome:
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=name, input=json.dumps(test)
    )
    execution = cloud.wait_for_execution(started["executionArn"])
    body = cloud.client("s3").get_object(
        Bucket=cloud.outputs["DataBucketName"], Key=f"reports/{ENDPOINT}/{name}/report.json"
    )["Body"]
    return Outcome(execution=execution, report=json.loads(body.read()))


def _candidate() -> dict[str, Any]:
    return {"modelName": "churn-v2", "instanceType": "ml.m5.xlarge", "variantName": "candidate"}


@pytest.fixture(scope="module")
def full_length(cloud: LocalCloud) -> Outcome:
    return _run(
        cloud,
        "churn-v2-full",
        {
            "endpointName": ENDPOINT,
            "candidate": _candidate(),
            "sampling": {"percent": 100},
            "durationMinutes": 30,
            "evaluationPeriodMinutes": 10,
            "gates": GATES,
            "comparison": COMPARISON,
        },
    )


@pytest.fixture(scope="module")
def ramp(cloud: LocalCloud, full_length: Outcome) -> Outcome:
    # after the full-length test: one test holds the endpoint at a time
    return _run(
        cloud,
        "churn-v2-ramp",
        {
            "endpointName": ENDPOINT,
            "candidate": _candidate(),
            "sampling": {
                "ramp": [
                    {"percent": 50, "bakeMinutes": 40},
                    {"percent": 100, "bakeMinutes": 40},
                ]
            },
            "durationMinutes": 80,
            "evaluationPeriodMinutes": 10,
            "gates": {**GATES, "earlyStop": {"onFailure": True}},
            "comparison": COMPARISON,
        },
    )


def _agreement_gate(outcome: Outcome) -> dict[str, Any]:
    gates = {gate["name"]: gate for gate in outcome.report["evaluation"]["gates"]}
    gate: dict[str, Any] = gates["within-tolerance-rate"]
    return gate


def test_a_candidate_two_percent_worse_is_rejected_with_its_interval_in_the_report(full_length: Outcome) -> None:
    # GIVEN the full-length test WHEN it decides THEN the candidate is removed on the agreement gate
    assert full_length.execution["status"] == "SUCCEEDED"
    assert full_length.report["outcome"] == "removed"
    assert full_length.report["verdict"] == "fail"
    gate = _agreement_gate(full_length)
    assert gate["status"] == "fail"
    # AND the report's JSON carries the estimate and its Wilson interval, wholly under 0.99, around 0.98
    assert gate["method"] == "Wilson"
    assert gate["confidence"] == 0.95
    assert gate["lower"] <= gate["observed"] <= gate["upper"] < 0.99
    assert gate["lower"] <= 1 - FLIP_RATE <= gate["upper"]
    assert "within-tolerance-rate" in full_length.report["reason"]


def test_the_latency_gates_judge_per_minute_ratios_read_from_the_local_clouds_cloudwatch(full_length: Outcome) -> None:
    # GIVEN the candidate's latency is production's (same simulated server) WHEN the test decided THEN each
    # latency gate took the median of per-minute shadow/production ratios, with a bounded interval around 1
    gates = {gate["name"]: gate for gate in full_length.report["evaluation"]["gates"]}
    for name in ("latency-p50-ratio", "latency-p90-ratio", "latency-p99-ratio"):
        gate = gates[name]
        assert gate["method"] == "sign-test median ratio"
        assert gate["detail"].startswith("median of ")
        assert gate["lower"] is not None
        assert gate["upper"] is not None
        assert gate["lower"] <= gate["observed"] <= gate["upper"]
        assert 0.5 < gate["observed"] < 2.0


def test_a_ramp_ends_early_on_clear_evidence(ramp: Outcome) -> None:
    # GIVEN the ramp with early stopping on failure WHEN it runs THEN it decides in its first step
    assert ramp.execution["status"] == "SUCCEEDED"
    evaluation = ramp.report["evaluation"]
    assert evaluation["earlyStop"].startswith("stopped early at step 1 of 2")
    assert ramp.report["reason"].startswith("stopped early at step 1 of 2")
    assert ramp.report["outcome"] == "removed"
    # AND it ended well before its 80 minutes, on the always-valid interval (half the error, per step)
    started = datetime.fromisoformat(ramp.report["startedAt"])
    finished = datetime.fromisoformat(evaluation["at"])
    assert (finished - started).total_seconds() < 40 * 60
    gate = _agreement_gate(ramp)
    assert gate["method"] == "beta-binomial CS"
    assert gate["confidence"] == pytest.approx(1 - 0.05 / 2 / 2)
    assert gate["upper"] < 0.99
    assert evaluation["stepIndex"] == 0  # never ramped to 100 %
