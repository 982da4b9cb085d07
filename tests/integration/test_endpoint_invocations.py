"""InvokeEndpoint on the embedded local cloud: SageMaker Runtime's answers and errors, the variant chosen,
InferenceId in data capture, a user's model, and the metrics every request counts in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from shadowscale_localcloud.endpoint_invocations import (
    ModelAnswer,
    ModelFailure,
    load_model_function,
    models_from_environment,
    parse_model_assignments,
)
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import ACCOUNT, create_endpoint_once_visible, create_models

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BUCKET = "invocation-capture"
CSV_ROW = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(START), stack_name="invoke-test") as running:
        running.client("s3").create_bucket(Bucket=BUCKET)
        yield running


def _variant(name: str, model: str, weight: float = 1.0, count: int = 1) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": model,
        "InitialInstanceCount": count,
        "InstanceType": "ml.m5.large",
        "InitialVariantWeight": weight,
    }


def _endpoint(
    cloud: LocalCloud,
    name: str,
    production: list[dict[str, Any]],
    *,
    shadows: list[dict[str, Any]] | None = None,
    capture: dict[str, Any] | None = None,
) -> None:
    sagemaker = cloud.client("sagemaker")
    create_models(sagemaker, *{entry["ModelName"] for entry in [*production, *(shadows or [])]})
    config: dict[str, Any] = {"EndpointConfigName": f"{name}-config", "ProductionVariants": production}
    if shadows:
        config["ShadowProductionVariants"] = shadows
    if capture is not None:
        config["DataCaptureConfig"] = {"DestinationS3Uri": f"s3://{BUCKET}/{name}", **capture}
    sagemaker.create_endpoint_config(**config)
    create_endpoint_once_visible(sagemaker, name, f"{name}-config", cloud.advance)


FULL_CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
}


def _records(cloud: LocalCloud, endpoint: str) -> dict[str, list[dict[str, Any]]]:
    """Variant → its capture records, once every file is due (a minute of records + two minutes late)."""
    cloud.advance(4 * 60)
    s3 = cloud.client("s3")
    found: dict[str, list[dict[str, Any]]] = {}
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{endpoint}/").get("Contents", []):
        variant = item["Key"].split("/")[2]
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode()
        found.setdefault(variant, []).extend(json.loads(line) for line in body.splitlines())
    return found


def _total(cloud: LocalCloud, endpoint: str, variant: str, metric: str, stat: str = "Sum") -> float:
    result = cloud.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": metric,
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": endpoint},
                            {"Name": "VariantName", "Value": variant},
                        ],
                    },
                    "Period": 24 * 3600,
                    "Stat": stat,
                },
            }
        ],
        StartTime=START - timedelta(hours=1),
        EndTime=cloud.clock.now() + timedelta(hours=1),
    )
    values = result["MetricDataResults"][0]["Values"]
    return float(values[0]) if values else 0.0


def _invoke(cloud: LocalCloud, endpoint: str, **options: Any) -> Any:
    return cloud.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint,
        Body=options.pop("Body", CSV_ROW),
        ContentType=options.pop("ContentType", "text/csv"),
        **options,
    )


# --- errors ---------------------------------------------------------------------------------------------


def test_given_no_such_endpoint_when_invoked_then_validation_error_naming_endpoint_and_account(
    cloud: LocalCloud,
) -> None:
    # GIVEN no endpoint "nowhere" WHEN it is invoked
    with pytest.raises(ClientError) as raised:
        _invoke(cloud, "nowhere")

    # THEN SageMaker Runtime's ValidationError, HTTP 400
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["Error"]["Message"] == f"Endpoint nowhere of account {ACCOUNT} not found."
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("setting", "code", "http_status"),
    [("validation-error", "ValidationError", 400), ("model-not-ready", "ModelNotReadyException", 429)],
)
def test_given_an_endpoint_not_in_service_when_invoked_then_refused_as_the_switch_says(
    cloud: LocalCloud, setting: str, code: str, http_status: int
) -> None:
    # GIVEN an endpoint still Creating, and the switch's setting
    name = f"creating-{http_status}"
    _endpoint(cloud, name, [_variant("primary", "model-a")])
    assert cloud.gaps is not None
    assert cloud.invocations is not None
    cloud.gaps.set_status(name, "Creating")
    cloud.invocations.not_in_service = setting  # type: ignore[assignment]
    try:
        # WHEN it is invoked
        with pytest.raises(ClientError) as raised:
            _invoke(cloud, name)
    finally:
        cloud.invocations.not_in_service = "validation-error"
        cloud.gaps.set_status(name, "InService", for_seconds=0)

    # THEN refused with the error the switch names, and nothing counted
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == http_status
    assert "Creating" in raised.value.response["Error"]["Message"]
    assert _total(cloud, name, "primary", "Invocations") == 0


def test_given_an_updating_endpoint_when_invoked_then_it_still_answers(cloud: LocalCloud) -> None:
    # GIVEN an endpoint in an update (UpdateEndpoint: no availability loss)
    _endpoint(cloud, "updating", [_variant("primary", "model-a")])
    assert cloud.gaps is not None
    cloud.gaps.set_status("updating", "Updating", for_seconds=600)

    # WHEN invoked THEN the production variant answers
    assert _invoke(cloud, "updating")["InvokedProductionVariant"] == "primary"


def test_given_a_model_that_raises_when_invoked_then_model_error_424_with_the_original_status(
    cloud: LocalCloud,
) -> None:
    # GIVEN a user model that fails for some inputs
    def fragile(body: bytes, content_type: str) -> bytes:
        if body.startswith(b"boom"):
            raise RuntimeError("the model fell over")
        return b'{"ok":true}'

    cloud.serve_model("fragile-model", fragile)
    _endpoint(cloud, "fragile", [_variant("primary", "fragile-model")])

    # WHEN one request succeeds and one fails
    _invoke(cloud, "fragile")
    with pytest.raises(ClientError) as raised:
        _invoke(cloud, "fragile", Body="boom")

    # THEN the failure is ModelError (424) with the container's status and message and its log stream
    error: dict[str, Any] = dict(raised.value.response)
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert error["OriginalMessage"] == "RuntimeError: the model fell over"
    assert error["LogStreamArn"].startswith(
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/fragile:log-stream:primary/"
    )
    assert "Received server error (500) from model" in error["Error"]["Message"]
    # AND both requests count, the failure as a 5XX model error, latency only for the success
    assert _total(cloud, "fragile", "primary", "Invocations") == 2
    assert _total(cloud, "fragile", "primary", "Invocation5XXErrors") == 1
    assert _total(cloud, "fragile", "primary", "InvocationModelErrors") == 1
    assert _total(cloud, "fragile", "primary", "Invocation4XXErrors") == 0
    assert _total(cloud, "fragile", "primary", "ModelLatency", "SampleCount") == 1


def test_given_a_model_failure_with_a_client_status_then_a_4xx_model_error(cloud: LocalCloud) -> None:
    def strict(body: bytes, content_type: str) -> bytes:
        raise ModelFailure(415, f"cannot read {content_type}")

    cloud.serve_model("strict-model", strict)
    _endpoint(cloud, "strict", [_variant("primary", "strict-model")])

    with pytest.raises(ClientError) as raised:
        _invoke(cloud, "strict", ContentType="image/png")

    error: dict[str, Any] = dict(raised.value.response)
    assert error["OriginalStatusCode"] == 415
    assert error["OriginalMessage"] == "cannot read image/png"
    assert "Received client error (415)" in error["Error"]["Message"]
    assert _total(cloud, "strict", "primary", "Invocation4XXErrors") == 1


# --- answers, variants, capture ----------------------------------------------------------------------------


def test_given_target_variant_then_that_variant_answers_and_custom_attributes_come_back(cloud: LocalCloud) -> None:
    # GIVEN two production variants, the second with no weight at all
    cloud.serve_model("model-b", lambda body, content_type: ModelAnswer(b"b", "text/plain", custom_attributes="from-b"))
    _endpoint(cloud, "targeted", [_variant("a", "model-a", 1.0), _variant("b", "model-b", 0.0)])

    # WHEN invoked without and with TargetVariant
    plain = _invoke(cloud, "targeted", CustomAttributes="trace=1")
    targeted = _invoke(cloud, "targeted", TargetVariant="b", CustomAttributes="trace=2")

    # THEN weight decides without it, the target with it; the simulated model returns the attributes,
    # the user's model sets its own
    assert plain["InvokedProductionVariant"] == "a"
    assert plain["ContentType"] == "text/csv"
    assert plain["CustomAttributes"] == "trace=1"
    score, label = plain["Body"].read().decode().split(",")
    assert 0.0 <= float(score) <= 1.0
    assert label in {"0", "1"}
    assert targeted["InvokedProductionVariant"] == "b"
    assert targeted["Body"].read() == b"b"
    assert targeted["ContentType"] == "text/plain"
    assert targeted["CustomAttributes"] == "from-b"
    assert _total(cloud, "targeted", "b", "Invocations") == 1
    # AND a variant the endpoint does not have is refused
    with pytest.raises(ClientError) as raised:
        _invoke(cloud, "targeted", TargetVariant="c")
    assert raised.value.response["Error"]["Code"] == "ValidationError"


def test_requests_are_split_across_production_variants_by_weight(cloud: LocalCloud) -> None:
    _endpoint(cloud, "weighted", [_variant("heavy", "model-a", 3.0), _variant("light", "model-a", 1.0)])

    variants = [_invoke(cloud, "weighted")["InvokedProductionVariant"] for _ in range(400)]

    assert 0.68 < variants.count("heavy") / 400 < 0.82


def test_given_inference_id_and_a_shadow_then_both_capture_records_carry_it(cloud: LocalCloud) -> None:
    # GIVEN a production variant, a shadow at full weight with the user's model, full capture
    cloud.serve_model("candidate-model", lambda body, content_type: (b'{"label":1}', "application/json"))
    _endpoint(
        cloud,
        "captured",
        [_variant("primary", "model-a")],
        shadows=[_variant("shadow", "candidate-model", 1.0)],
        capture=FULL_CAPTURE,
    )

    # WHEN a client invokes with an InferenceId
    answer = _invoke(cloud, "captured", InferenceId="order-42")
    body = answer["Body"].read().decode()

    # THEN production's record has the request, the answer the client got and the InferenceId,
    # and the shadow's record has the same request with the shadow's answer
    records = _records(cloud, "captured")
    [production] = [r for r in records["primary"] if r["eventMetadata"].get("inferenceId") == "order-42"]
    [shadow] = [r for r in records["shadow"] if r["eventMetadata"].get("inferenceId") == "order-42"]
    assert production["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": CSV_ROW,
        "encoding": "CSV",
    }
    assert production["captureData"]["endpointOutput"]["data"] == body
    assert shadow["captureData"]["endpointInput"]["data"] == CSV_ROW
    assert shadow["captureData"]["endpointOutput"] == {
        "observedContentType": "application/json",
        "mode": "OUTPUT",
        "data": '{"label":1}',
        "encoding": "JSON",
    }
    assert production["eventVersion"] == "0"
    assert production["eventMetadata"]["eventId"]
    assert _total(cloud, "captured", "shadow", "Invocations") == 1


def test_capture_options_and_sampling_shape_what_is_captured(cloud: LocalCloud) -> None:
    # GIVEN capture of the input only, no listed content types, half the requests
    _endpoint(
        cloud,
        "half-input",
        [_variant("primary", "model-a")],
        capture={**FULL_CAPTURE, "InitialSamplingPercentage": 50, "CaptureOptions": [{"CaptureMode": "Input"}]}
        | {"CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}},
    )

    for number in range(200):
        _invoke(cloud, "half-input", InferenceId=f"r-{number}")

    # THEN about half are captured, input only, CSV (not listed) as base64
    records = _records(cloud, "half-input")["primary"]
    assert 70 < len(records) < 130
    assert all(set(record["captureData"]) == {"endpointInput"} for record in records)
    assert {record["captureData"]["endpointInput"]["encoding"] for record in records} == {"BASE64"}


# --- configuring user models ------------------------------------------------------------------------------


def test_model_assignments_come_from_flags_and_the_environment() -> None:
    assert parse_model_assignments(["a=examples.local_model:predict"]) == {"a": "examples.local_model:predict"}
    assert models_from_environment({"SHADOWSCALE_LOCAL_MODELS": "a=m:f, b=n:g"}) == {"a": "m:f", "b": "n:g"}
    with pytest.raises(ValueError, match="model-name=module:function"):
        parse_model_assignments(["no-function"])
    with pytest.raises(TypeError, match="not a function"):
        load_model_function("examples.local_model:WEIGHTS")


def test_the_example_model_answers_through_invoke_endpoint(cloud: LocalCloud) -> None:
    cloud.serve_model("example-model", "examples.local_model:predict")
    _endpoint(cloud, "example", [_variant("primary", "example-model")])

    answer = _invoke(cloud, "example", Accept="application/json")

    assert answer["ContentType"] == "application/json"
    assert set(json.loads(answer["Body"].read())) == {"score", "label", "model"}


@pytest.mark.parametrize(("copies", "low", "high"), [("weight-ratio", 30, 70), ("all", 200, 200)])
def test_a_shadow_gets_copies_of_requests_as_the_shadow_copies_switch_says(
    cloud: LocalCloud, copies: str, low: int, high: int
) -> None:
    # GIVEN a shadow at a quarter of production's weight, under each reading of the undocumented mapping
    name = f"share-{copies}"
    _endpoint(cloud, name, [_variant("primary", "model-a")], shadows=[_variant("shadow", "model-a", 0.25)])
    _invoke(cloud, name)
    [simulation] = [simulation for simulation in cloud.simulations if simulation.name == name]
    simulation.shadow_copies = copies  # type: ignore[assignment]
    before = _total(cloud, name, "shadow", "Invocations")

    # WHEN 200 more requests arrive
    for _ in range(200):
        _invoke(cloud, name)

    # THEN the shadow counted its copies: a quarter of them, or all of them; production counted every one
    shadow_copies = _total(cloud, name, "shadow", "Invocations") - before
    assert low <= shadow_copies <= high
    assert _total(cloud, name, "primary", "Invocations") == 201


def test_capture_mode_input_and_output_captures_both_halves(cloud: LocalCloud) -> None:
    # GIVEN CaptureOption's third mode (botocore's CaptureMode enum: Input, Output, InputAndOutput)
    _endpoint(
        cloud,
        "both-halves",
        [_variant("primary", "model-a")],
        capture={**FULL_CAPTURE, "CaptureOptions": [{"CaptureMode": "InputAndOutput"}]},
    )

    _invoke(cloud, "both-halves", InferenceId="both-1")

    [record] = _records(cloud, "both-halves")["primary"]
    assert set(record["captureData"]) == {"endpointInput", "endpointOutput"}
