"""InvokeEndpoint in the server mode: the AWS CLI and boto3 against `make local-up` with a user's model
behind a shadow variant; the answer, the metrics of both variants and both capture records."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.e2e.local_server import REPO, RunningServer, local_server, run_shell

pytestmark = pytest.mark.skipif(
    not (REPO / ".tools" / "awscli" / "bin" / "aws").exists(), reason="make tools installs the AWS CLI"
)

ENDPOINT = "invoke-e2e"
CAPTURE_PREFIX = "invoke-e2e-capture"
ROW = "0.5,-0.2,0.1,0.9,-0.4,0.3,0.0,0.7"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with local_server("--speed", "60", "--model", "fraud-detector-v2=examples.local_model:predict") as running:
        yield running


def _client(server: RunningServer, service: str) -> Any:
    exports = server.exports
    return boto3.Session(
        region_name=exports["AWS_DEFAULT_REGION"],
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
    ).client(service, endpoint_url=exports["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]


def _clock(server: RunningServer) -> datetime:
    with urllib.request.urlopen(f"{server.exports['AWS_ENDPOINT_URL']}/_shadowscale/clock") as answer:
        return datetime.fromisoformat(json.loads(answer.read())["now"])


def _endpoint_with_a_shadow(server: RunningServer, bucket: str) -> None:
    """Production on the simulated model, a shadow on the user's model at full weight, full capture."""
    sagemaker = _client(server, "sagemaker")

    def variant(name: str, model: str) -> dict[str, Any]:
        return {
            "VariantName": name,
            "ModelName": model,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 1.0,
        }

    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{ENDPOINT}-config",
        ProductionVariants=[variant("primary", "fraud-detector-v1")],
        ShadowProductionVariants=[variant("shadow", "fraud-detector-v2")],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{bucket}/{CAPTURE_PREFIX}",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
        },
    )
    _create_endpoint(sagemaker, ENDPOINT, f"{ENDPOINT}-config")


