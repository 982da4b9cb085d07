"""The simulated endpoint: SageMaker's metrics per variant (shadow too), latency that follows load per
instance, error rates, deterministic model servers, data capture in SageMaker's format, and alarms
evaluated from those metrics and delivered to the stack's functions."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws
from shadowscale.capacity.policy import parse_policy
from shadowscale.capacity.policy_store import PolicyRepository
from shadowscale_localcloud.alarm_evaluation import AlarmEvaluator
from shadowscale_localcloud.cloudwatch_gaps import CloudWatchPercentiles, CloudWatchValueCounts
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.sagemaker_gaps import SageMakerGapFill
from shadowscale_localcloud.simulated_endpoint import (
    CaptureSimulation,
    ModelServer,
    SimulatedEndpoint,
    TrafficPattern,
)

from tests.integration.conftest import ACCOUNT, REGION, Clock

REPO = Path(__file__).resolve().parents[2]
MONDAY_0500_UTC = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
ENDPOINT = "scoring"
BUCKET = "capture-bucket"
PRODUCTION = ModelServer()
SAGEMAKER_METRICS = {
    "Invocations",
    "InvocationsPerInstance",
    "ModelLatency",
    "OverheadLatency",
    "Invocation4XXErrors",
    "Invocation5XXErrors",
    "InvocationModelErrors",
}
CAPTURE_KEY = re.compile(
    r"^captures/scoring/(?P<variant>primary|shadow)/2026/11/23/(?P<hour>\d{2})/"
    r"(?P<minute>\d{2})-(?P<second>\d{2})-(?P<millis>\d{3})-(?P<uuid>[0-9a-f-]{36})\.jsonl$"
)


@dataclass
class World:
    """moto with the local cloud's SageMaker and CloudWatch gaps filled, on a clock the test moves."""

    clock: Clock
    gaps: SageMakerGapFill
    sagemaker: Any
    cloudwatch: Any
    s3: Any

    def endpoint(
        self,
        *,
        instances: int = 1,
        shadow: tuple[int, float] | None = None,
        capture: dict[str, Any] | None = None,
        shadow_instance_type: str = "ml.m5.large",
    ) -> None:
        """`primary` (weight 1) and, when asked, a `shadow` variant (instances, weight) and data capture."""
        for model in ("primary-model", "candidate-model"):
            self.sagemaker.create_model(
                ModelName=model,
                PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scoring:{model}"},
                ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution",
            )

        def variant(
            name: str, model: str, count: int, weight: float, instance_type: str = "ml.m5.large"
        ) -> dict[str, Any]:
            return {
                "VariantName": name,
                "ModelName": model,
                "InitialInstanceCount": count,
                "InstanceType": instance_type,
                "InitialVariantWeight": weight,
            }

        config: dict[str, Any] = {
            "EndpointConfigName": "scoring-config",
            "ProductionVariants": [variant("primary", "primary-model", instances, 1.0)],
        }
        if shadow is not None:
            config["ShadowProductionVariants"] = [variant("shadow", "candidate-model", *shadow, shadow_instance_type)]
        if capture is not None:
            self.s3.create_bucket(Bucket=BUCKET)
            config["DataCaptureConfig"] = {"DestinationS3Uri": f"s3://{BUCKET}/captures", **capture}
        self.sagemaker.create_endpoint_config(**config)
        self.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="scoring-config")

    def simulate(self, traffic: TrafficPattern, **options: Any) -> SimulatedEndpoint:
        return SimulatedEndpoint(ENDPOINT, traffic, **options).start_at(self.clock.now())

    def run(self, simulation: SimulatedEndpoint, minutes: float) -> None:
        """Move the clock in step with the simulation, as the local cloud does."""
        target = self.clock.now() + timedelta(minutes=minutes)
        while (due := simulation.next_due()) is not None and due <= target:
            self.clock.current = max(self.clock.current, due)
            simulation.run_until(due)
        self.clock.current = target

    def metric(self, name: str, variant: str, stat: str, *, period: int = 60, namespace: str = "AWS/SageMaker") -> Any:
        result = self.cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": name,
                            "Dimensions": [
                                {"Name": "EndpointName", "Value": ENDPOINT},
                                {"Name": "VariantName", "Value": variant},
                            ],
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                }
            ],
            StartTime=MONDAY_0500_UTC,
            EndTime=self.clock.now(),
            ScanBy="TimestampAscending",
        )
        return result["MetricDataResults"][0]["Values"]

    def total(self, name: str, variant: str) -> float:
        [value] = self.metric(name, variant, "Sum", period=24 * 3600)
        return float(value)

    def capture_files(self) -> dict[str, list[dict[str, Any]]]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {
            item["Key"]: [
                json.loads(line)
                for line in self.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode().splitlines()
            ]
            for item in listed
        }


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(), CloudWatchPercentiles(), CloudWatchValueCounts():
        clock = Clock(current=MONDAY_0500_UTC)
        with SageMakerGapFill(clock=clock.now, update_seconds=45) as gaps:
            yield World(
                clock=clock,
                gaps=gaps,
                sagemaker=boto3.client("sagemaker", region_name=REGION),
                cloudwatch=boto3.client("cloudwatch", region_name=REGION),
                s3=boto3.client("s3", region_name=REGION),
            )


