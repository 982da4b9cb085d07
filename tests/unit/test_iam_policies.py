"""The local cloud's IAM evaluator and operation table, without moto: policy logic, wildcards,
condition operators, and the checks each API call turns into."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from shadowscale_localcloud.iam_enforcement import (
    OPERATIONS,
    Backends,
    Check,
    IamEnforcement,
    Principal,
    Request,
    RoleSessions,
    UnmodelledOperation,
)
from shadowscale_localcloud.iam_policies import (
    Caller,
    Decision,
    UnknownConditionOperator,
    evaluate,
    parse_policy,
)

BUCKET = "arn:aws:s3:::data"


def policy(*statements: dict[str, Any]) -> list[Any]:
    return list(parse_policy("test", {"Version": "2012-10-17", "Statement": list(statements)}))


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def decide(statements: list[Any], action: str, resource: str = "*", **context: Any) -> Decision:
    keys = {key.replace("__", ":").replace("_", "-").lower(): tuple(value) for key, value in context.items()}
    return evaluate(statements, action, resource, keys).decision


# --- policy logic -----------------------------------------------------------------------------------


def test_an_explicit_deny_beats_any_allow() -> None:
    # GIVEN an Allow of every S3 action and a Deny of one
    statements = policy(allow("s3:*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})

    # THEN the denied action is denied, whatever allows it, and the rest allowed
    assert decide(statements, "s3:DeleteObject", f"{BUCKET}/k") is Decision.EXPLICIT_DENY
    assert decide(statements, "s3:GetObject", f"{BUCKET}/k") is Decision.ALLOW


def test_nothing_that_matches_is_an_implicit_deny() -> None:
    statements = policy(allow("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:a"))
    assert decide(statements, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:b") is Decision.IMPLICIT_DENY
    assert decide([], "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:a") is Decision.IMPLICIT_DENY


def test_the_statements_that_decided_are_named() -> None:
    statements = policy({"Sid": "One", **allow("s3:GetObject")}, {"Sid": "Two", **allow("s3:Get*")})
    evaluation = evaluate(statements, "s3:GetObject", f"{BUCKET}/k", {})
    assert [ref.sid for ref in evaluation.allowed_by] == ["One", "Two"]


def test_actions_match_case_insensitively_with_wildcards() -> None:
    statements = policy(allow("SQS:send*"), allow("kms:GenerateDataKey?"))
    assert decide(statements, "sqs:SendMessage") is Decision.ALLOW
    assert decide(statements, "kms:GenerateDataKeyX") is Decision.ALLOW
    assert decide(statements, "kms:GenerateDataKeyPair") is Decision.IMPLICIT_DENY  # ? is one character
    assert decide(statements, "sqs:ReceiveMessage") is Decision.IMPLICIT_DENY


def test_resources_match_case_sensitively_with_wildcards() -> None:
    statements = policy(allow("s3:GetObject", [f"{BUCKET}/diffs/*", f"{BUCKET}/capture/?/x"]))
    assert decide(statements, "s3:GetObject", f"{BUCKET}/diffs/t1/state/manifest.bin") is Decision.ALLOW
    assert decide(statements, "s3:GetObject", f"{BUCKET}/capture/a/x") is Decision.ALLOW
    assert decide(statements, "s3:GetObject", f"{BUCKET}/capture/ab/x") is Decision.IMPLICIT_DENY
    assert decide(statements, "s3:GetObject", f"{BUCKET}/DIFFS/t1") is Decision.IMPLICIT_DENY
    assert decide(statements, "s3:GetObject", f"{BUCKET}/reports/t1") is Decision.IMPLICIT_DENY


def test_not_action_grants_everything_but_the_actions_it_names() -> None:
    statements = policy({"Effect": "Allow", "NotAction": ["iam:*", "kms:*"], "Resource": "*"})
    assert decide(statements, "s3:GetObject") is Decision.ALLOW
    assert decide(statements, "iam:PassRole") is Decision.IMPLICIT_DENY
    assert decide(statements, "KMS:Decrypt") is Decision.IMPLICIT_DENY


def test_not_resource_grants_everything_but_the_resources_it_names() -> None:
    statements = policy({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/secret/*"})
    assert decide(statements, "s3:GetObject", f"{BUCKET}/diffs/a") is Decision.ALLOW
    assert decide(statements, "s3:GetObject", f"{BUCKET}/secret/a") is Decision.IMPLICIT_DENY


# --- condition operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "context", "granted"),
    [
        ({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, ["sagemaker.amazonaws.com"], True),
        ({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, ["lambda.amazonaws.com"], False),
        ({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, None, False),
        (
            {"StringEquals": {"iam:PassedToService": ["a", "sagemaker.amazonaws.com"]}},
            ["sagemaker.amazonaws.com"],
            True,
        ),
        ({"StringEquals": {"iam:PassedToService": "SageMaker.amazonaws.com"}}, ["sagemaker.amazonaws.com"], False),
        (
            {"StringEqualsIgnoreCase": {"iam:PassedToService": "SageMaker.amazonaws.com"}},
            ["sagemaker.amazonaws.com"],
            True,
        ),
        ({"StringNotEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, ["lambda.amazonaws.com"], True),
        ({"StringNotEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, ["sagemaker.amazonaws.com"], False),
        ({"StringNotEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, None, True),
        ({"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, None, True),
        ({"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, ["lambda.amazonaws.com"], False),
        ({"Null": {"iam:PassedToService": "true"}}, None, True),
        ({"Null": {"iam:PassedToService": "false"}}, None, False),
    ],
)
def test_string_operators(condition: dict[str, Any], context: list[str] | None, granted: bool) -> None:
    statements = policy(allow("iam:PassRole", Condition=condition))
    keys = {} if context is None else {"iam:passedtoservice": tuple(context)}
    decision = evaluate(statements, "iam:PassRole", "arn:aws:iam::1:role/r", keys).decision
    assert (decision is Decision.ALLOW) is granted


@pytest.mark.parametrize(
    ("prefix", "granted"),
    [("capture/t1/", True), ("diffs/", True), ("reports/", False), (None, False)],
)
def test_string_like_on_a_prefix_and_a_request_without_one(prefix: str | None, granted: bool) -> None:
    # GIVEN ListBucket granted only under s3:prefix capture/* or diffs/*
    statements = policy(
        allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["capture/*", "diffs/*"]}})
    )

    # WHEN a request lists under a prefix, or carries no prefix at all (as GetObject's missing-key rule)
    context = {} if prefix is None else {"s3:prefix": (prefix,)}

    # THEN only a matching prefix is granted: a missing key makes StringLike false
    assert (evaluate(statements, "s3:ListBucket", BUCKET, context).decision is Decision.ALLOW) is granted


@pytest.mark.parametrize(
    ("operator", "pattern", "source", "granted"),
    [
        ("ArnLike", "arn:aws:s3:::shadowscale-*", "arn:aws:s3:::shadowscale-dev-data", True),
        (
            "ArnLike",
            "arn:aws:events:*:*:rule/shadowscale-dev-*",
            "arn:aws:events:us-east-1:1:rule/shadowscale-dev-x",
            True,
        ),
        # each of the six ARN parts is matched on its own: a wildcard in the region part stops at its colon
        ("ArnLike", "arn:aws:events:*:1:rule/x", "arn:aws:events:us-east-1:extra:1:rule/x", False),
        ("ArnEquals", "arn:aws:s3:::shadowscale-dev-data", "arn:aws:s3:::shadowscale-dev-data", True),
        ("ArnEquals", "arn:aws:s3:::shadowscale-dev-data", "arn:aws:s3:::other", False),
        ("ArnNotLike", "arn:aws:s3:::shadowscale-*", "arn:aws:s3:::other", True),
        ("ArnLike", "arn:aws:s3:::shadowscale-*", "not-an-arn", False),
    ],
)
def test_arn_operators(operator: str, pattern: str, source: str, granted: bool) -> None:
    statements = policy(allow("sqs:SendMessage", Condition={operator: {"aws:SourceArn": pattern}}))
    decision = evaluate(statements, "sqs:SendMessage", "*", {"aws:sourcearn": (source,)}).decision
    assert (decision is Decision.ALLOW) is granted


def test_bool_denies_insecure_transport_only() -> None:
    # GIVEN the stack's TLS-only queue policy statement next to a grant
    statements = policy(
        allow("sqs:*"),
        {"Effect": "Deny", "Action": "sqs:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    )
    assert decide(statements, "sqs:SendMessage", aws__SecureTransport=["true"]) is Decision.ALLOW
    assert decide(statements, "sqs:SendMessage", aws__SecureTransport=["false"]) is Decision.EXPLICIT_DENY


def test_every_operator_and_key_of_a_block_must_hold() -> None:
    condition = {
        "StringEquals": {"application-autoscaling:service-namespace": "sagemaker"},
        "StringLike": {"application-autoscaling:scalable-dimension": "sagemaker:variant:*"},
    }
    statements = policy(allow("application-autoscaling:RegisterScalableTarget", Condition=condition))
    both = {
        "application-autoscaling:service-namespace": ("sagemaker",),
        "application-autoscaling:scalable-dimension": ("sagemaker:variant:DesiredInstanceCount",),
    }
    one = {"application-autoscaling:service-namespace": ("sagemaker",)}
    action = "application-autoscaling:RegisterScalableTarget"
    assert evaluate(statements, action, "*", both).decision is Decision.ALLOW
    assert evaluate(statements, action, "*", one).decision is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("operator", "values", "granted"),
    [
        ("ForAnyValue:StringEquals", ("a", "z"), True),
        ("ForAnyValue:StringEquals", ("y", "z"), False),
        ("ForAnyValue:StringEquals", (), False),
        ("ForAllValues:StringEquals", ("a", "b"), True),
        ("ForAllValues:StringEquals", ("a", "z"), False),
        ("ForAllValues:StringEquals", (), True),  # no values: every one of them matches
    ],
)
def test_set_qualifiers(operator: str, values: tuple[str, ...], granted: bool) -> None:
    statements = policy(allow("sagemaker:AddTags", Condition={operator: {"aws:TagKeys": ["a", "b"]}}))
    decision = evaluate(statements, "sagemaker:AddTags", "*", {"aws:tagkeys": values}).decision
    assert (decision is Decision.ALLOW) is granted


def test_condition_keys_are_case_insensitive() -> None:
    statements = policy(allow("s3:ListBucket", Condition={"StringLike": {"S3:Prefix": "diffs/*"}}))
    assert decide(statements, "s3:ListBucket", s3__prefix=["diffs/a"]) is Decision.ALLOW


def test_an_unknown_operator_fails_loudly() -> None:
    statements = policy(allow("s3:GetObject", Condition={"IpAddressLike": {"aws:SourceIp": "10.0.0.0/8"}}))
    with pytest.raises(UnknownConditionOperator, match="IpAddressLike"):
        evaluate(statements, "s3:GetObject", "*", {})


def test_resource_policy_principals() -> None:
    caller = Caller("arn:aws:iam::1:role/r", "arn:aws:sts::1:assumed-role/r/f", "1")
    assert caller.named_by("*")
    assert caller.named_by({"AWS": ["arn:aws:iam::1:role/r"]})
    assert caller.named_by({"AWS": "arn:aws:sts::1:assumed-role/r/f"})
    assert not caller.named_by({"Service": "s3.amazonaws.com"})
    assert not caller.named_by({"AWS": "arn:aws:iam::1:root"})
    assert caller.account_named_by({"AWS": "arn:aws:iam::1:root"})


# --- the operation table ----------------------------------------------------------------------------


class FakeBackends(Backends):
    """Object existence and keys as a test sets them."""

    def __init__(self, *, exists: bool = True, object_key: str | None = None, queue_key: str | None = None) -> None:
        super().__init__("123456789012", "us-east-1")
        self.exists, self.object_key, self._queue_key = exists, object_key, queue_key

    def object_state(self, bucket: str, key: str) -> tuple[bool, str | None]:
        return self.exists, self.object_key if self.exists else None

    def queue_key(self, queue_name: str) -> str | None:
        return self._queue_key

    def scalable_target_arn(self, namespace: str, resource_id: str, dimension: str) -> str:
        return "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/abc"


def request(service: str, operation: str, params: dict[str, Any] | None = None, **extra: Any) -> Request:
    response = SimpleNamespace(params=params or {}, querystring=extra.pop("querystring", {}), headers={}, body="")
    return Request(service=service, operation=operation, method="POST", response=response, **extra)


def checks(req: Request, backends: Backends | None = None, **switches: Any) -> list[tuple[str, str]]:
    iam = IamEnforcement(RoleSessions(), **switches)
    built = OPERATIONS[(req.service, req.operation)](req, backends or FakeBackends(), iam)
    return [(check.action, check.resource) for check in built]


def test_update_endpoint_needs_the_endpoint_and_the_config() -> None:
    built = checks(request("sagemaker", "UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c"}))
    assert built == [
        ("sagemaker:UpdateEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"),
        ("sagemaker:UpdateEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"),
    ]


def test_describe_scalable_targets_has_no_resource_type() -> None:
    built = checks(request("application-autoscaling", "DescribeScalableTargets", {"ServiceNamespace": "sagemaker"}))
    assert built == [("application-autoscaling:DescribeScalableTargets", "*")]


def test_a_tagged_model_with_a_role_needs_add_tags_and_pass_role() -> None:
    params = {"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x", "Tags": [{"Key": "k"}]}
    built = checks(request("sagemaker", "CreateModel", params))
    assert [action for action, _ in built] == ["sagemaker:CreateModel", "sagemaker:AddTags", "iam:PassRole"]
    assert built[2][1] == "arn:aws:iam::123456789012:role/x"


def test_registering_a_variant_validates_the_callers_sagemaker_and_cloudwatch_permissions() -> None:
    params = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/e/variant/v",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    built = checks(request("application-autoscaling", "RegisterScalableTarget", params))
    assert [action for action, _ in built] == [
        "application-autoscaling:RegisterScalableTarget",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:DeleteAlarms",
    ]
    assert built[4][1].startswith(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:TargetTracking-endpoint/e/variant/v-"
    )
    every_alarm = checks(
        request("application-autoscaling", "RegisterScalableTarget", params), aas_alarm_resource="any-alarm"
    )
    assert every_alarm[4][1] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"


def test_a_missing_key_asks_for_list_bucket_without_a_prefix() -> None:
    req = request("s3", "GetObject", s3_resource=f"{BUCKET}/diffs/t/state/manifest.bin")
    iam = IamEnforcement(RoleSessions())
    built = OPERATIONS[("s3", "GetObject")](req, FakeBackends(exists=False), iam)
    assert [(c.action, c.resource, dict(c.context)) for c in built] == [
        ("s3:GetObject", f"{BUCKET}/diffs/t/state/manifest.bin", {}),
        ("s3:ListBucket", BUCKET, {}),
    ]
    assert built[1].denial is not None
    assert (built[1].denial.code, built[1].denial.status) == ("AccessDenied", 403)


def test_an_encrypted_object_and_queue_need_their_keys() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    got = checks(request("s3", "GetObject", s3_resource=f"{BUCKET}/c/o"), FakeBackends(object_key=key))
    assert got == [("s3:GetObject", f"{BUCKET}/c/o"), ("kms:Decrypt", key)]
    sent = checks(
        request("sqs", "SendMessage", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"}),
        FakeBackends(queue_key=key),
    )
    assert sent == [
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q"),
        ("kms:GenerateDataKey", key),
        ("kms:Decrypt", key),
    ]


def test_list_bucket_carries_the_requests_prefix() -> None:
    req = request("s3", "ListBucket", s3_resource=BUCKET, querystring={"prefix": ["capture/t/"]})
    built = OPERATIONS[("s3", "ListBucket")](req, FakeBackends(), IamEnforcement(RoleSessions()))
    assert dict(built[0].context) == {"s3:prefix": ("capture/t/",)}


class OnePrincipal(RoleSessions):
    def principal(self, access_key_id: str) -> Principal | None:
        return Principal("arn:aws:iam::123456789012:role/r", "arn:aws:sts::123456789012:assumed-role/r/f", "function f")


def moto_response(action: str, service: str = "sagemaker", key: str = "ASIAFUNCTION") -> Any:
    return SimpleNamespace(
        headers={"Authorization": f"AWS4-HMAC-SHA256 Credential={key}/20261123/us-east-1/{service}/aws4_request, ..."},
        data={},
        method="POST",
        _get_action=lambda: action,
    )


def test_an_operation_the_table_does_not_describe_fails_loudly_for_a_stack_role() -> None:
    # GIVEN enforcement with a request from one of the stack's role sessions
    iam = IamEnforcement(OnePrincipal())

    # WHEN it calls an operation the table does not describe
    with pytest.raises(UnmodelledOperation, match="sagemaker:ListEndpoints"):
        iam.authorize(moto_response("ListEndpoints"))

    # THEN it was refused (not allowed by default) and is listed for the test to see
    assert iam.unmodelled == ["sagemaker:ListEndpoints by function f"]


def test_the_operator_and_unsigned_requests_are_not_evaluated() -> None:
    iam = IamEnforcement(RoleSessions())  # no sessions: every key is the operator's
    iam.authorize(moto_response("ListEndpoints"))
    iam.authorize(SimpleNamespace(headers={}, data={}, method="GET", _get_action=lambda: "ListEndpoints"))
    assert iam.records == []
    assert iam.unmodelled == []


class KeyPolicyBackends(FakeBackends):
    def __init__(self, key_policy: dict[str, Any]) -> None:
        super().__init__()
        self._key_policy = key_policy

    def key_policy(self, key_arn: str) -> dict[str, Any]:
        return self._key_policy


class RoleAllowsDecrypt(IamEnforcement):
    def role_statements(self, role_arn: str) -> list[Any]:
        return policy(allow("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k"))


@pytest.mark.parametrize(
    ("key_statement", "allowed"),
    [
        # the default key policy: the account's IAM policies govern the key
        ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*"}, True),
        # a key policy that names only a service: an IAM Allow alone does not count
        ({"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "kms:*"}, False),
    ],
)
def test_iam_policies_count_for_a_key_only_where_its_key_policy_delegates_to_them(
    key_statement: dict[str, Any], allowed: bool
) -> None:
    # GIVEN a role whose IAM policy allows kms:Decrypt on the key, and the key's policy
    key_policy = {"Version": "2012-10-17", "Statement": [{**key_statement, "Resource": "*"}]}
    iam = RoleAllowsDecrypt(RoleSessions(), backends=KeyPolicyBackends(key_policy))
    principal = Principal("arn:aws:iam::123456789012:role/r", "arn:aws:sts::123456789012:assumed-role/r/f", "f")

    # WHEN the role decrypts with the key
    record = iam._decide(
        principal, "sqs:ReceiveMessage", Check("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k")
    )

    # THEN it is allowed only if the key policy lets IAM policies govern the key
    assert record.allowed is allowed


def test_state_machine_clients_are_made_with_their_role_only_while_installed() -> None:
    import importlib

    from moto.stepfunctions.parser.asl.utils import boto_client

    # GIVEN moto's factory of the interpreter's SDK clients
    factory = boto_client.boto_client_for
    sessions = RoleSessions().install()
    modules = [importlib.import_module(name) for name in RoleSessions._INTERPRETER_MODULES]
    try:
        # THEN every module the interpreter calls it from uses the role-aware one
        assert all(module.boto_client_for is not factory for module in modules)
    finally:
        sessions.uninstall()
    # ... and moto's own again once uninstalled (none left bound to a stopped cloud's sessions)
    assert all(module.boto_client_for is factory for module in modules)


def test_an_item_of_a_table_encrypted_with_a_customer_key_needs_no_kms_permission_of_the_caller() -> None:
    # DynamoDB uses the table's key itself; a GetItem is authorised on the table alone
    built = checks(request("dynamodb", "GetItem", {"TableName": "shadowscale-dev-policies"}))
    assert built == [("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/shadowscale-dev-policies")]