def _create_endpoint(sagemaker: Any, name: str, config_name: str) -> None:
    """Retried while the new config is invisible (a few simulated seconds, as SageMaker's reads are)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
        except sagemaker.exceptions.ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        else:
            return


def _capture_records(server: RunningServer, bucket: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """(variant, inferenceId) → record, waiting (in wall time) until files with every wanted id arrived."""
    s3 = _client(server, "s3")
    deadline = time.monotonic() + 60
    while True:
        found: dict[str, dict[str, Any]] = {}
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"{CAPTURE_PREFIX}/").get("Contents", []):
            variant = item["Key"].split("/")[2]
            for line in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().splitlines():
                record = json.loads(line)
                inference_id = record["eventMetadata"].get("inferenceId")
                if inference_id in {item.split("/")[1] for item in wanted}:
                    found[f"{variant}/{inference_id}"] = record
        if wanted <= set(found):
            return found
        assert time.monotonic() < deadline, f"capture never had {sorted(wanted - set(found))}"
        time.sleep(0.5)


def _sum(server: RunningServer, variant: str, metric: str) -> float:
    now = _clock(server)  # the simulated clock runs ahead of wall time: ask it
    got = _client(server, "cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=metric,
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
        Period=3600 * 2,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in got["Datapoints"]))


def test_the_aws_cli_and_boto3_get_answers_that_count_and_are_captured_for_both_variants(
    server: RunningServer,
) -> None:
    # GIVEN the server with the user's model for fraud-detector-v2 and an endpoint shadowing it
    bucket = server.banner[[line.strip().startswith("DataBucketName") for line in server.banner].index(True)]
    bucket = bucket.split("=", 1)[1].strip()
    _endpoint_with_a_shadow(server, bucket)

    # WHEN the AWS CLI (with the printed exports only) and boto3 invoke it with InferenceIds
    done = run_shell(
        [
            'eval "$(make -s local-env)"',
            f"aws sagemaker-runtime invoke-endpoint --endpoint-name {ENDPOINT} --content-type text/csv "
            f"--body {ROW} --inference-id cli-1 --custom-attributes trace=cli /dev/stdout",
        ],
        server.port,
    )
    from_boto3 = _client(server, "sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, Body=ROW.encode(), ContentType="text/csv", InferenceId="boto3-1"
    )

    # THEN each gets production's answer with SageMaker Runtime's response fields
    cli_body, cli_fields = done.stdout[: done.stdout.index("{")], json.loads(done.stdout[done.stdout.index("{") :])
    assert cli_fields == {
        "ContentType": "text/csv",
        "InvokedProductionVariant": "primary",
        "CustomAttributes": "trace=cli",
    }
    boto3_body = from_boto3["Body"].read().decode()
    assert from_boto3["InvokedProductionVariant"] == "primary"
    assert boto3_body == cli_body  # the simulated model answers a fixed function of its input
    # AND both variants counted both requests
    assert _sum(server, "primary", "Invocations") == 2
    assert _sum(server, "shadow", "Invocations") == 2
    # AND capture holds production's answer and the shadow's (the user's model) for each InferenceId
    records = _capture_records(server, bucket, {"primary/cli-1", "shadow/cli-1", "primary/boto3-1", "shadow/boto3-1"})
    for inference_id in ("cli-1", "boto3-1"):
        production, shadow = records[f"primary/{inference_id}"], records[f"shadow/{inference_id}"]
        assert production["captureData"]["endpointInput"]["data"] == ROW
        assert production["captureData"]["endpointOutput"]["data"] == boto3_body
        assert shadow["captureData"]["endpointInput"]["data"] == ROW
        answer = json.loads(shadow["captureData"]["endpointOutput"]["data"])
        assert answer["model"] == "fraud-detector-v2"
        assert shadow["captureData"]["endpointOutput"]["encoding"] == "JSON"


def test_a_failing_user_model_is_a_model_error_for_the_aws_cli(server: RunningServer) -> None:
    # GIVEN an endpoint whose production variant runs the user's model
    sagemaker = _client(server, "sagemaker")
    sagemaker.create_endpoint_config(
        EndpointConfigName="user-model-config",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "fraud-detector-v2",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    _create_endpoint(sagemaker, "user-model", "user-model-config")

    # WHEN the CLI sends what the model rejects (3 features, not 8)
    done = run_shell(
        [
            'eval "$(make -s local-env)"',
            "aws sagemaker-runtime invoke-endpoint --endpoint-name user-model --content-type text/csv "
            "--body 1,2,3 /dev/stdout",
        ],
        server.port,
        check=False,
    )

    # THEN the CLI fails with SageMaker's ModelError, carrying the model's own message
    assert done.returncode != 0
    assert "(ModelError)" in done.stderr
    assert "Received server error (500) from model" in done.stderr
    assert "expected 8 features, got 3" in done.stderr


def test_at_wall_speed_the_clock_is_wall_time_and_the_last_hour_has_the_invocation() -> None:
    # GIVEN the server at --speed 1 (make local-up SPEED=1)
    with local_server("--speed", "1") as running:
        # WHEN a client asks the clock, invokes once and asks CloudWatch for the last hour in wall time
        told = _clock(running)
        _client(running, "sagemaker-runtime").invoke_endpoint(
            EndpointName="fraud-detector", Body=ROW.encode(), ContentType="text/csv"
        )
        now = datetime.now(UTC)
        got = _client(running, "cloudwatch").get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "invocations",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SageMaker",
                            "MetricName": "Invocations",
                            "Dimensions": [
                                {"Name": "EndpointName", "Value": "fraud-detector"},
                                {"Name": "VariantName", "Value": "primary"},
                            ],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=1),
        )

    # THEN the clock never ran ahead of wall time, and the request is in the last hour's data
    assert now - timedelta(seconds=5) <= told <= now
    assert sum(got["MetricDataResults"][0]["Values"]) >= 1