FULL_CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
}


# --- metrics ------------------------------------------------------------------------------------------


def test_given_shadow_variant_when_traffic_flows_then_each_variant_publishes_sagemaker_metrics_under_its_name(
    world: World,
) -> None:
    world.endpoint(instances=2, shadow=(1, 0.5))
    simulation = world.simulate(TrafficPattern.flat(20))

    world.run(simulation, 10)

    listed = world.cloudwatch.list_metrics(Namespace="AWS/SageMaker")["Metrics"]
    names = {
        (metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]}["VariantName"])
        for metric in listed
    }
    for variant in ("primary", "shadow"):
        assert {name for name, named in names if named == variant} == SAGEMAKER_METRICS
        assert world.metric("CPUUtilization", variant, "Average", namespace="/aws/sagemaker/Endpoints")
        assert world.metric("MemoryUtilization", variant, "Average", namespace="/aws/sagemaker/Endpoints")
    primary = world.total("Invocations", "primary")
    assert primary == sum(step.requests for step in simulation.history if step.variant == "primary")
    assert 0.4 < world.total("Invocations", "shadow") / primary < 0.6  # shadow weight 0.5 of production 1.0
    assert world.total("InvocationsPerInstance", "primary") == primary / 2
    assert 10 * 60 * 20 * 0.9 < primary < 10 * 60 * 20 * 1.1


def test_given_a_gpu_shadow_then_only_it_publishes_gpu_utilisation_and_every_variant_its_disk(world: World) -> None:
    # GIVEN a CPU production variant and a shadow on a GPU instance type (ml.g4dn)
    world.endpoint(instances=1, shadow=(1, 1.0), shadow_instance_type="ml.g4dn.xlarge")
    simulation = world.simulate(TrafficPattern.flat(20))

    # WHEN traffic flows
    world.run(simulation, 5)

    # THEN the instance namespace has disk for both, GPU only for the GPU variant, all within 0-100 %
    def instance_metric(name: str, variant: str) -> list[float]:
        return list(world.metric(name, variant, "Average", namespace="/aws/sagemaker/Endpoints"))

    for variant in ("primary", "shadow"):
        assert instance_metric("DiskUtilization", variant)
        assert all(0.0 <= value <= 100.0 for value in instance_metric("DiskUtilization", variant))
    for name in ("GPUUtilization", "GPUMemoryUtilization"):
        assert instance_metric(name, "primary") == []
        gpu = instance_metric(name, "shadow")
        assert gpu
        assert all(0.0 < value <= 100.0 for value in gpu)


