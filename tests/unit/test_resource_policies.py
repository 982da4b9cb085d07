"""The local cloud's reading of a resource policy for a service principal's request (IAM's evaluation
logic and condition operators, as the IAM User Guide documents them)."""

from __future__ import annotations

from typing import Any

import pytest
from shadowscale_localcloud.resource_policies import ServiceRequest, allows

QUEUE = "arn:aws:sqs:us-east-1:123456789012:dead-letters"
RULE = "arn:aws:events:us-east-1:123456789012:rule/shadowscale-dev-fraud"
REQUEST = ServiceRequest(
    "events.amazonaws.com", "sqs:SendMessage", QUEUE, {"aws:SourceArn": RULE, "aws:SecureTransport": "true"}
)


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**extra: Any) -> dict[str, Any]:
    base = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage"}
    return {**base, "Resource": QUEUE, **extra}


TLS_ONLY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sqs:*",
    "Resource": QUEUE,
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.mark.parametrize(
    ("document", "allowed"),
    [
        (None, False),  # no policy: a service principal has no other way in
        (policy(TLS_ONLY), False),  # only a deny that does not apply: still no allow
        (policy(TLS_ONLY, allow()), True),
        (policy(allow(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/shadowscale-dev-*"}})), True),
        (policy(allow(Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:events:*:*:rule/other"}})), False),
        (policy(allow(Condition={"StringEquals": {"aws:SourceAccount": "123456789012"}})), False),  # key missing
        (policy(allow(Condition={"StringEqualsIfExists": {"aws:SourceAccount": "1"}})), True),  # IfExists: missing
        (policy(allow(Condition={"StringNotEquals": {"aws:SourceAccount": "1"}})), True),  # negated: missing
        (policy(allow(Principal={"Service": "s3.amazonaws.com"})), False),
        (policy(allow(Action="sqs:Send*")), True),
        (policy(allow(Resource="arn:aws:sqs:us-east-1:123456789012:other")), False),
        (policy(allow(), {**TLS_ONLY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}), False),  # deny wins
    ],
)
def test_a_service_request_is_allowed_only_as_iam_evaluates_it(document: dict[str, Any] | None, allowed: bool) -> None:
    assert allows(document, REQUEST) is allowed


def test_an_operator_the_local_cloud_does_not_know_is_refused_loudly() -> None:
    with pytest.raises(NotImplementedError, match="IpAddress"):
        allows(policy(allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})), REQUEST)
