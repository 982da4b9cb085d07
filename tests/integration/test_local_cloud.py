"""The local cloud itself: the deployed stack is complete, and the platform parts moto lacks behave."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_endpoint

REPO = Path(__file__).resolve().parents[2]
MONDAY_0500_UTC = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(MONDAY_0500_UTC), stack_name="lc-test") as running:
        create_endpoint(
            running.client("sagemaker"), "fraud-detector", {"primary": (1, 1.0), "candidate": (1, 0.1)}, running.advance
        )
        yield running


def test_stack_has_every_output_including_ones_moto_drops(cloud: LocalCloud) -> None:
    described = cloud.client("cloudformation").describe_stacks(StackName="lc-test")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    assert outputs["ScheduleGroupName"] == "shadowscale-dev"
    assert outputs["PolicyTableName"] == "shadowscale-dev-policies"


def test_resources_moto_skips_are_created_from_the_template(cloud: LocalCloud) -> None:
    [alarm] = cloud.client("cloudwatch").describe_alarms(AlarmNames=["shadowscale-dev-dead-letters"])["MetricAlarms"]
    assert alarm["AlarmActions"] == [cloud.outputs["NotificationTopicArn"]]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": "shadowscale-dev-dead-letters"}]
    groups = [g["Name"] for g in cloud.client("scheduler").list_schedule_groups()["ScheduleGroups"]]
    assert "shadowscale-dev" in groups
    policy = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.outputs["DeadLetterQueueUrl"], AttributeNames=["Policy"]
    )["Attributes"]["Policy"]
    assert json.loads(policy)["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_direct_invoke_runs_our_code_with_the_template_environment(cloud: LocalCloud) -> None:
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.outputs["ScheduledScalerFunctionArn"],
        Payload=json.dumps({"endpoint": "fraud-detector", "schedule": "manual"}).encode(),
    )
    result = json.loads(response["Payload"].read())
    assert result["outcome"] == "ignored"  # no policy stored for it: our code ran and said so
    assert "policy#fraud-detector" in result["notes"][0]


def test_malformed_event_is_reported_by_the_function_not_the_emulator(cloud: LocalCloud) -> None:
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.outputs["AlarmScalerFunctionArn"], Payload=b'{"source": "aws.cloudwatch"}'
    )
    assert json.loads(response["Payload"].read())["outcome"] == "rejected"


def test_an_exception_surfaces_as_lambda_function_error_with_its_class_name(cloud: LocalCloud) -> None:
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.outputs["DeferredScalerFunctionArn"], Payload=b'{"Records": "not a list"}'
    )
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"]
    assert payload["errorType"]
    assert payload["errorMessage"]


def test_delayed_message_waits_for_the_clock_and_failed_one_is_dead_lettered(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    body = json.dumps(
        {
            "kind": "shadowscale.deferred-change",
            "change_id": "c-dl",
            "endpoint": "fraud-detector",
            "source": {"kind": "shadowscale.schedule-tick", "endpoint": "fraud-detector", "schedule": "heartbeat"},
            "reason": "test",
            "deferred_at": MONDAY_0500_UTC.isoformat(),
        }
    )
    # A lease that stays held (a stuck writer, not a shadow test: a replay blocked by a test is skipped, not
    # redelivered): every replay is blocked, so the queue redrives it.
    cloud.client("dynamodb").put_item(
        TableName=cloud.outputs["EndpointStateTableName"],
        Item={
            "endpoint": {"S": "fraud-detector"},
            "leaseOwner": {"S": "autopilot:stuck"},
            "leaseExpiresAt": {"N": str(int(cloud.clock.now().timestamp()) + 86_400)},
        },
    )
    cloud.client("dynamodb").put_item(
        TableName=cloud.outputs["PolicyTableName"],
        Item={
            "id": {"S": "policy#fraud-detector"},
            "value": {
                "S": json.dumps(
                    {
                        "revision": 1,
                        "policy": {
                            "apiVersion": "shadowscale/v1",
                            "endpoint": "fraud-detector",
                            "variants": [{"name": "primary", "minInstances": 1, "maxInstances": 2}],
                        },
                    }
                )
            },
        },
    )
    sqs.send_message(QueueUrl=cloud.outputs["DeferredChangeQueueUrl"], MessageBody=body, DelaySeconds=300)
    before = len(cloud.deliveries)
    cloud.advance(299)

    def deferred_deliveries() -> list[Any]:
        return [d for d in cloud.deliveries[before:] if d.kind == "sqs" and d.detail.endswith("deferred-changes")]

    assert deferred_deliveries() == []
    cloud.advance(8 * 360 + 2)  # 8 receives, a visibility timeout (360 s) apart
    assert len(deferred_deliveries()) == 8
    dead = sqs.receive_message(QueueUrl=cloud.outputs["DeadLetterQueueUrl"], MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in dead]
    assert [b["change_id"] for b in bodies if "change_id" in b] == ["c-dl"]


def test_a_rate_schedule_without_a_start_date_fires_from_its_creation_on_the_local_clock(cloud: LocalCloud) -> None:
    # GIVEN a rate(5 minutes) schedule created now (the clock runs in the past of the wall clock)
    scheduler = cloud.client("scheduler")
    created_at = cloud.clock.now()
    scheduler.create_schedule(
        Name="lc-test-heartbeat",
        GroupName="shadowscale-dev",
        ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": cloud.outputs["ScheduledScalerFunctionArn"],
            "RoleArn": cloud.outputs["SchedulerRoleArn"],
            "Input": json.dumps({"endpoint": "fraud-detector", "schedule": "heartbeat"}),
        },
    )
    assert scheduler.get_schedule(Name="lc-test-heartbeat", GroupName="shadowscale-dev")["CreationDate"] == created_at
    runtime = cloud.runtime
    assert runtime is not None

    def heartbeats() -> int:
        return len([i for i in runtime.invocations if i.function_name.endswith("scheduled-scaler")])

    fired_before = heartbeats()
    # WHEN 16 minutes pass THEN it fired three times, every 5 minutes from its creation
    cloud.advance(16 * 60)
    fired = heartbeats() - fired_before
    scheduler.delete_schedule(Name="lc-test-heartbeat", GroupName="shadowscale-dev")
    assert fired == 3
