"""The key policy and the topic policy as deployed, judged by the local cloud's evaluator for the requests
AWS services make: each service principal is let in for the stack's own sources only (aws:SourceArn and
aws:SourceAccount, which these services send), and the topic refuses a publish without TLS."""

from __future__ import annotations

from typing import Any

import pytest
from shadowscale_localcloud.resource_policies import ServiceRequest, allows

from tests.static.deployed_template import ACCOUNT, REGION, PlausibleValues, translated_template

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:shadowscale-dev-notifications"
BUCKET = f"arn:aws:s3:::shadowscale-dev-data-{ACCOUNT}-{REGION}"


def document(logical_id: str, key: str) -> dict[str, Any]:
    template = translated_template()
    resolved: dict[str, Any] = PlausibleValues(template).resolve(template["Resources"][logical_id]["Properties"][key])
    return resolved


def source(arn: str, account: str = ACCOUNT, secure: str = "true") -> dict[str, str]:
    return {"aws:SourceArn": arn, "aws:SourceAccount": account, "aws:SecureTransport": secure}


@pytest.mark.parametrize(
    ("principal", "action", "context", "granted"),
    [
        (
            "events.amazonaws.com",
            "kms:GenerateDataKey",
            source(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/shadowscale-dev-fraud"),
            True,
        ),
        (
            "events.amazonaws.com",
            "kms:GenerateDataKey",
            source(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/someone-elses"),
            False,
        ),
        (
            "events.amazonaws.com",
            "kms:Decrypt",
            source(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/shadowscale-dev-x", "999999999999"),
            False,
        ),
        ("s3.amazonaws.com", "kms:GenerateDataKey", source(BUCKET), True),
        ("s3.amazonaws.com", "kms:GenerateDataKey", source("arn:aws:s3:::another-bucket"), False),
        (
            "cloudwatch.amazonaws.com",
            "kms:GenerateDataKey",
            source(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shadowscale-dev-dead-letters"),
            True,
        ),
        (
            "cloudwatch.amazonaws.com",
            "kms:Decrypt",
            source(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:other-alarm"),
            False,
        ),
        ("cloudwatch.amazonaws.com", "kms:Decrypt", {"aws:SourceAccount": ACCOUNT}, False),
    ],
)
def test_the_key_lets_each_service_in_for_the_stacks_own_sources(
    principal: str, action: str, context: dict[str, str], granted: bool
) -> None:
    policy = document("ShadowscaleKey", "KeyPolicy")
    assert allows(policy, ServiceRequest(principal, action, KEY, context)) is granted


@pytest.mark.parametrize(
    ("context", "granted"),
    [
        (source(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shadowscale-dev-shadow-test-recovery-failed"), True),
        (source(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:other-alarm"), False),
        (source(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shadowscale-dev-dead-letters", secure="false"), False),
    ],
)
def test_the_topic_takes_the_stacks_alarms_over_tls_only(context: dict[str, str], granted: bool) -> None:
    policy = document("NotificationTopicPolicy", "PolicyDocument")
    request = ServiceRequest("cloudwatch.amazonaws.com", "sns:Publish", TOPIC, context)
    assert allows(policy, request) is granted