def test_model_latency_is_published_in_microseconds_with_percentiles_as_the_history_reports(world: World) -> None:
    world.endpoint()
    simulation = world.simulate(TrafficPattern.flat(25))

    world.run(simulation, 5)

    p50, p90, p99 = (world.metric("ModelLatency", "primary", stat) for stat in ("p50", "p90", "p99"))
    history = [step for step in simulation.history if step.variant == "primary"]
    assert p90 == [pytest.approx(step.latency_p90_ms * 1000) for step in history if step.latency_p90_ms]
    assert all(a < b < c for a, b, c in zip(p50, p90, p99, strict=True))
    statistics = world.cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
        StartTime=MONDAY_0500_UTC,
        EndTime=world.clock.now(),
        Period=300,
        Statistics=["SampleCount", "Minimum"],
    )["Datapoints"]
    assert statistics[0]["Unit"] == "Microseconds"
    assert statistics[0]["SampleCount"] == sum(step.succeeded for step in history)
    assert statistics[0]["Minimum"] > 1000  # microseconds: the fastest request takes milliseconds


# --- latency and load ---------------------------------------------------------------------------------


@pytest.mark.parametrize("instances", [1, 2])
def test_given_more_load_per_instance_then_p90_latency_grows(world: World, instances: int) -> None:
    world.endpoint(instances=instances)
    simulation = world.simulate(
        TrafficPattern(base_rps=5 * instances, spikes=(), noise=0.0)
        .with_spike(MONDAY_0500_UTC + timedelta(minutes=5), 5, 15 * instances, ramp_seconds=0)
        .with_spike(MONDAY_0500_UTC + timedelta(minutes=10), 5, 30 * instances, ramp_seconds=0)
    )

    world.run(simulation, 15)

    p90 = world.metric("ModelLatency", "primary", "p90", period=300)
    per_instance = [value / instances for value in world.metric("InvocationsPerInstance", "primary", "Sum", period=300)]
    assert per_instance[0] < per_instance[1] < per_instance[2]
    assert p90[0] < p90[1] < p90[2]
    assert p90[2] > 3 * p90[0]  # at 87 % utilisation queueing dominates


def test_given_overload_when_scaled_out_then_latency_drops_once_the_update_completes(world: World) -> None:
    world.gaps.update_seconds = 150
    world.endpoint(instances=1)
    simulation = world.simulate(TrafficPattern.flat(45, noise=0.0))
    world.run(simulation, 5)
    overloaded = simulation.latest("primary")
    assert overloaded is not None
    assert overloaded.server_errors > 0  # 45 requests/s against a capacity of 40

    world.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 3}]
    )
    world.run(simulation, 2)
    while_updating = simulation.latest("primary")
    world.run(simulation, 3)
    after = simulation.latest("primary")

    assert while_updating is not None
    assert after is not None
    assert while_updating.instances == 1  # new instances take load once the update ends
    assert after.instances == 3
    assert after.server_errors == 0
    assert overloaded.latency_p90_ms is not None
    assert after.latency_p90_ms is not None
    assert after.latency_p90_ms < overloaded.latency_p90_ms / 5
    latencies = world.metric("ModelLatency", "primary", "p90")
    assert latencies[-1] < latencies[0] / 5


# --- errors -------------------------------------------------------------------------------------------


def test_given_error_rates_then_counts_and_rates_are_published_per_variant(world: World) -> None:
    world.endpoint(instances=1, shadow=(1, 1.0))
    flaky = replace(PRODUCTION, client_error_rate=0.02, server_error_rate=0.05, model_error_rate=0.01)
    simulation = world.simulate(TrafficPattern.flat(10), models={"shadow": flaky})

    world.run(simulation, 30)

    invocations = world.total("Invocations", "shadow")
    client = world.total("Invocation4XXErrors", "shadow")
    server = world.total("Invocation5XXErrors", "shadow")
    model = world.total("InvocationModelErrors", "shadow")
    assert 0.015 < client / invocations < 0.025
    assert 0.04 < server / invocations < 0.06
    assert model > client + server  # model errors also count the other failures (timeouts)
    [rate] = world.metric("Invocation5XXErrors", "shadow", "Average", period=1800)
    assert rate == pytest.approx(server / invocations)
    [succeeded] = world.metric("ModelLatency", "shadow", "SampleCount", period=1800)
    assert succeeded == invocations - model
    assert world.total("InvocationModelErrors", "primary") == 0  # the shadow's failures are its own


