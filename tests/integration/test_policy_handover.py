"""A promotion's handover through the deferred scaler on moto: real policy table, real CloudWatch alarms."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from shadowscale.capacity.alarms import CloudWatchAlarmDimensions
from shadowscale.capacity.policy import CapacityPolicy
from shadowscale_localcloud.cloudwatch_alarm_updates import AlarmUpdatesKeepState

from functions.deferred_scaler.app import lambda_handler as deferred_handler
from functions.scheduled_scaler.app import lambda_handler as tick_handler
from tests.factories import CANDIDATE_ALARM, ENDPOINT, LATENCY_ALARM
from tests.integration.conftest import Stack

REGION = "us-east-1"
NAMESPACE = "AWS/SageMaker"


def put_alarm(name: str, variant: str, **extra: Any) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        ExtendedStatistic="p90",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}],
        Period=60,
        EvaluationPeriods=2,
        Threshold=100000,
        ComparisonOperator="GreaterThanThreshold",
        AlarmDescription="p90 latency",
        **extra,
    )


def described(name: str) -> dict[str, Any]:
    [alarm] = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return dict(alarm)


def variant_of(alarm: dict[str, Any]) -> str:
    return str(next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == "VariantName"))


def handover_body(attempt: int = 0) -> dict[str, Any]:
    return {
        "kind": "shadowscale.promotion-handover",
        "endpoint": ENDPOINT,
        "testId": "fraud-detector-t1",
        "fromVariant": "primary",
        "toVariant": "candidate",
        "promotedAt": "2026-11-23T21:00:00+00:00",
        "instances": 1,
        "attempt": attempt,
    }


def test_given_a_promotion_when_the_deferred_scaler_takes_the_handover_then_policy_and_alarms_follow(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    # GIVEN the sample policy and its latency alarm on primary, in ALARM
    put_alarm(LATENCY_ALARM, "primary")
    put_alarm(CANDIDATE_ALARM, "candidate")
    cloudwatch: Any = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.set_alarm_state(AlarmName=LATENCY_ALARM, StateValue="ALARM", StateReason="spike")
    # WHEN the handover message arrives (twice: finalize retried)
    with AlarmUpdatesKeepState():
        result = deferred_handler(stack.sqs_event([handover_body(), handover_body()]), stack.context)
    assert result == {"batchItemFailures": []}
    # THEN a new revision names the promoted variant, says why, and indexes only the alarms it keeps
    stored = stack.policies.describe(ENDPOINT)
    assert stored is not None
    assert stored.revision == 2
    assert [variant.name for variant in stored.policy.variants] == ["candidate"]
    assert stored.reason is not None
    assert "shadow test fraud-detector-t1 promoted 'candidate' over 'primary'" in stored.reason
    assert stored.applied_by == "shadow test fraud-detector-t1"
    assert stack.policies.owner_of_alarm(LATENCY_ALARM) == ENDPOINT
    assert stack.policies.owner_of_alarm(CANDIDATE_ALARM) is None
    # ... and the latency alarm watches the promoted variant, everything else as it was, state kept
    alarm = described(LATENCY_ALARM)
    assert variant_of(alarm) == "candidate"
    assert alarm["StateValue"] == "ALARM"
    assert (alarm["ExtendedStatistic"], alarm["Threshold"], alarm["AlarmDescription"]) == ("p90", 100000, "p90 latency")
    assert variant_of(described(CANDIDATE_ALARM)) == "candidate"
    assert stack.queue_depth(stack.dead_letter_queue_url) == 0


def test_given_a_handed_over_policy_when_the_heartbeat_ticks_then_it_acts_on_the_promoted_variant(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    put_alarm(LATENCY_ALARM, "primary")
    deferred_handler(stack.sqs_event([handover_body()]), stack.context)
    # The sample policy's primary floor is 1 and candidate runs 1: give the carried policy a floor of 2.
    stored = stack.policies.describe(ENDPOINT)
    assert stored is not None
    promoted = stored.policy.variants[0].model_copy(update={"min_instances": 2})
    stack.put_policy(stored.policy.model_copy(update={"variants": (promoted,)}))
    report = tick_handler(
        {"endpoint": ENDPOINT, "schedule": "heartbeat", "scheduledTime": stack.clock.now().isoformat()}, stack.context
    )
    assert report["outcome"] == "applied"
    assert [change["variant"] for change in report["changes"]] == ["candidate"]
    assert stack.instances("candidate") == 2


def test_given_dynamodb_down_when_the_handover_arrives_then_it_is_sent_round_again_not_failed(
    stack: Stack, sample_policy: CapacityPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shadowscale.capacity.policy_store import PolicyRepository
    from shadowscale.shared.errors import AwsServiceUnavailable

    def down(self: PolicyRepository, *args: object, **kwargs: object) -> int:
        raise AwsServiceUnavailable("DynamoDB: InternalServerError")

    monkeypatch.setattr(PolicyRepository, "put", down)
    stack.clock.current = stack.clock.current.replace(year=2026, month=11, day=23, hour=21, minute=5)
    result = deferred_handler(stack.sqs_event([handover_body()]), stack.context)
    assert result == {"batchItemFailures": []}
    [again] = stack.queued_bodies(stack.intent_queue_url)
    assert again["attempt"] == 1
    assert again["kind"] == "shadowscale.promotion-handover"


def test_given_metric_math_alarm_when_repointed_then_each_metric_of_the_variant_moves() -> None:
    from moto import mock_aws

    with mock_aws(), AlarmUpdatesKeepState():
        cloudwatch: Any = boto3.client("cloudwatch", region_name=REGION)
        dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}]
        cloudwatch.put_metric_alarm(
            AlarmName="fraud-detector-error-rate",
            EvaluationPeriods=1,
            Threshold=0.05,
            ComparisonOperator="GreaterThanThreshold",
            Metrics=[
                {"Id": "rate", "Expression": "errors / invocations", "ReturnData": True},
                {
                    "Id": "errors",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SageMaker",
                            "MetricName": "Invocation5XXErrors",
                            "Dimensions": dims,
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "invocations",
                    "MetricStat": {
                        "Metric": {"Namespace": NAMESPACE, "MetricName": "Invocations", "Dimensions": dims},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
            ],
        )
        alarms = CloudWatchAlarmDimensions(cloudwatch)
        assert alarms.repoint("fraud-detector-error-rate", ENDPOINT, "primary", "candidate") == "re-pointed"
        assert alarms.repoint("fraud-detector-error-rate", ENDPOINT, "primary", "candidate") == "already"
        [alarm] = cloudwatch.describe_alarms(AlarmNames=["fraud-detector-error-rate"])["MetricAlarms"]
        moved = [query for query in alarm["Metrics"] if "MetricStat" in query]
        assert {variant_of(query["MetricStat"]["Metric"]) for query in moved} == {"candidate"}
        assert next(q for q in alarm["Metrics"] if q["Id"] == "rate")["Expression"] == "errors / invocations"
        assert alarms.repoint("no-such-alarm", ENDPOINT, "primary", "candidate") == "missing"
        put_alarm("other-endpoint-latency", "primary")
        other = json.loads(json.dumps(described("other-endpoint-latency"), default=str))
        assert (
            alarms.repoint("other-endpoint-latency", "another-endpoint", "primary", "candidate") == "not-this-variant"
        )
        assert described("other-endpoint-latency")["Dimensions"] == other["Dimensions"]


def test_given_an_alarm_in_alarm_when_updated_then_its_state_is_kept() -> None:
    from moto import mock_aws

    with mock_aws(), AlarmUpdatesKeepState():
        put_alarm(LATENCY_ALARM, "primary")
        cloudwatch: Any = boto3.client("cloudwatch", region_name=REGION)
        cloudwatch.set_alarm_state(AlarmName=LATENCY_ALARM, StateValue="ALARM", StateReason="spike")
        put_alarm(LATENCY_ALARM, "candidate")
        alarm = described(LATENCY_ALARM)
        assert (alarm["StateValue"], alarm["StateReason"], variant_of(alarm)) == ("ALARM", "spike", "candidate")
