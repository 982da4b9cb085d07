"""The local cloud's SageMaker gap-fill behaves as SageMaker does where moto does not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from shadowscale_localcloud.sagemaker_gaps import TARGET_MOTO_VERSION, SageMakerGapFill

from tests.factories import ENDPOINT
from tests.integration.conftest import REGION, Clock, create_endpoint

NO_SDK_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION, config=NO_SDK_RETRIES)
        create_endpoint(client)
        yield client


def variants(client: Any) -> dict[str, dict[str, Any]]:
    described = client.describe_endpoint(EndpointName=ENDPOINT)
    return {v["VariantName"]: v for v in described["ProductionVariants"]}


def test_pinned_moto_version_is_the_one_installed() -> None:
    assert moto.__version__ == TARGET_MOTO_VERSION


def test_given_count_only_update_when_applied_then_weight_kept(sagemaker: Any) -> None:
    with SageMakerGapFill():
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 3}]
        )
        primary = variants(sagemaker)["primary"]
    assert (primary["CurrentInstanceCount"], primary["CurrentWeight"]) == (3, 1.0)


def test_given_weight_only_update_when_applied_then_count_kept(sagemaker: Any) -> None:
    with SageMakerGapFill():
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "candidate", "DesiredWeight": 0.0}]
        )
        candidate = variants(sagemaker)["candidate"]
    assert (candidate["CurrentInstanceCount"], candidate["CurrentWeight"]) == (1, 0.0)


def test_given_update_delay_when_updated_then_updating_until_clock_passes_it(sagemaker: Any) -> None:
    clock = Clock()
    with SageMakerGapFill(clock=clock.now, update_seconds=120):
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 2}]
        )
        assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "Updating"
        with pytest.raises(ClientError) as raised:
            sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=ENDPOINT,
                DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 3}],
            )
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        assert "Cannot update in-progress endpoint" in raised.value.response["Error"]["Message"]
        clock.advance(120)
        assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


@pytest.mark.parametrize("code", ["ThrottlingException", "ValidationException", "InternalFailure"])
def test_given_injected_fault_when_called_then_fails_that_many_times_then_works(sagemaker: Any, code: str) -> None:
    with SageMakerGapFill() as gaps:
        gaps.inject_fault("DescribeEndpoint", code, times=2)
        for _ in range(2):
            with pytest.raises(ClientError) as raised:
                sagemaker.describe_endpoint(EndpointName=ENDPOINT)
            assert raised.value.response["Error"]["Code"] == code
        assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"
        assert gaps.calls["DescribeEndpoint"] == 3


def test_given_uninstalled_then_moto_behaviour_is_back(sagemaker: Any) -> None:
    with SageMakerGapFill() as gaps:
        gaps.set_status(ENDPOINT, "Updating")
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


def test_unknown_operation_for_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="UpdateEndpoint"):
        SageMakerGapFill().inject_fault("Nope", "ThrottlingException")


def shadow_config(client: Any, name: str, capture: bool = True) -> None:
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": f"{ENDPOINT}-primary-model",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
        ShadowProductionVariants=[
            {
                "VariantName": "shadow",
                "ModelName": f"{ENDPOINT}-candidate-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g5.xlarge",
                "InitialVariantWeight": 0.5,
            }
        ],
        DataCaptureConfig={
            "EnableCapture": capture,
            "InitialSamplingPercentage": 20,
            "DestinationS3Uri": "s3://captures/fraud",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )


def test_given_shadow_config_when_described_then_shadow_variants_kept(sagemaker: Any) -> None:
    with SageMakerGapFill():
        shadow_config(sagemaker, "with-shadow")
        described = sagemaker.describe_endpoint_config(EndpointConfigName="with-shadow")
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["shadow"]
    assert described["DataCaptureConfig"]["InitialSamplingPercentage"] == 20


def test_given_update_endpoint_when_updating_then_in_progress_then_new_config_in_service(sagemaker: Any) -> None:
    clock = Clock()
    with SageMakerGapFill(clock=clock.now, update_seconds=300):
        shadow_config(sagemaker, "with-shadow")
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="with-shadow")
        assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "Updating"
        with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
            sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="with-shadow")
        clock.advance(300)
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "with-shadow"
    assert [(v["VariantName"], v["CurrentInstanceCount"]) for v in described["ProductionVariants"]] == [("primary", 2)]
    assert described["ShadowProductionVariants"][0]["VariantName"] == "shadow"
    assert described["DataCaptureConfig"]["CaptureStatus"] == "Started"
    assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 20


def test_given_update_back_to_original_config_then_shadow_and_capture_gone(sagemaker: Any) -> None:
    with SageMakerGapFill():
        shadow_config(sagemaker, "with-shadow")
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="with-shadow")
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-config-1")
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert "ShadowProductionVariants" not in described
    assert "DataCaptureConfig" not in described
    assert {v["VariantName"] for v in described["ProductionVariants"]} == {"primary", "candidate"}


@pytest.mark.parametrize(
    ("endpoint", "config", "message"),
    [
        ("missing", "with-shadow", "Could not find endpoint"),
        (ENDPOINT, "missing", "Could not find endpoint configuration"),
    ],
)
def test_given_unknown_names_when_update_endpoint_then_validation_error(
    sagemaker: Any, endpoint: str, config: str, message: str
) -> None:
    with SageMakerGapFill():
        shadow_config(sagemaker, "with-shadow")
        with pytest.raises(ClientError, match=message) as raised:
            sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_given_throttling_injected_on_update_endpoint_then_raised(sagemaker: Any) -> None:
    with SageMakerGapFill() as gaps:
        shadow_config(sagemaker, "with-shadow")
        gaps.inject_fault("UpdateEndpoint", "ThrottlingException", times=1)
        with pytest.raises(ClientError, match="Rate exceeded"):
            sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="with-shadow")
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="with-shadow")


# --- what AWS documents that moto does not do, and the switches for what AWS leaves open -------------


@pytest.mark.parametrize(("retained_capture", "capture_on"), [("kept", False), ("follows-config", True)])
def test_given_retain_all_variant_properties_when_updated_then_capture_follows_the_switch(
    sagemaker: Any, retained_capture: Any, capture_on: bool
) -> None:
    # GIVEN an endpoint without capture and a config that turns it on
    with SageMakerGapFill(retained_capture=retained_capture):
        shadow_config(sagemaker, "with-shadow")
        # WHEN it moves there retaining its variant properties
        sagemaker.update_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName="with-shadow", RetainAllVariantProperties=True
        )
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    # THEN capture is retained (botocore lists DataCaptureConfig as a retained property) or follows the config
    assert ("DataCaptureConfig" in described) is capture_on


def test_given_retain_without_retention_when_updated_then_capture_follows_the_config(sagemaker: Any) -> None:
    with SageMakerGapFill(retained_capture="kept"):
        shadow_config(sagemaker, "with-shadow")
        sagemaker.update_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName="with-shadow", RetainAllVariantProperties=False
        )
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert described["DataCaptureConfig"]["DestinationS3Uri"] == "s3://captures/fraud"


def test_given_exclusion_of_data_capture_when_updated_then_refused_as_not_supported(sagemaker: Any) -> None:
    with SageMakerGapFill():
        shadow_config(sagemaker, "with-shadow")
        refused = pytest.raises(ClientError, match="DataCaptureConfig")
        with refused:
            sagemaker.update_endpoint(
                EndpointName=ENDPOINT,
                EndpointConfigName="with-shadow",
                RetainAllVariantProperties=True,
                ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DataCaptureConfig"}],
            )


def test_given_retained_count_excluded_when_updated_then_the_config_count_applies(sagemaker: Any) -> None:
    with SageMakerGapFill():
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 5}]
        )
        shadow_config(sagemaker, "with-shadow")
        sagemaker.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName="with-shadow",
            RetainAllVariantProperties=True,
            ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredInstanceCount"}],
        )
        primary = variants(sagemaker)["primary"]
    assert primary["CurrentInstanceCount"] == 2


def test_given_a_new_config_when_used_at_once_then_not_found_until_the_visibility_window_passes(
    sagemaker: Any,
) -> None:
    clock = Clock()
    with SageMakerGapFill(clock=clock.now, config_visibility_seconds=5):
        # GIVEN a config created just now
        shadow_config(sagemaker, "with-shadow")
        # WHEN it is read or used at once THEN SageMaker does not know it yet
        calls: list[tuple[str, dict[str, str]]] = [
            ("describe_endpoint_config", {"EndpointConfigName": "with-shadow"}),
            ("update_endpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": "with-shadow"}),
            ("create_endpoint", {"EndpointName": "another", "EndpointConfigName": "with-shadow"}),
        ]
        for operation, parameters in calls:
            with pytest.raises(ClientError, match='Could not find endpoint configuration "with-shadow"'):
                getattr(sagemaker, operation)(**parameters)
        # AND once the window has passed it does
        clock.advance(5)
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="with-shadow")
        assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == "with-shadow"


def test_given_an_existing_config_name_when_created_again_then_refused(sagemaker: Any) -> None:
    with SageMakerGapFill():
        shadow_config(sagemaker, "with-shadow")
        with pytest.raises(ClientError, match="Cannot create already existing endpoint configuration"):
            shadow_config(sagemaker, "with-shadow")


@pytest.mark.parametrize("shadow_weight_updates", ["accepted", "refused"])
def test_given_a_shadow_variant_when_its_weight_is_set_then_the_switch_decides(
    sagemaker: Any, shadow_weight_updates: Any
) -> None:
    with SageMakerGapFill(shadow_weight_updates=shadow_weight_updates):
        shadow_config(sagemaker, "with-shadow")
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="with-shadow")

        def set_weight() -> Any:
            return sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "shadow", "DesiredWeight": 0.2}]
            )

        if shadow_weight_updates == "refused":
            with pytest.raises(ClientError, match="not production variants"):
                set_weight()
        else:
            set_weight()
            shadow = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["ShadowProductionVariants"][0]
            assert shadow["CurrentWeight"] == 0.2


def test_given_no_scalable_target_when_deregistered_then_object_not_found_as_aws_says() -> None:
    from shadowscale_localcloud.autoscaling_gaps import AutoScalingGapFill

    with mock_aws():
        autoscaling = boto3.client("application-autoscaling", region_name=REGION, config=NO_SDK_RETRIES)
        gaps = AutoScalingGapFill()
        gaps.install()
        try:
            with pytest.raises(autoscaling.exceptions.ObjectNotFoundException):
                autoscaling.deregister_scalable_target(
                    ServiceNamespace="sagemaker",
                    ResourceId=f"endpoint/{ENDPOINT}/variant/primary",
                    ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                )
        finally:
            gaps.uninstall()