def test_given_load_beyond_capacity_then_the_excess_fails_with_5xx(world: World) -> None:
    world.endpoint(instances=1)
    simulation = world.simulate(TrafficPattern.flat(80, noise=0.0))

    world.run(simulation, 10)

    share = world.total("Invocation5XXErrors", "primary") / world.total("Invocations", "primary")
    assert 0.45 < share < 0.55  # one instance serves 40 of the 80 requests/s


# --- deterministic model servers ------------------------------------------------------------------------


def inputs(count: int) -> list[str]:
    import random

    rng = random.Random(3)
    return [",".join(f"{rng.uniform(-1, 1):.4f}" for _ in range(8)) for _ in range(count)]


def test_model_server_answers_are_a_fixed_function_of_the_input() -> None:
    bodies = inputs(500)
    identical = replace(PRODUCTION)
    assert [PRODUCTION.respond(body) for body in bodies] == [identical.respond(body) for body in bodies]
    assert PRODUCTION.respond(bodies[0]) == PRODUCTION.respond(bodies[0])
    assert ModelServer(model=replace(PRODUCTION.model, seed=8)).respond(bodies[0]) != PRODUCTION.respond(bodies[0])


def test_candidate_differs_from_production_in_the_known_way() -> None:
    bodies = inputs(4000)
    drifted = replace(PRODUCTION, score_drift=0.001)
    flipped = replace(PRODUCTION, label_flip_rate=0.1)

    drift = [abs(drifted.predict(body)[0] - PRODUCTION.predict(body)[0]) for body in bodies]
    flips = sum(flipped.predict(body)[1] != PRODUCTION.predict(body)[1] for body in bodies) / len(bodies)

    assert 0 < max(drift) <= 0.001
    assert 0.08 < flips < 0.12
    assert json.loads(replace(PRODUCTION, output_content_type="application/json").respond(bodies[0])) == {
        "score": round(PRODUCTION.predict(bodies[0])[0], 6),
        "label": PRODUCTION.predict(bodies[0])[1],
    }


def run_captured_minutes(seed: int) -> tuple[list[Any], dict[str, list[dict[str, Any]]]]:
    with mock_aws(), CloudWatchValueCounts():
        clock = Clock(current=MONDAY_0500_UTC)
        with SageMakerGapFill(clock=clock.now) as gaps:
            world = World(
                clock,
                gaps,
                boto3.client("sagemaker", region_name=REGION),
                boto3.client("cloudwatch", region_name=REGION),
                boto3.client("s3", region_name=REGION),
            )
            world.endpoint(shadow=(1, 0.5), capture={**FULL_CAPTURE, "InitialSamplingPercentage": 10})
            simulation = world.simulate(TrafficPattern.flat(5), seed=seed)
            world.run(simulation, 6)
            return simulation.history, world.capture_files()


def test_given_same_seeds_when_run_again_then_same_traffic_answers_and_capture_files() -> None:
    first, again, other = run_captured_minutes(1), run_captured_minutes(1), run_captured_minutes(2)

    assert first == again
    assert first[1]  # there were capture files to compare
    assert other[1] != first[1]


# --- data capture --------------------------------------------------------------------------------------


