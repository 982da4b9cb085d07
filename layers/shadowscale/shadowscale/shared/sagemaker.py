"""SageMaker endpoint control over boto3."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.shared.aws_errors import raise_domain_error
from shadowscale.shared.endpoint import EndpointObservation, VariantObservation, VariantUpdate

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DesiredWeightAndCapacityTypeDef


class SageMakerEndpoints:
    def __init__(self, client: SageMakerClient) -> None:
        self._client = client

    def describe_endpoint(self, endpoint: str) -> EndpointObservation:
        try:
            described = self._client.describe_endpoint(EndpointName=endpoint)
        except ClientError as exc:
            raise_domain_error(exc, f"DescribeEndpoint {endpoint}")
        return EndpointObservation(
            name=endpoint,
            status=described["EndpointStatus"],
            config_name=described.get("EndpointConfigName", ""),
            variants=tuple(
                VariantObservation(
                    name=variant["VariantName"],
                    current_instances=variant.get("CurrentInstanceCount", 0),
                    desired_instances=variant.get("DesiredInstanceCount"),
                    current_weight=variant.get("CurrentWeight", 0.0),
                    desired_weight=variant.get("DesiredWeight"),
                )
                for variant in described.get("ProductionVariants", [])
            ),
        )

    def update_weights_and_capacities(self, endpoint: str, updates: Sequence[VariantUpdate]) -> None:
        desired: list[DesiredWeightAndCapacityTypeDef] = []
        for update in updates:
            entry: DesiredWeightAndCapacityTypeDef = {"VariantName": update.variant}
            if update.instances is not None:
                entry["DesiredInstanceCount"] = update.instances
            if update.weight is not None:
                entry["DesiredWeight"] = update.weight
            desired.append(entry)
        try:
            self._client.update_endpoint_weights_and_capacities(
                EndpointName=endpoint, DesiredWeightsAndCapacities=desired
            )
        except ClientError as exc:
            raise_domain_error(exc, f"UpdateEndpointWeightsAndCapacities {endpoint}")
