"""Application Auto Scaling registrations of endpoint variants."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import ClientError

from shadowscale.shared.aws_errors import raise_domain_error
from shadowscale.shared.endpoint import ScalableTarget, ScalingTargetSnapshot

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient


# What PutScalingPolicy accepts of a described policy (the rest is read-only).
_POLICY_KEYS = (
    "PolicyName",
    "PolicyType",
    "StepScalingPolicyConfiguration",
    "TargetTrackingScalingPolicyConfiguration",
    "PredictiveScalingPolicyConfiguration",
)

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

    # --- whole registrations, for the shadow test's snapshot and restore ---------------------------

    def snapshot(self, endpoint: str, variants: Sequence[str]) -> tuple[ScalingTargetSnapshot, ...]:
        snapshots = []
        for variant, target in self.registered(endpoint, variants).items():
            try:
                described = self._client.describe_scaling_policies(
                    ServiceNamespace=NAMESPACE, ResourceId=resource_id(endpoint, variant), ScalableDimension=DIMENSION
                )
            except ClientError as exc:
                raise_domain_error(exc, f"DescribeScalingPolicies {endpoint}/{variant}")
            # Policies travel as JSON in the snapshot (datetimes and all), so read them as plain dicts.
            plain: list[dict[str, Any]] = json.loads(json.dumps(described.get("ScalingPolicies", []), default=str))
            policies = tuple({key: policy[key] for key in _POLICY_KEYS if key in policy} for policy in plain)
            snapshots.append(
                ScalingTargetSnapshot(
                    variant=variant,
                    min_capacity=target.min_capacity,
                    max_capacity=target.max_capacity,
                    policies=policies,
                )
            )
        return tuple(snapshots)

    def deregister(self, endpoint: str, variant: str) -> None:
        """Deregistering also deletes the target's policies (they are in the snapshot)."""
        try:
            self._client.deregister_scalable_target(
                ServiceNamespace=NAMESPACE, ResourceId=resource_id(endpoint, variant), ScalableDimension=DIMENSION
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ObjectNotFoundException":
                return
            raise_domain_error(exc, f"DeregisterScalableTarget {endpoint}/{variant}")

    def restore(self, endpoint: str, target: ScalingTargetSnapshot, *, variant: str | None = None) -> None:
        """Register (again) as the snapshot says, on `variant` if given (a promoted variant takes over)."""
        name = variant or target.variant
        self.set_bounds(endpoint, name, target.min_capacity, target.max_capacity)
        for policy in target.policies:
            try:
                self._client.put_scaling_policy(
                    ServiceNamespace=NAMESPACE,
                    ResourceId=resource_id(endpoint, name),
                    ScalableDimension=DIMENSION,
                    **policy,  # type: ignore[arg-type]
                )
            except ClientError as exc:
                raise_domain_error(exc, f"PutScalingPolicy {endpoint}/{name}")
