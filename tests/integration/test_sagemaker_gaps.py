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
from shadowscale.localcloud.sagemaker_gaps import TARGET_MOTO_VERSION, SageMakerGapFill

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
