"""An EventBridge rule's failed delivery reaches the target's dead-letter queue only if the queue policy
and, for an encrypted queue, the key policy let events.amazonaws.com in (EventBridge User Guide, "Event
retry policy and using dead-letter queues"; SQS Developer Guide, "Key management")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shadowscale.cli.main import main as cli
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_endpoint

REPO = Path(__file__).resolve().parents[2]
STACK = "dlq-test"
ALARM = "fraud-detector-latency-high"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # GIVEN the stack, an endpoint with its alarms and the policy applied with the CLI (which makes the rule)
    with LocalCloud(root=REPO, clock=AcceleratedClock(datetime(2026, 11, 23, 5, 0, tzinfo=UTC)), stack_name=STACK) as c:
        create_endpoint(
            c.client("sagemaker"), "fraud-detector", {"primary": (1, 1.0), "candidate": (1, 0.1)}, c.advance
        )
        for name in (ALARM, "fraud-detector-candidate-5xx"):
            c.client("cloudwatch").put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/SageMaker",
                MetricName="ModelLatency",
                Dimensions=[{"Name": "EndpointName", "Value": "fraud-detector"}],
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1.0,
                ComparisonOperator="GreaterThanThreshold",
            )
        policy = str(REPO / "examples" / "capacity_policy.yaml")
        assert cli(["policy", "apply", policy, "--stack-name", STACK, "--region", "us-east-1"]) == 0
        # AND the rule's target fails: the function it names no longer exists (not retried: straight to the DLQ)
        c.client("lambda").delete_function(FunctionName=c.outputs["AlarmScalerFunctionArn"])
        yield c


@pytest.fixture
def stack_policies(cloud: LocalCloud) -> Iterator[dict[str, Any]]:
    """The DLQ's policy and the key's policy as deployed; restored after each test."""
    sqs, kms = cloud.client("sqs"), cloud.client("kms")
    queue_url = cloud.outputs["DeadLetterQueueUrl"]
    queue_policy = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    key_id = queue_policy["KmsMasterKeyId"]
    key_policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    for message in dead_letters(cloud):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    yield {"queue": json.loads(queue_policy["Policy"]), "key": json.loads(key_policy), "key_id": key_id}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": queue_policy["Policy"]})
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=key_policy)


def without_events(policy: dict[str, Any]) -> str:
    statements = [s for s in policy["Statement"] if s.get("Principal") != {"Service": "events.amazonaws.com"}]
    assert len(statements) < len(policy["Statement"]), "the stack's policy has no statement for EventBridge"
    return json.dumps({**policy, "Statement": statements})


def alarm_transition(cloud: LocalCloud) -> str:
    """Flip the alarm's state (each change is one event on the default bus); the new state."""
    [alarm] = cloud.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    state = "OK" if alarm["StateValue"] == "ALARM" else "ALARM"
    cloud.clock.sleep(60)
    cloud.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason="test")
    return state


def dead_letters(cloud: LocalCloud) -> list[dict[str, Any]]:
    received = cloud.client("sqs").receive_message(
        QueueUrl=cloud.outputs["DeadLetterQueueUrl"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    messages: list[dict[str, Any]] = received.get("Messages", [])
    return messages


def failed_to_dead_letter_count(cloud: LocalCloud, rule_name: str) -> float:
    statistics = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Events",
        MetricName="InvocationsFailedToBeSentToDlq",
        Dimensions=[{"Name": "RuleName", "Value": rule_name}],
        StartTime=cloud.clock.now() - timedelta(days=1),
        EndTime=cloud.clock.now() + timedelta(minutes=1),
        Period=86400 * 2,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(point["Sum"] for point in statistics))


def test_an_alarm_event_the_target_cannot_take_lands_in_the_dead_letter_queue(
    cloud: LocalCloud, stack_policies: dict[str, Any]
) -> None:
    # WHEN the alarm changes state
    state = alarm_transition(cloud)
    # THEN the event is in the DLQ, with the attributes EventBridge documents
    [message] = dead_letters(cloud)
    event = json.loads(message["Body"])
    assert (event["detail-type"], event["detail"]["alarmName"], event["detail"]["state"]["value"]) == (
        "CloudWatch Alarm State Change",
        ALARM,
        state,
    )
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "NO_RESOURCE"
    assert attributes["TARGET_ARN"] == cloud.outputs["AlarmScalerFunctionArn"]
    assert ":rule/shadowscale-dev-" in attributes["RULE_ARN"]
    assert cloud.rule_targets is not None
    assert cloud.rule_targets.dead_letters[-1].sent


def test_without_the_queue_policy_statement_the_event_is_lost_and_counted(
    cloud: LocalCloud, stack_policies: dict[str, Any]
) -> None:
    # GIVEN the DLQ's policy without its statement for EventBridge
    cloud.client("sqs").set_queue_attributes(
        QueueUrl=cloud.outputs["DeadLetterQueueUrl"], Attributes={"Policy": without_events(stack_policies["queue"])}
    )
    assert cloud.rule_targets is not None
    before = len(cloud.rule_targets.dead_letters)
    # WHEN the alarm changes state
    alarm_transition(cloud)
    # THEN nothing reaches the queue, and InvocationsFailedToBeSentToDlq counts the loss
    assert dead_letters(cloud) == []
    [outcome] = cloud.rule_targets.dead_letters[before:]
    assert not outcome.sent
    assert "sqs:SendMessage" in outcome.reason
    assert failed_to_dead_letter_count(cloud, outcome.rule) >= 1


def test_without_the_key_policy_statement_the_encrypted_queue_refuses_the_event(
    cloud: LocalCloud, stack_policies: dict[str, Any]
) -> None:
    # GIVEN the key's policy without its statement for EventBridge
    cloud.client("kms").put_key_policy(
        KeyId=stack_policies["key_id"], PolicyName="default", Policy=without_events(stack_policies["key"])
    )
    assert cloud.rule_targets is not None
    before = len(cloud.rule_targets.dead_letters)
    # WHEN the alarm changes state THEN the event is lost
    alarm_transition(cloud)
    assert dead_letters(cloud) == []
    [outcome] = cloud.rule_targets.dead_letters[before:]
    assert not outcome.sent
    assert "kms:GenerateDataKey" in outcome.reason