def test_given_capture_when_traffic_flows_then_records_and_keys_are_in_sagemakers_format(world: World) -> None:
    world.endpoint(shadow=(1, 1.0), capture=FULL_CAPTURE)
    simulation = world.simulate(TrafficPattern.flat(2), models={"shadow": replace(PRODUCTION, label_flip_rate=0.5)})

    world.run(simulation, 5)

    files = world.capture_files()
    assert files
    for key, records in files.items():
        match = CAPTURE_KEY.match(key)
        assert match is not None, key
        first = datetime.strptime(records[0]["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert (match["hour"], match["minute"], match["second"]) == (f"{first:%H}", f"{first:%M}", f"{first:%S}")
        for record in records:
            assert list(record) == ["captureData", "eventMetadata", "eventVersion"]
            assert record["eventVersion"] == "0"
            request, response = record["captureData"]["endpointInput"], record["captureData"]["endpointOutput"]
            assert request == {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": request["data"],
                "encoding": "CSV",
            }
            assert list(response) == ["observedContentType", "mode", "data", "encoding"]
            assert (response["mode"], response["encoding"]) == ("OUTPUT", "CSV")
            assert re.fullmatch(r"0\.\d{6},[01]|1\.000000,1", response["data"])
            if match["variant"] == "primary":
                assert response["data"] == PRODUCTION.respond(request["data"])
            metadata = record["eventMetadata"]
            assert list(metadata) == ["eventId", "inferenceId", "inferenceTime"]
            assert uuid.UUID(metadata["eventId"]).version == 4
    assert max(len(records) for records in files.values()) > 1  # several records per file


def test_capture_files_roll_every_minute_per_variant_and_arrive_two_minutes_late(world: World) -> None:
    world.endpoint(shadow=(1, 1.0), capture=FULL_CAPTURE)
    simulation = world.simulate(TrafficPattern.flat(2))

    world.run(simulation, 2 + 59 / 60)  # 05:02:59: the 05:00 minute's files are not there yet
    before = world.capture_files()
    world.run(simulation, 1 / 60)  # 05:03:00
    after = world.capture_files()
    world.run(simulation, 3)

    assert before == {}
    assert sorted(CAPTURE_KEY.match(key)["variant"] for key in after) == ["primary", "shadow"]  # type: ignore[index]
    minutes = sorted({(m["variant"], m["minute"]) for key in world.capture_files() if (m := CAPTURE_KEY.match(key))})
    assert minutes == [(variant, f"{minute:02d}") for variant in ("primary", "shadow") for minute in range(4)]


@pytest.mark.parametrize("shares_event_id", [False, True])
def test_shadow_record_twins_its_production_record(world: World, shares_event_id: bool) -> None:
    world.endpoint(shadow=(1, 1.0), capture=FULL_CAPTURE)
    simulation = world.simulate(
        TrafficPattern.flat(2), capture=CaptureSimulation(shadow_shares_event_id=shares_event_id)
    )

    world.run(simulation, 6)

    records = [(key, record) for key, file in world.capture_files().items() for record in file]
    production = {r["eventMetadata"]["inferenceId"]: r for key, r in records if "/primary/" in key}
    shadow = {r["eventMetadata"]["inferenceId"]: r for key, r in records if "/shadow/" in key}
    assert shadow
    assert set(shadow) <= set(production)
    for inference_id, twin in shadow.items():
        original = production[inference_id]
        assert twin["captureData"]["endpointInput"] == original["captureData"]["endpointInput"]
        same_event = twin["eventMetadata"]["eventId"] == original["eventMetadata"]["eventId"]
        assert same_event is shares_event_id


def test_sampling_percentage_sets_the_captured_share_of_successful_requests(world: World) -> None:
    world.endpoint(capture={**FULL_CAPTURE, "InitialSamplingPercentage": 20})
    simulation = world.simulate(TrafficPattern.flat(1), capture=CaptureSimulation(inference_id_share=0.5))

    world.run(simulation, 63)

    records = [record for file in world.capture_files().values() for record in file]
    succeeded = sum(step.succeeded for step in simulation.history if step.at < MONDAY_0500_UTC + timedelta(hours=1))
    assert 0.15 < len(records) / succeeded < 0.25
    with_id = sum("inferenceId" in record["eventMetadata"] for record in records) / len(records)
    assert 0.35 < with_id < 0.65


def test_capture_is_capped_per_step_for_speed(world: World) -> None:
    world.endpoint(capture=FULL_CAPTURE)
    simulation = world.simulate(TrafficPattern.flat(30), capture=CaptureSimulation(limit_per_step=7))

    world.run(simulation, 5)

    assert {len(records) for records in world.capture_files().values()} == {7}


def test_given_capture_stopped_then_no_files(world: World) -> None:
    world.endpoint(capture={**FULL_CAPTURE, "EnableCapture": False})
    simulation = world.simulate(TrafficPattern.flat(5))

    world.run(simulation, 5)

    assert world.capture_files() == {}
    assert simulation.capture_files == []


def test_given_missing_bucket_then_capture_is_dropped_and_reported_while_traffic_goes_on(world: World) -> None:
    world.endpoint(capture=FULL_CAPTURE)
    world.s3.delete_bucket(Bucket=BUCKET)
    simulation = world.simulate(TrafficPattern.flat(2))

    world.run(simulation, 5)

    assert simulation.capture_files == []
    assert len(simulation.capture_failures) == 3  # the 05:00 to 05:02 files were due by 05:05
    assert all(failure.endswith(": MissingBucket") for failure in simulation.capture_failures)
    assert len([step for step in simulation.history if step.requests]) == 5


@pytest.mark.parametrize(
    ("capture", "output_type", "expected_output"),
    [
        ({"CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}, "application/json", "JSON"),
        ({"CaptureContentTypeHeader": {}}, "text/csv", "BASE64"),
        ({"CaptureOptions": [{"CaptureMode": "Input"}]}, "text/csv", None),
    ],
)
def test_capture_options_and_content_types_shape_each_record(
    world: World, capture: dict[str, Any], output_type: str, expected_output: str | None
) -> None:
    world.endpoint(capture={**FULL_CAPTURE, **capture})
    server = replace(PRODUCTION, output_content_type=output_type)
    simulation = world.simulate(TrafficPattern.flat(2), default_model=server)

    world.run(simulation, 4)

    record = next(iter(world.capture_files().values()))[0]
    request = record["captureData"]["endpointInput"]
    text = base64.b64decode(request["data"]).decode() if request["encoding"] == "BASE64" else request["data"]
    output = record["captureData"].get("endpointOutput")
    if expected_output is None:
        assert output is None
        return
    assert output["encoding"] == expected_output
    answer = base64.b64decode(output["data"]).decode() if expected_output == "BASE64" else output["data"]
    assert answer == server.respond(text)


def test_capture_files_written_through_s3_fire_the_bucket_notification(world: World) -> None:
    world.endpoint(capture=FULL_CAPTURE)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="capture-files")["QueueUrl"]
    world.s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:capture-files", "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    simulation = world.simulate(TrafficPattern.flat(2))

    world.run(simulation, 4)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    keys = {
        unquote_plus(record["s3"]["object"]["key"])  # S3 events carry keys URL-encoded
        for message in messages
        for record in json.loads(message["Body"]).get("Records", [])
    }
    assert keys == set(world.capture_files())


# --- alarm evaluation --------------------------------------------------------------------------------


def latency_alarm(world: World, name: str, **settings: Any) -> None:
    world.cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        ExtendedStatistic="p90",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
        Period=60,
        Threshold=100000.0,
        ComparisonOperator="GreaterThanThreshold",
        **settings,
    )


def evaluate_each_minute(world: World, simulation: SimulatedEndpoint, evaluator: AlarmEvaluator, minutes: int) -> None:
    for _ in range(minutes):
        world.run(simulation, 1)
        evaluator.evaluate(world.clock.now())


def test_given_m_of_n_alarm_when_latency_breaches_then_alarm_with_cloudwatch_reason_data(world: World) -> None:
    world.endpoint(instances=1)
    spike_start = MONDAY_0500_UTC + timedelta(minutes=5)
    # Breaching minutes 05:05 and 05:07 with a good 05:06 between: 2 of 3 reach ALARM at 05:08.
    traffic = (
        TrafficPattern.flat(10, noise=0.0)
        .with_spike(spike_start, 1, 26, 0)
        .with_spike(spike_start + timedelta(minutes=2), 1, 26, 0)
    )
    simulation = world.simulate(traffic)
    latency_alarm(world, "m-of-n", EvaluationPeriods=3, DatapointsToAlarm=2)
    evaluator = AlarmEvaluator()

    evaluate_each_minute(world, simulation, evaluator, 7)
    state_before = world.cloudwatch.describe_alarms(AlarmNames=["m-of-n"])["MetricAlarms"][0]["StateValue"]
    evaluate_each_minute(world, simulation, evaluator, 1)
    [alarm] = world.cloudwatch.describe_alarms(AlarmNames=["m-of-n"])["MetricAlarms"]

    assert state_before == "OK"
    assert alarm["StateValue"] == "ALARM"
    assert [(change.at, change.state) for change in evaluator.changes] == [
        (MONDAY_0500_UTC + timedelta(minutes=8), "ALARM")
    ]
    reason_data = json.loads(alarm["StateReasonData"])
    assert list(reason_data) == [
        "version",
        "queryDate",
        "startDate",
        "statistic",
        "period",
        "recentDatapoints",
        "threshold",
        "evaluatedDatapoints",
    ]
    p90 = world.metric("ModelLatency", "primary", "p90")
    assert reason_data["recentDatapoints"] == p90[5:8]  # oldest first
    assert reason_data["threshold"] == 100000.0
    assert reason_data["startDate"] == "2026-11-23T05:05:00.000+0000"
    assert reason_data["queryDate"] == "2026-11-23T05:08:00.000+0000"
    assert [point["timestamp"] for point in reason_data["evaluatedDatapoints"]] == [
        "2026-11-23T05:07:00.000+0000",
        "2026-11-23T05:05:00.000+0000",
    ]
    assert alarm["StateReason"].startswith("Threshold Crossed: 2 out of the last 3 datapoints [")
    assert alarm["StateReason"].endswith("(minimum 2 datapoints for OK -> ALARM transition).")


@pytest.mark.parametrize(
    ("treatment", "expected"),
    [("missing", "INSUFFICIENT_DATA"), ("notBreaching", "OK"), ("breaching", "ALARM"), ("ignore", "ALARM")],
)
def test_given_no_data_then_treat_missing_data_decides(world: World, treatment: str, expected: str) -> None:
    world.endpoint(instances=1)
    simulation = world.simulate(TrafficPattern.flat(0.0, noise=0.0))  # no requests: no latency datapoints
    latency_alarm(world, "idle", EvaluationPeriods=2, TreatMissingData=treatment)
    world.cloudwatch.set_alarm_state(AlarmName="idle", StateValue="ALARM", StateReason="test")
    evaluator = AlarmEvaluator()

    evaluate_each_minute(world, simulation, evaluator, 5)

    [alarm] = world.cloudwatch.describe_alarms(AlarmNames=["idle"])["MetricAlarms"]
    assert alarm["StateValue"] == expected
    if expected == "INSUFFICIENT_DATA":
        assert alarm["StateReason"] == "Insufficient Data: 2 datapoints were unknown."
    if expected == "OK":
        assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == []


def test_given_datapoints_to_alarm_equal_to_periods_then_one_good_minute_returns_ok(world: World) -> None:
    world.endpoint(instances=1)
    traffic = TrafficPattern.flat(10, noise=0.0).with_spike(MONDAY_0500_UTC + timedelta(minutes=2), 3, 26, 0)
    simulation = world.simulate(traffic)
    latency_alarm(world, "two-of-two", EvaluationPeriods=2)
    evaluator = AlarmEvaluator()

    evaluate_each_minute(world, simulation, evaluator, 8)

    assert [(change.at.minute, change.state) for change in evaluator.changes] == [(4, "ALARM"), (6, "OK")]


# --- on the local cloud: the stack's functions react -------------------------------------------------------


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(MONDAY_0500_UTC), stack_name="sim-test") as running:
        yield running


SPIKY = "spiky"


def test_given_policy_when_spike_then_alarm_scales_out_latency_drops_and_alarm_returns_ok(cloud: LocalCloud) -> None:
    from shadowscale_localcloud.resources import create_endpoint

    create_endpoint(cloud.client("sagemaker"), SPIKY, {"primary": (1, 1.0)}, cloud.advance)
    PolicyRepository(cloud.client("dynamodb"), cloud.outputs["PolicyTableName"]).put(
        parse_policy(
            {
                "apiVersion": "shadowscale/v1",
                "endpoint": SPIKY,
                "variants": [
                    {
                        "name": "primary",
                        "minInstances": 1,
                        "maxInstances": 6,
                        "alarms": [
                            {
                                "alarmName": "spiky-latency",
                                "onAlarm": {
                                    "steps": [
                                        {"lowerBound": 0, "upperBound": 200000, "change": 1},
                                        {"lowerBound": 200000, "change": 2},
                                    ]
                                },
                                "onOk": {"change": -1},
                            }
                        ],
                    }
                ],
            }
        )
    )
    scaler = cloud.outputs["AlarmScalerFunctionArn"]
    cloud.client("cloudwatch").put_metric_alarm(
        AlarmName="spiky-latency",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        ExtendedStatistic="p90",
        Dimensions=[{"Name": "EndpointName", "Value": SPIKY}, {"Name": "VariantName", "Value": "primary"}],
        Period=60,
        EvaluationPeriods=2,
        Threshold=100000.0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[scaler],
        OKActions=[scaler],
    )
    start = cloud.clock.now()
    simulation = cloud.simulate(SPIKY, TrafficPattern.spike(10, 40, start=start + timedelta(minutes=10), minutes=40))

    cloud.advance(30 * 60)

    deliveries = [d for d in cloud.deliveries if d.detail == "spiky-latency"]
    assert [(d.kind, d.error) for d in deliveries] == [("alarm-action", None), ("alarm-action", None)]
    assert cloud.runtime is not None
    alarm_events = [i for i in cloud.runtime.invocations if "alarmData" in i.event]
    assert [i.event["alarmData"]["state"]["value"] for i in alarm_events] == ["ALARM", "OK"]
    reason_data = json.loads(alarm_events[0].event["alarmData"]["state"]["reasonData"])
    assert min(reason_data["recentDatapoints"]) > reason_data["threshold"] == 100000.0
    assert [i.result["outcome"] for i in alarm_events] == ["applied", "deferred"]  # the OK waits for the cooldown
    assert alarm_events[0].result["changes"][0]["instances_after"] == 3  # +2: far beyond the threshold
    history = [step for step in simulation.history if step.variant == "primary"]
    trajectory = [step.instances for step in history]
    assert sorted(set(trajectory), key=trajectory.index) == [1, 3, 2]  # out, then in by one after the cooldown
    overloaded = [s for s in history if s.instances == 1 and s.at >= start + timedelta(minutes=11)]
    assert overloaded
    assert min(s.latency_p90_ms or 0 for s in overloaded) > 100
    assert max(s.latency_p90_ms or 0 for s in history if s.instances > 1) < 100
    [alarm] = cloud.client("cloudwatch").describe_alarms(AlarmNames=["spiky-latency"])["MetricAlarms"]
    assert alarm["StateValue"] == "OK"


def test_a_simulated_day_with_traffic_and_alarms_runs_in_seconds(cloud: LocalCloud) -> None:
    cloud.client("s3").create_bucket(Bucket="day-capture")
    started = time.perf_counter()

    cloud.advance(24 * 3600)

    elapsed = time.perf_counter() - started
    steps = [step for simulation in cloud.simulations for step in simulation.history]
    assert len(steps) >= 24 * 60
    assert elapsed < 30  # measured about 1-2 s; a generous bound that still catches quadratic slow-downs


def test_stack_dead_letter_alarm_follows_the_queue_depth_sqs_publishes_each_minute(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    dead_letters = cloud.outputs["DeadLetterQueueUrl"]
    cloud.evaluate_alarms()  # on already when an endpoint is simulated

    def state() -> str:
        [alarm] = cloud.client("cloudwatch").describe_alarms(AlarmNames=["shadowscale-dev-dead-letters"])[
            "MetricAlarms"
        ]
        return str(alarm["StateValue"])

    cloud.advance(2 * 60)
    quiet = state()
    sqs.send_message(QueueUrl=dead_letters, MessageBody="{}")
    cloud.advance(2 * 60)
    parked = state()
    for message in sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=message["ReceiptHandle"])
    cloud.advance(2 * 60)

    assert (quiet, parked, state()) == ("OK", "ALARM", "OK")
