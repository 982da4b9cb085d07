"""IAM enforced on the deployed stack: each function under its own role, denials as the services word
them, and the rules AWS documents (S3's 403 for a missing key, SSE-KMS keys, Application Auto Scaling's
validation of its caller), each shown on the stack as written and on a copy with a statement taken out."""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from shadowscale_localcloud.iam_enforcement import RoleCredentials
from shadowscale_localcloud.platform import LocalCloud
from shadowscale_localcloud.resources import create_endpoint

from tests.conftest import load_event

REPO = Path(__file__).resolve().parents[2]
ENDPOINT = "fraud-detector"
TICKS = itertools.count()


def without_statement(template: str, sid: str) -> str:
    """The template text with every statement of that Sid taken out (an anchor's copies go with it)."""
    lines = template.splitlines(keepends=True)
    out: list[str] = []
    skipping: int | None = None
    found = False
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if skipping is not None:
            if line.strip() and (indent < skipping or (indent == skipping and line.lstrip().startswith("- "))):
                skipping = None
            else:
                continue
        if re.match(rf"\s*- Sid: {re.escape(sid)}\s*$", line):
            skipping, found = indent, True
            continue
        out.append(line)
    assert found, f"no statement {sid} in the template"
    return "".join(out)


def edited_stack(root: Path, template: str) -> Path:
    """A checkout with another template.yaml and the real code beside it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "template.yaml").write_text(template)
    for folder in ("functions", "layers", "statemachine", "events", "examples"):
        (root / folder).symlink_to(REPO / folder)
    return root


# As a deployer sets it (the template has no default): the endpoints these tests create match it.
PARAMETERS = {"EndpointNamePattern": "fraud-*"}


def start(root: Path, stack_name: str) -> LocalCloud:
    cloud = LocalCloud(root=root, stack_name=stack_name, parameters=dict(PARAMETERS)).start()
    create_endpoint(cloud.client("sagemaker"), ENDPOINT, {"primary": (1, 1.0)}, cloud.advance)
    return cloud


# One local cloud at a time in a process (moto's backends and the IAM hook are global): the stack as
# written, then the broken copy, each for the tests of one class.
@pytest.fixture(scope="class")
def cloud() -> Iterator[LocalCloud]:
    running = start(REPO, "iam-test")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="class")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """The stack with four statements taken out or narrowed, each examined by one test below."""
    template = (REPO / "template.yaml").read_text()
    template = without_statement(template, "ReadPolicies")  # the capacity functions read no policy
    template = without_statement(template, "UseStackKey")  # nobody may use the stack's key
    template = without_statement(template, "AutoScalingValidatesAlarms")  # no alarm permissions
    bucket = "shadowscale-${Stage}-data-${AWS::AccountId}-${AWS::Region}"
    listing = f'            Resource: !Sub "arn:${{AWS::Partition}}:s3:::{bucket}"\n'
    assert template.count(listing) == 1
    template = template.replace(  # ListBucket only under a prefix, as the template once had it
        listing, listing + "            Condition: { StringLike: { s3:prefix: [capture/*, diffs/*] } }\n"
    )
    running = start(edited_stack(tmp_path_factory.mktemp("broken-stack"), template), "iam-broken")
    try:
        yield running
    finally:
        running.stop()


def function_role(cloud: LocalCloud, output: str) -> str:
    role: str = cloud.client("lambda").get_function(FunctionName=cloud.outputs[output])["Configuration"]["Role"]
    return role


def as_role(cloud: LocalCloud, output: str, service: str) -> Any:
    """A client signed as the function's own role session, as its code's clients are."""
    assert cloud.role_sessions is not None
    name = cloud.outputs[output].rsplit(":", 1)[-1]
    credentials: RoleCredentials = cloud.role_sessions.credentials(
        function_role(cloud, output), name, f"function {name}"
    )
    session: Any = boto3.Session(  # clients are typed per service name only
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )
    return session.client(service)


def tick() -> dict[str, Any]:
    """A schedule tick never seen before (a repeated one is answered from the idempotency record)."""
    event = load_event("schedule_tick.json")
    event["executionId"] = str(uuid.uuid4())
    event["scheduledTime"] = f"2026-11-23T07:{next(TICKS):02d}:00Z"
    return event


def invoke(cloud: LocalCloud, output: str, event: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    response = cloud.client("lambda").invoke(FunctionName=cloud.outputs[output], Payload=json.dumps(event).encode())
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def send_deferred_change(running: LocalCloud) -> None:
    as_role(running, "ScheduledScalerFunctionArn", "sqs").send_message(
        QueueUrl=running.outputs["DeferredChangeQueueUrl"], MessageBody="{}"
    )


def read_capture(running: LocalCloud) -> bytes:
    bucket = running.outputs["DataBucketName"]
    running.client("s3").put_object(Bucket=bucket, Key="capture/t/o.jsonl", Body=b"{}\n")
    body: bytes = (
        as_role(running, "CaptureDiffFunctionArn", "s3")
        .get_object(Bucket=bucket, Key="capture/t/o.jsonl")["Body"]
        .read()
    )
    return body


def register(running: LocalCloud) -> Any:
    return as_role(running, "ScheduledScalerFunctionArn", "application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{ENDPOINT}/variant/primary",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=3,
    )


class TestTheStackAsWritten:
    """Every call of the checks below is allowed on the stack as template.yaml writes it."""

    def test_each_function_runs_under_its_own_role_and_the_operator_keeps_its_credentials(
        self, cloud: LocalCloud
    ) -> None:
        assert cloud.iam is not None
        operator_key = os.environ.get("AWS_ACCESS_KEY_ID")

        # WHEN the scheduled scaler and then the alarm scaler run (both build the same capacity part)
        with cloud.iam.recording() as scheduled:
            invoke(cloud, "ScheduledScalerFunctionArn", tick())
        with cloud.iam.recording() as alarmed:
            invoke(cloud, "AlarmScalerFunctionArn", load_event("alarm_action_alarm.json"))

        # THEN each one's calls were made as its own role's session: no client was kept across them
        assert scheduled
        assert alarmed
        assert {r.principal.role_arn for r in scheduled} == {function_role(cloud, "ScheduledScalerFunctionArn")}
        assert {r.principal.role_arn for r in alarmed} == {function_role(cloud, "AlarmScalerFunctionArn")}
        assert all(r.principal.session_arn.endswith("/shadowscale-dev-alarm-scaler") for r in alarmed)
        # ... and the process's own credentials are back once they end
        assert os.environ.get("AWS_ACCESS_KEY_ID") == operator_key
        assert "AWS_SESSION_TOKEN" not in os.environ

    def test_an_operator_client_made_while_a_function_runs_keeps_the_operators_credentials(
        self, cloud: LocalCloud
    ) -> None:
        # GIVEN a function running on another thread (a state machine's task, say) under its role's session
        runtime, sessions = cloud.runtime, cloud.role_sessions
        assert runtime is not None
        assert sessions is not None
        function = "shadowscale-dev-shadow-test-tasks"
        role = cloud.client("lambda").get_function(FunctionName=function)["Configuration"]["Role"]
        session = dict(sessions.function_environment(role, function))
        operator_key = os.environ.get("AWS_ACCESS_KEY_ID")
        running, done = threading.Event(), threading.Event()
        seen_by_function: list[str] = []

        def run_function() -> None:
            with runtime._function_environment(function, session):
                found = boto3.Session().get_credentials()
                seen_by_function.append(found.access_key if found else "")
                running.set()
                done.wait(10)

        worker = threading.Thread(target=run_function)
        worker.start()
        try:
            assert running.wait(10)
            # WHEN the operator (the CLI in the demo) builds a client meanwhile
            operator_credentials = boto3.Session().get_credentials()
        finally:
            done.set()
            worker.join(10)

        # THEN the operator's client signs as the operator and the function's as its role's session
        assert operator_credentials is not None
        assert operator_credentials.access_key == operator_key
        assert seen_by_function == [session["AWS_ACCESS_KEY_ID"]]
        assert session["AWS_ACCESS_KEY_ID"] != operator_key

    def test_the_same_call_on_the_stack_as_written_is_allowed(self, cloud: LocalCloud) -> None:
        assert cloud.iam is not None
        with cloud.iam.recording() as made:
            _, function_error = invoke(cloud, "ScheduledScalerFunctionArn", tick())
        assert function_error is None
        assert any(r.check.action == "dynamodb:GetItem" and r.allowed for r in made)
        assert all(r.allowed for r in made)

    def test_a_missing_key_is_not_found_for_a_role_that_may_list_the_bucket(self, cloud: LocalCloud) -> None:
        s3 = as_role(cloud, "CaptureDiffFunctionArn", "s3")
        with pytest.raises(ClientError) as caught:
            s3.get_object(Bucket=cloud.outputs["DataBucketName"], Key="diffs/new-test/state/manifest.bin")
        assert error(caught)[0] == "NoSuchKey"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    def test_a_key_outside_the_roles_prefixes_is_denied_whether_or_not_it_exists(self, cloud: LocalCloud) -> None:
        bucket = cloud.outputs["DataBucketName"]
        cloud.client("s3").put_object(Bucket=bucket, Key="reports/x/report.json", Body=b"{}")
        s3 = as_role(cloud, "CaptureDiffFunctionArn", "s3")
        for key in ("reports/x/report.json", "reports/x/missing.json"):
            with pytest.raises(ClientError) as caught:
                s3.get_object(Bucket=bucket, Key=key)
            code, message = error(caught)
            assert code == "AccessDenied"
            assert f"s3:GetObject on resource: arn:aws:s3:::{bucket}/{key}" in message

    def test_the_scaler_sends_to_the_encrypted_queue_with_the_stack_key(self, cloud: LocalCloud) -> None:
        send_deferred_change(cloud)
        assert cloud.iam is not None
        assert any(r.check.action == "kms:GenerateDataKey" and r.allowed for r in cloud.iam.records)

    def test_the_diff_function_reads_capture_the_bucket_encrypted(self, cloud: LocalCloud) -> None:
        assert read_capture(cloud) == b"{}\n"

    def test_a_caller_that_may_scale_the_variant_and_manage_its_alarms_registers_it(self, cloud: LocalCloud) -> None:
        register(cloud)
        targets = cloud.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
        assert [t["ResourceId"] for t in targets["ScalableTargets"]] == [f"endpoint/{ENDPOINT}/variant/primary"]

    def test_if_validation_named_every_alarm_the_stacks_scoped_grant_would_not_pass(self, cloud: LocalCloud) -> None:
        # Which alarm resource the validation names is undocumented: with "every alarm", a grant scoped to
        # the target's TargetTracking alarms is refused, so the stack's choice is visible here.
        assert cloud.iam is not None
        cloud.iam.aas_alarm_resource = "any-alarm"
        try:
            with pytest.raises(ClientError) as caught:
                register(cloud)
        finally:
            cloud.iam.aas_alarm_resource = "target-alarms"
        assert (
            "cloudwatch:PutMetricAlarm on resource: arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"
            in error(caught)[1]
        )


def register_as(running: LocalCloud, output: str, **target: str) -> Any:
    request = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{ENDPOINT}/variant/primary",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        **target,
    }
    client = as_role(running, output, "application-autoscaling")
    return client.register_scalable_target(MinCapacity=1, MaxCapacity=3, **request)


def operator_config(running: LocalCloud, name: str, tags: list[dict[str, str]] | None = None) -> str:
    """An endpoint config made by the operator (not by a stack role), with the tags given."""
    sagemaker = running.client("sagemaker")
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=f"{ENDPOINT}-config-1")["ProductionVariants"][0]
    extra: dict[str, Any] = {"Tags": tags} if tags else {}
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant], **extra)
    return name


TEST_TAG = [{"Key": "shadowscale:test", "Value": "t1"}]


class TestWhatTheStackMayTouch:
    """The grants scoped by name, tag and condition key: allowed inside, denied just outside."""

    @pytest.mark.parametrize(
        "target",
        [
            {
                "ServiceNamespace": "dynamodb",
                "ResourceId": "table/orders",
                "ScalableDimension": "dynamodb:table:ReadCapacityUnits",
            },
            {"ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency"},
        ],
    )
    @pytest.mark.parametrize("output", ["ScheduledScalerFunctionArn", "ShadowTestTasksFunctionArn"])
    def test_a_scalable_target_other_than_a_variants_instance_count_is_denied(
        self, cloud: LocalCloud, output: str, target: dict[str, str]
    ) -> None:
        # GIVEN the capacity and shadow-test roles, whose target grants carry service-namespace and
        # scalable-dimension conditions; WHEN either registers another service's target or dimension
        with pytest.raises(ClientError) as caught:
            register_as(cloud, output, **target)
        # THEN Application Auto Scaling refuses it: the local cloud gave the request's keys to the evaluation
        code, message = error(caught)
        assert code == "AccessDeniedException"
        assert "is not authorized to perform: application-autoscaling:RegisterScalableTarget" in message

    def test_the_variants_own_instance_count_is_allowed_to_the_shadow_test_role(self, cloud: LocalCloud) -> None:
        register_as(cloud, "ShadowTestTasksFunctionArn")

    def test_an_endpoint_outside_the_pattern_is_denied(self, cloud: LocalCloud) -> None:
        create_endpoint(cloud.client("sagemaker"), "billing-model", {"primary": (1, 1.0)}, cloud.advance)
        sagemaker = as_role(cloud, "ScheduledScalerFunctionArn", "sagemaker")
        sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        with pytest.raises(ClientError) as caught:
            sagemaker.describe_endpoint(EndpointName="billing-model")
        assert (
            "sagemaker:DescribeEndpoint on resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint/billing-model"
            in error(caught)[1]
        )

    def test_the_shadow_test_role_deletes_only_configs_named_as_a_test_names_them(self, cloud: LocalCloud) -> None:
        sagemaker = as_role(cloud, "ShadowTestTasksFunctionArn", "sagemaker")
        # a test's temporary configs (<endpoint>-<8 hex>-shadow, -ramp<n>): deleted
        for name in (f"{ENDPOINT}-0a1b2c3d-shadow", f"{ENDPOINT}-0a1b2c3d-ramp1"):
            sagemaker.delete_endpoint_config(EndpointConfigName=operator_config(cloud, name, TEST_TAG))
        refused = [
            operator_config(cloud, f"{ENDPOINT}-config-2", TEST_TAG),  # your own name, even tagged as a test's
            f"{ENDPOINT}-config-1",  # the endpoint's own config
        ]
        for name in refused:
            with pytest.raises(ClientError) as caught:
                sagemaker.delete_endpoint_config(EndpointConfigName=name)
            config_arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"
            assert f"sagemaker:DeleteEndpointConfig on resource: {config_arn}" in error(caught)[1]
        # ... and a model that is not a derived candidate is never deleted
        with pytest.raises(ClientError) as caught:
            sagemaker.delete_model(ModelName=f"{ENDPOINT}-primary-model")
        assert "sagemaker:DeleteModel" in error(caught)[1]

    def test_a_config_without_shadowscales_tag_is_not_created(self, cloud: LocalCloud) -> None:
        sagemaker = as_role(cloud, "ShadowTestTasksFunctionArn", "sagemaker")
        variant = cloud.client("sagemaker").describe_endpoint_config(EndpointConfigName=f"{ENDPOINT}-config-1")[
            "ProductionVariants"
        ][0]
        with pytest.raises(ClientError) as caught:
            sagemaker.create_endpoint_config(EndpointConfigName="unmarked", ProductionVariants=[variant])
        assert "sagemaker:CreateEndpointConfig" in error(caught)[1]
        with pytest.raises(ClientError) as caught:  # a tag key that is not shadowscale's
            sagemaker.create_endpoint_config(
                EndpointConfigName="other-tags",
                ProductionVariants=[variant],
                Tags=[*TEST_TAG, {"Key": "owner", "Value": "me"}],
            )
        assert "sagemaker:AddTags" in error(caught)[1]

    @pytest.mark.parametrize(
        ("model", "role", "denied"),
        [
            (f"{ENDPOINT}-v2-0a1b2c3d-cand", "sagemaker-execution", None),
            (f"{ENDPOINT}-v2-0a1b2c3d-cand", "admin", "iam:PassRole"),
            (f"{ENDPOINT}-v2", "sagemaker-execution", "sagemaker:CreateModel"),
        ],
    )
    def test_a_derived_model_is_created_only_under_a_tests_name_and_with_a_model_role(
        self, cloud: LocalCloud, model: str, role: str, denied: str | None
    ) -> None:
        sagemaker = as_role(cloud, "ShadowTestTasksFunctionArn", "sagemaker")
        request = {
            "ModelName": model,
            "PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:latest"},
            "ExecutionRoleArn": f"arn:aws:iam::123456789012:role/{role}",
            "Tags": TEST_TAG,
        }
        if denied is None:
            sagemaker.create_model(**request)
            sagemaker.delete_model(ModelName=model)
            return
        with pytest.raises(ClientError) as caught:
            sagemaker.create_model(**request)
        assert f"is not authorized to perform: {denied}" in error(caught)[1]

    def test_the_topic_refuses_a_publish_without_tls_and_takes_the_roles_publish(self, cloud: LocalCloud) -> None:
        assert cloud.iam is not None
        topic = cloud.outputs["NotificationTopicArn"]
        as_role(cloud, "ShadowTestTasksFunctionArn", "sns").publish(TopicArn=topic, Message="hello")
        # The topic's policy is in place and evaluated: the role's publish is allowed, its Deny not matched
        with cloud.iam.recording() as made:
            as_role(cloud, "ShadowTestTasksFunctionArn", "sns").publish(TopicArn=topic, Message="again")
        assert any(r.check.action == "sns:Publish" and r.allowed for r in made)
        policy = json.loads(cloud.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
        assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport", "StackAlarmsPublish"]


class TestAStackWithStatementsTakenOut:
    """The same calls, each refused as its service refuses them, once its statement is gone."""

    def test_a_function_whose_statement_was_taken_out_is_denied_as_dynamodb_words_it(self, broken: LocalCloud) -> None:
        # GIVEN the capacity functions without ReadPolicies (dynamodb:GetItem on the policy table)
        # WHEN a schedule fires
        result, function_error = invoke(broken, "ScheduledScalerFunctionArn", tick())

        # THEN the function fails with DynamoDB's AccessDeniedException naming the action and the table
        assert function_error is not None
        assert "AccessDeniedException" in result["errorMessage"]
        assert re.search(
            r"User: arn:aws:sts::123456789012:assumed-role/iam-broken-ScheduledScalerFunctionRole-\w+/"
            r"shadowscale-dev-scheduled-scaler is not authorized to perform: dynamodb:GetItem on resource: "
            r"arn:aws:dynamodb:us-east-1:123456789012:table/shadowscale-dev-policies",
            result["errorMessage"],
        )

    def test_a_missing_key_is_access_denied_when_list_bucket_is_granted_only_under_a_prefix(
        self, broken: LocalCloud
    ) -> None:
        # GIVEN ListBucket under an s3:prefix condition only: a GetObject request carries no prefix
        s3 = as_role(broken, "CaptureDiffFunctionArn", "s3")
        with pytest.raises(ClientError) as caught:
            s3.get_object(Bucket=broken.outputs["DataBucketName"], Key="diffs/new-test/state/manifest.bin")
        assert error(caught) == ("AccessDenied", "Access Denied")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        # ... while listing under the prefix itself is allowed
        assert s3.list_objects_v2(Bucket=broken.outputs["DataBucketName"], Prefix="diffs/")["KeyCount"] == 0

    def test_without_the_key_statement_sqs_refuses_the_message(self, broken: LocalCloud) -> None:
        # GIVEN the scaler's role without UseStackKey; WHEN it sends a deferred change
        with pytest.raises(ClientError) as caught:
            send_deferred_change(broken)

        # THEN SQS refuses with its KMS error, naming GenerateDataKey on the queue's key
        code, message = error(caught)
        assert code == "KMS.AccessDeniedException"
        assert re.search(
            r"is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:\d+:key/", message
        )

    def test_without_kms_decrypt_s3_refuses_the_encrypted_object(self, broken: LocalCloud) -> None:
        with pytest.raises(ClientError) as caught:
            read_capture(broken)
        code, message = error(caught)
        assert code == "AccessDenied"
        assert "is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:" in message

    def test_a_caller_without_the_alarm_permissions_is_refused(self, broken: LocalCloud) -> None:
        with pytest.raises(ClientError) as caught:
            register(broken)
        code, message = error(caught)
        assert code == "AccessDeniedException"
        assert "is not authorized to perform: cloudwatch:PutMetricAlarm on resource: " in message
        assert f":alarm:TargetTracking-endpoint/{ENDPOINT}/variant/primary-AlarmHigh-" in message
        assert (
            broken.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")[
                "ScalableTargets"
            ]
            == []
        )

    def test_the_validation_error_code_is_a_switch(self, broken: LocalCloud) -> None:
        # The validation page words a failed validation as a ValidationException, the troubleshooting page
        # as AccessDeniedException: both can be played.
        assert broken.iam is not None
        broken.iam.aas_validation_error = "ValidationException"
        try:
            with pytest.raises(ClientError) as caught:
                register(broken)
        finally:
            broken.iam.aas_validation_error = "AccessDeniedException"
        assert error(caught)[0] == "ValidationException"
