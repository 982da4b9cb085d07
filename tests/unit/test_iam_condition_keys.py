"""The local cloud's IAM builders give the evaluation the condition keys AWS puts in a request: a policy
conditioned on them is granted exactly when the request carries matching values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from shadowscale_localcloud.iam_enforcement import (
    OPERATIONS,
    Backends,
    Check,
    IamEnforcement,
    Request,
    RoleSessions,
    request_tag_context,
    resource_tag_context,
)
from shadowscale_localcloud.iam_policies import evaluate, parse_policy

VARIANT = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": "endpoint/fraud-detector/variant/primary",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


@dataclass
class FakeResponse:
    params: dict[str, Any]
    uri_match: dict[str, Any] = field(default_factory=dict)


class NoTags(Backends):
    def sagemaker_tags(self, arn: str) -> list[dict[str, str]]:
        return [{"Key": "shadowscale:test", "Value": "t1"}] if arn.endswith("-shadow") else []


def checks(service: str, operation: str, params: dict[str, Any]) -> list[Check]:
    request = Request(service=service, operation=operation, method="POST", response=FakeResponse(params))
    return OPERATIONS[(service, operation)](request, NoTags(), IamEnforcement(RoleSessions()))


def allowed(statement: dict[str, Any], check: Check) -> bool:
    policy = parse_policy("probe", {"Statement": [{"Effect": "Allow", **statement}]})
    return evaluate(policy, check.action, check.resource, check.context).allowed


TARGETS = {"Action": "application-autoscaling:*", "Resource": "arn:aws:application-autoscaling:*:*:scalable-target/*"}
SCOPED = {
    **TARGETS,
    "Condition": {
        "StringEquals": {
            "application-autoscaling:service-namespace": "sagemaker",
            "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
        }
    },
}


@pytest.mark.parametrize("operation", ["RegisterScalableTarget", "DeregisterScalableTarget", "PutScalingPolicy"])
@pytest.mark.parametrize(
    ("request_params", "granted"),
    [
        (VARIANT, True),
        (
            {
                **VARIANT,
                "ServiceNamespace": "ecs",
                "ResourceId": "service/c/s",
                "ScalableDimension": "ecs:service:DesiredCount",
            },
            False,
        ),
        ({**VARIANT, "ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency"}, False),
    ],
)
def test_target_operations_carry_the_namespace_and_dimension(
    operation: str, request_params: dict[str, str], granted: bool
) -> None:
    [target, *_] = checks("application-autoscaling", operation, {**request_params, "PolicyName": "p"})
    assert allowed(SCOPED, target) is granted
    assert allowed(TARGETS, target)  # without the condition, any target passes: the condition is what scopes


def test_a_policy_conditioned_on_another_namespace_does_not_grant_a_variant() -> None:
    [target, *_] = checks("application-autoscaling", "RegisterScalableTarget", VARIANT)
    other = {**TARGETS, "Condition": {"StringEquals": {"application-autoscaling:service-namespace": "ecs"}}}
    assert not allowed(other, target)


def test_a_create_request_carries_its_tags_and_a_delete_the_resources_tags() -> None:
    create = checks(
        "sagemaker",
        "CreateEndpointConfig",
        {"EndpointConfigName": "e-0a1b2c3d-shadow", "Tags": [{"Key": "shadowscale:test", "Value": "t1"}]},
    )
    assert [c.action for c in create] == ["sagemaker:CreateEndpointConfig", "sagemaker:AddTags"]
    assert all(c.context["aws:requesttag/shadowscale:test"] == ("t1",) for c in create)
    assert all(c.context["aws:tagkeys"] == ("shadowscale:test",) for c in create)
    tagged = {
        "Action": "sagemaker:DeleteEndpointConfig",
        "Resource": "*",
        "Condition": {"StringLike": {"aws:ResourceTag/shadowscale:test": "*"}},
    }
    [delete] = checks("sagemaker", "DeleteEndpointConfig", {"EndpointConfigName": "e-0a1b2c3d-shadow"})
    [untagged] = checks("sagemaker", "DeleteEndpointConfig", {"EndpointConfigName": "e-config-1"})
    assert allowed(tagged, delete)
    assert not allowed(tagged, untagged)


def test_tag_contexts_name_every_key() -> None:
    assert request_tag_context([]) == {}
    assert resource_tag_context([{"Key": "a", "Value": "1"}]) == {
        "aws:resourcetag/a": ("1",),
        "sagemaker:resourcetag/a": ("1",),
    }
