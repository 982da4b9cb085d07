"""Response diffs end to end on the local cloud: a simulated endpoint serves traffic while a real shadow
test runs (the deployed state machine); SageMaker-format capture lands in the stack's bucket late and out
of order; S3 announces each object to the queue; the capture_diff function pairs and diffs them; the
lifecycle's agreement gate reads the running summary; the close request finalises it. The numbers must
match what the simulated models are known to do."""

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
ENDPOINT = "fraud-scorer"
FLIP_RATE = 0.2


@dataclass
class Outcome:
    cloud: LocalCloud
    execution: dict[str, Any]
    summary: dict[str, Any]
    report: dict[str, Any]
    capture: dict[str, int]  # variant → capture records written by the simulated endpoint


# How SageMaker maps a shadow's weight to the share of requests it copies is undocumented: both ways.
@pytest.fixture(scope="module", params=["weight-ratio", "all"])
def outcome(request: pytest.FixtureRequest) -> Iterator[Outcome]:
    clock = AcceleratedClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    with LocalCloud(root=REPO, clock=clock, stack_name="response-diffs-e2e") as cloud:
        sagemaker = cloud.client("sagemaker")
        create_models(sagemaker, "scorer-v1", "scorer-v2")
        sagemaker.create_endpoint_config(
            EndpointConfigName="scorer-config-1",
            ProductionVariants=[
                {
                    "VariantName": "primary",
                    "ModelName": "scorer-v1",
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.m5.xlarge",
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
        create_endpoint_once_visible(sagemaker, ENDPOINT, "scorer-config-1", cloud.advance)
        production = ModelServer(output_content_type="application/json")
        simulation = cloud.simulate(
            ENDPOINT,
            TrafficPattern.flat(20),
            models={"primary": production, "candidate": replace(production, label_flip_rate=FLIP_RATE)},
            # Half the clients set an InferenceId; the shadow's eventId is its own: the cascade must cope.
            capture=CaptureSimulation(limit_per_step=60, inference_id_share=0.5, delivery_delay_seconds=180),
        )
        simulation.shadow_copies = request.param
        test = {
            "endpointName": ENDPOINT,
            "candidate": {"modelName": "scorer-v2", "instanceType": "ml.m5.xlarge", "variantName": "candidate"},
            "sampling": {"percent": 50},
            "durationMinutes": 40,
            "evaluationPeriodMinutes": 10,
            "gates": {"minInvocations": 100, "minPairedResponses": 200, "agreement": {"minWithinToleranceRate": 0.9}},
            "comparison": {"comparator": "classification", "classification": {"labelPath": "label"}},
        }
        started = cloud.client("stepfunctions").start_execution(
            stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name="scorer-v2-test", input=json.dumps(test)
        )
        execution = cloud.wait_for_execution(started["executionArn"])
        cloud.advance(20 * 60)  # late capture lands, then the close request comes due
        s3 = cloud.client("s3")
        bucket = cloud.outputs["DataBucketName"]

        def read(key: str) -> dict[str, Any]:
            loaded: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            return loaded

        capture: dict[str, int] = {}
        for url in simulation.capture_files:
            key = url.split("/", 3)[3]
            if key.startswith("capture/scorer-v2-test/"):
                variant = key.split("/")[3]
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                capture[variant] = capture.get(variant, 0) + len(body.splitlines())
        yield Outcome(
            cloud=cloud,
            execution=execution,
            summary=read("diffs/scorer-v2-test/summary.json"),
            report=read(f"reports/{ENDPOINT}/scorer-v2-test/report.json"),
            capture=capture,
        )


def test_every_shadow_answer_is_paired_with_productions_and_every_record_is_accounted_for(outcome: Outcome) -> None:
    summary, capture = outcome.summary, outcome.capture
    assert capture["candidate"] > 300
    assert summary["final"] is True
    assert summary["pending"] == 0
    # every shadow record has a production twin (it answered the same request); production has more
    assert summary["paired"] == capture["candidate"]
    unmatched = capture["primary"] - capture["candidate"]  # none when SageMaker copies every request
    assert summary["unpaired"] == ({"no-shadow-twin": unmatched} if unmatched else {})
    assert summary["recordsRead"] == capture["primary"] + capture["candidate"]
    assert summary["quarantined"] == {}
    # about half by InferenceId, the rest by the request's fingerprint (the shadow's eventId is its own)
    assert set(summary["pairedBy"]) == {"inferenceId", "fingerprint"}
    assert 0.35 < summary["pairedBy"]["inferenceId"] / summary["paired"] < 0.65


def test_agreement_matches_the_candidates_known_label_flip_rate(outcome: Outcome) -> None:
    summary = outcome.summary
    paired = summary["paired"]
    sigma = (FLIP_RATE * (1 - FLIP_RATE) / paired) ** 0.5
    assert abs(summary["labelAgreementRate"] - (1 - FLIP_RATE)) < 4 * sigma
    assert summary["withinToleranceRate"] == summary["labelAgreementRate"]
    assert summary["mismatchSamples"]
    sample = summary["mismatchSamples"][0]
    assert json.loads(sample["productionOutput"])["label"] != json.loads(sample["shadowOutput"])["label"]


def test_the_lifecycle_gated_on_the_diffs_and_its_report_carries_them(outcome: Outcome) -> None:
    assert outcome.execution["status"] == "SUCCEEDED"
    gates = {gate["name"]: gate for gate in outcome.report["evaluation"]["gates"]}
    assert gates["within-tolerance-rate"]["status"] == "fail"
    assert gates["within-tolerance-rate"]["observed"] == pytest.approx(1 - FLIP_RATE, abs=0.08)
    assert gates["min-paired-responses"]["status"] == "pass"
    assert outcome.report["outcome"] == "removed"
    assert outcome.report["diffSummary"]["paired"] > 0


def test_closed_windows_are_published_as_files_and_emf_metrics(outcome: Outcome) -> None:
    cloud = outcome.cloud
    listed = cloud.client("s3").list_objects_v2(
        Bucket=cloud.outputs["DataBucketName"], Prefix="diffs/scorer-v2-test/windows/"
    )
    windows = [item["Key"] for item in listed.get("Contents", [])]
    assert len(windows) >= 10  # 2-minute windows over a 40-minute test
    assert cloud.runtime is not None
    documents = [
        json.loads(line)
        for invocation in cloud.runtime.invocations
        if invocation.function_name.endswith("capture-diff")
        for line in invocation.log_lines
        if line.startswith("{") and '"CloudWatchMetrics"' in line and '"ShadowTest"' in line
    ]
    assert len(documents) == len(windows)
    [directive] = documents[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Shadowscale"
    assert directive["Dimensions"] == [["EndpointName", "ShadowTest"]]
    assert {"PairsCompared", "WithinToleranceRate", "LabelAgreementRate"} <= {m["Name"] for m in directive["Metrics"]}
    assert sum(document["PairsCompared"][0] for document in documents) == outcome.summary["paired"]
