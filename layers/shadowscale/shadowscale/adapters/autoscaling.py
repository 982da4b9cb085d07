"""Application Auto Scaling registrations of endpoint variants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Literal

from botocore.exceptions import ClientError

from shadowscale.adapters.aws_errors import raise_domain_error
from shadowscale.models.endpoint import ScalableTarget

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient

NAMESPACE: Final[Literal["sagemaker"]] = "sagemaker"
DIMENSION: Final[Literal["sagemaker:variant:DesiredInstanceCount"]] = "sagemaker:variant:DesiredInstanceCount"


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


class VariantScalableTargets:
    def __init__(self, client: ApplicationAutoScalingClient) -> None:
        self._client = client

    def registered(self, endpoint: str, variants: Sequence[str]) -> dict[str, ScalableTarget]:
        by_resource = {resource_id(endpoint, variant): variant for variant in variants}
        if not by_resource:
            return {}
        try:
            # Up to 50 resource ids per call: an endpoint has at most 10 variants.
            found = self._client.describe_scalable_targets(
                ServiceNamespace=NAMESPACE, ResourceIds=list(by_resource), ScalableDimension=DIMENSION
            )
        except ClientError as exc:
            raise_domain_error(exc, f"DescribeScalableTargets {endpoint}")
        return {
            by_resource[target["ResourceId"]]: ScalableTarget(
                variant=by_resource[target["ResourceId"]],
                min_capacity=target["MinCapacity"],
                max_capacity=target["MaxCapacity"],
            )
            for target in found.get("ScalableTargets", [])
            if target["ResourceId"] in by_resource
        }

    def set_bounds(self, endpoint: str, variant: str, min_capacity: int, max_capacity: int) -> None:
        try:
            # Registering an existing target updates only the fields given; its policies stay.
            self._client.register_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=resource_id(endpoint, variant),
                ScalableDimension=DIMENSION,
                MinCapacity=min_capacity,
                MaxCapacity=max_capacity,
            )
        except ClientError as exc:
            raise_domain_error(exc, f"RegisterScalableTarget {endpoint}/{variant}")
