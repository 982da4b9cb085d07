"""Noise calibration (A/A) end to end on the local cloud: the production model is not deterministic (3 % of
its answers flip from one invocation to the next: simulated_endpoint.ModelServer.invocation_flip_rate), and
the candidate is the same model, with the same noise. Judged by the plain agreement gate (at least 99 %),
the candidate fails: a copy of production disagrees with production on about 6 % of the requests. With a
calibration phase first, the deployed state machine shadows production with a copy of the production model,
records that noise floor, switches the shadow to the candidate and judges only the disagreement in excess of
the noise: the candidate is promoted, and the report shows the noise and the candidate side by side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shadowscale.cli.main import main as cli
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_endpoint_once_visible, create_models
from shadowscale_localcloud.simulated_endpoint import CaptureSimulation, ModelServer, TrafficPattern

REPO = Path(__file__).resolve().parents[2]
STACK = "noise-calibration-e2e"
ENDPOINT = "noisy-scorer"
NOISE = 0.03  # each invocation's label flips with this chance, on every copy of the model
GATES: dict[str, Any] = {"minInvocations": 100, "agreement": {"minWithinToleranceRate": 0.98}}
COMPARISON = {"comparator": "classification", "classification": {"labelPath": "label"}}


@dataclass
class Outcome:
    execution: dict[str, Any]
    report: dict[str, Any]
    html: str


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    clock = AcceleratedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    with LocalCloud(root=REPO, clock=clock, stack_name=STACK) as local:
        sagemaker = local.client("sagemaker")
        create_models(sagemaker, "noisy-v1", "noisy-v2")
        sagemaker.create_endpoint_config(
            EndpointConfigName="noisy-config-1",
            ProductionVariants=[
                {
                    "VariantName": "primary",
                    "ModelName": "noisy-v1",
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.m5.xlarge",
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
        create_endpoint_once_visible(sagemaker, ENDPOINT, "noisy-config-1", local.advance)
        model = ModelServer(output_content_type="application/json", invocation_flip_rate=NOISE)
        local.simulate(
            ENDPOINT,
            TrafficPattern.flat(20),
            # The A/A copy runs the production model; the candidate is a build of the same model.
            models={"primary": model, "candidate-noise": model, "candidate": replace(model)},
            capture=CaptureSimulation(limit_per_step=400, delivery_delay_seconds=60),
        )
        yield local


def _test(**extra: Any) -> dict[str, Any]:
    return {
        "endpointName": ENDPOINT,
        "candidate": {"modelName": "noisy-v2", "instanceType": "ml.m5.xlarge", "variantName": "candidate"},
        "sampling": {"percent": 100},
        "durationMinutes": 60,
        "evaluationPeriodMinutes": 10,
        "gates": GATES,
        "comparison": COMPARISON,
        **extra,
    }


def _run(cloud: LocalCloud, name: str, test: dict[str, Any]) -> Outcome:
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=name, input=json.dumps(test)
    )
    execution = cloud.wait_for_execution(started["executionArn"], timeout=900)
    s3 = cloud.client("s3")
    bucket, prefix = cloud.outputs["DataBucketName"], f"reports/{ENDPOINT}/{name}"
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/report.json")["Body"].read())
    html = s3.get_object(Bucket=bucket, Key=f"{prefix}/report.html")["Body"].read().decode()
    return Outcome(execution=execution, report=report, html=html)


@pytest.fixture(scope="module")
def plain(cloud: LocalCloud) -> Outcome:
    return _run(cloud, "noisy-v2-plain", _test(durationMinutes=30))


@pytest.fixture(scope="module")
def calibrated(cloud: LocalCloud, plain: Outcome) -> Outcome:
    # after the plain test: one test holds the endpoint at a time
    return _run(cloud, "noisy-v2-calibrated", _test(calibration={"bakeMinutes": 60}))


def _gates(outcome: Outcome) -> dict[str, dict[str, Any]]:
    return {gate["name"]: gate for gate in outcome.report["evaluation"]["gates"]}


def test_the_plain_gate_rejects_a_candidate_as_noisy_as_production(plain: Outcome) -> None:
    # GIVEN a candidate that is production's model, noise and all WHEN judged against 99 % agreement alone
    assert plain.execution["status"] == "SUCCEEDED"
    # THEN it fails the agreement gate: a copy of production agrees with production on about 94 % of pairs
    assert plain.report["outcome"] == "removed"
    gate = _gates(plain)["within-tolerance-rate"]
    assert gate["status"] == "fail"
    assert gate["upper"] < 0.98
    expected_agreement = 1 - 2 * NOISE * (1 - NOISE)
    assert gate["lower"] <= expected_agreement <= gate["upper"]
    assert plain.report["evaluation"]["noise"] is None


def test_the_calibrated_gate_promotes_it_judging_only_the_disagreement_beyond_the_noise(calibrated: Outcome) -> None:
    # GIVEN the same candidate, after an A/A phase WHEN the test decides THEN it is promoted
    assert calibrated.execution["status"] == "SUCCEEDED"
    assert calibrated.report["outcome"] == "promoted", calibrated.report["reason"]
    gates = _gates(calibrated)
    assert "within-tolerance-rate" not in gates  # the plain gate gives way to the calibrated one
    excess = gates["within-tolerance-excess"]
    assert excess["status"] == "pass"
    assert excess["method"] == "Newcombe"
    assert excess["threshold"] == pytest.approx(0.02)
    assert excess["lower"] <= excess["observed"] <= excess["upper"] <= 0.02
    # AND the latency gates were judged relative to the A/A median ratios
    assert "divided by the A/A median ratio" in gates["latency-p90-ratio"]["detail"]


def test_the_report_shows_the_noise_floor_beside_the_candidate(calibrated: Outcome) -> None:
    # GIVEN the calibrated test's report WHEN read THEN its evaluation carries the noise floor the gates used
    evaluation = calibrated.report["evaluation"]
    noise = evaluation["noise"]
    assert noise["variant"] == "candidate-noise"
    assert noise["paired"] >= 1000
    noise_rate = noise["toleranceMismatches"] / noise["paired"]
    assert 0.03 < noise_rate < 0.09  # about 2 x 3 % x 97 %: the model disagrees with itself
    assert evaluation["phase"] == "candidate"
    assert evaluation["candidateStartedAt"] > noise["at"]
    # AND the HTML page has the side-by-side table
    assert "Noise calibration (A/A)" in calibrated.html
    assert "within-tolerance-excess" in calibrated.html


def test_the_endpoint_ends_on_the_candidate_with_no_test_config_left(cloud: LocalCloud, calibrated: Outcome) -> None:
    # GIVEN the calibrated test promoted its candidate WHEN the endpoint is read THEN it runs the candidate alone
    sagemaker = cloud.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert [variant["VariantName"] for variant in endpoint["ProductionVariants"]] == ["candidate"]
    assert not endpoint.get("ShadowProductionVariants")
    # AND the A/A config and the candidate's shadow config are gone
    names = {config["EndpointConfigName"] for config in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    assert not any(name.endswith(("-noise", "-shadow")) for name in names), names


def test_follow_prints_the_noise_and_the_candidate(calibrated: Outcome, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the calibrated test's execution WHEN `shadowscale shadow follow` reads it THEN noise is shown
    capsys.readouterr()
    assert cli(["shadow", "follow", "noisy-v2-calibrated", "--poll-seconds", "0.05", "--stack-name", STACK]) == 0
    followed = capsys.readouterr().out
    assert "noise (A/A) vs candidate" in followed
    assert "disagreement (beyond tolerance): noise " in followed
