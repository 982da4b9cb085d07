"""The three capacity handlers end to end on moto: real adapters, real DynamoDB lease and idempotency,
real SQS deferral, and SageMaker with the local cloud's gap-fill (status transitions, kept weights)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from shadowscale.capacity.policy import CapacityPolicy
from shadowscale_localcloud import resources

from functions.alarm_scaler.app import lambda_handler as alarm_handler
from functions.deferred_scaler.app import lambda_handler as deferred_handler
from functions.scheduled_scaler.app import lambda_handler as tick_handler
from tests.conftest import load_event
from tests.factories import ENDPOINT, make_policy, policy_document
from tests.integration.conftest import Stack

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.literals import ComparisonOperatorType

BUSINESS_HOURS = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Berlin


def alarm_event(shape: str, state: str = "ALARM", at: str = "2026-11-23T21:00:00.000+0000") -> dict[str, Any]:
    event = copy.deepcopy(load_event(f"alarm_{shape}_alarm.json"))
    data = event["alarmData"] if shape == "action" else event["detail"]
    data["state"]["value"] = state
    data["state"]["timestamp"] = at
    return event


def update_calls(stack: Stack) -> int:
    return stack.gaps.calls.get("UpdateEndpointWeightsAndCapacities", 0)


def tick(stack: Stack, schedule: str = "heartbeat") -> dict[str, Any]:
    event = {"endpoint": ENDPOINT, "schedule": schedule, "scheduledTime": stack.clock.now().isoformat()}
    report: dict[str, Any] = tick_handler(event, stack.context)
    return report


def test_given_business_hours_when_ticked_twice_then_scaled_to_window_count_once(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    stack.clock.current = BUSINESS_HOURS
    first = tick(stack, "business-hours.start")
    assert first["outcome"] == "applied"
    assert stack.instances("primary") == 4
    assert stack.variant("primary")["CurrentWeight"] == 1.0  # weight kept while the count changed
    stack.clock.advance(300)
    second = tick(stack)
    assert second["outcome"] == "no-change"
    assert update_calls(stack) == 1


@pytest.mark.parametrize(("shape", "expected"), [("action", 3), ("eventbridge", 5)])
def test_given_alarm_in_either_shape_when_received_then_scaled_out_by_matching_step(
    stack: Stack, sample_policy: CapacityPolicy, shape: str, expected: int
) -> None:
    # action: evaluated 180000 vs threshold 100000 → 80000 beyond → +2; eventbridge (recent only): 230000 → +4
    report = alarm_handler(alarm_event(shape), stack.context)
    assert report["outcome"] == "applied"
    assert stack.instances("primary") == expected


def test_given_scale_out_when_ok_within_cooldown_then_scale_in_waits_then_happens(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    alarm_handler(alarm_event("action"), stack.context)
    assert stack.instances() == 3
    stack.clock.advance(120)
    ok = alarm_handler(alarm_event("action", "OK", "2026-11-23T21:02:00.000+0000"), stack.context)
    assert ok["outcome"] == "deferred"
    assert stack.instances() == 3
    [deferred] = stack.queued_bodies(stack.intent_queue_url)
    assert deferred["not_before"].startswith("2026-11-23T21:10:00")
    # WHEN the queue delivers it after the cooldown THEN it scales in by the onOk change.
    stack.clock.advance(481)
    result = deferred_handler(stack.sqs_event([deferred]), stack.context)
    assert result == {"batchItemFailures": []}
    assert stack.instances() == 2


def test_given_business_hours_when_ok_then_never_below_floor_and_above_max_clamped(stack: Stack) -> None:
    document = policy_document()
    document["variants"][0]["maxInstances"] = 5
    stack.put_policy(make_policy(**{k: v for k, v in document.items() if k != "apiVersion"}))
    stack.clock.current = BUSINESS_HOURS
    tick(stack)
    assert stack.instances() == 4
    stack.clock.advance(180)  # the scheduled scale-out started the scale-out cooldown (120 s)
    report = alarm_handler(alarm_event("eventbridge", at="2026-11-23T10:03:00.000+0000"), stack.context)
    assert stack.instances() == 5  # +4 asked, max 5
    assert "clamped" in report["changes"][0]["reason"]
    stack.clock.advance(3600)
    alarm_handler(alarm_event("eventbridge", "OK", "2026-11-23T11:01:00.000+0000"), stack.context)
    alarm_handler(alarm_event("action", "ALARM", "2026-11-23T11:02:00.000+0000"), stack.context)
    stack.clock.advance(3600)
    alarm_handler(alarm_event("action", "OK", "2026-11-23T12:05:00.000+0000"), stack.context)
    assert stack.instances() == 4  # the business-hours floor holds


def test_given_variant_under_auto_scaling_when_alarm_then_min_moved_instead_of_count(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    resource = f"endpoint/{ENDPOINT}/variant/primary"
    stack.autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    report = alarm_handler(alarm_event("eventbridge"), stack.context)
    assert report["changes"][0]["via"] == "scalable-target"
    [target] = stack.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])[
        "ScalableTargets"
    ]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (5, 5)
    assert update_calls(stack) == 0


def test_given_endpoint_updating_when_alarm_then_retried_deferred_and_applied_later(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    stack.gaps.set_status(ENDPOINT, "Updating")
    report = alarm_handler(alarm_event("action"), stack.context)
    assert report["outcome"] == "deferred"
    assert stack.gaps.calls["DescribeEndpoint"] == 3  # UPDATE_MAX_ATTEMPTS in this stack
    [deferred] = stack.queued_bodies(stack.intent_queue_url)
    # Still updating when the queue redelivers: a batch item failure, so SQS retries then dead-letters.
    still_busy = deferred_handler(stack.sqs_event([deferred]), stack.context)
    assert still_busy == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    stack.gaps.set_status(ENDPOINT, "InService")
    done = deferred_handler(stack.sqs_event([deferred]), stack.context)
    assert done == {"batchItemFailures": []}
    assert stack.instances() == 3


def test_given_in_progress_error_then_throttling_when_alarm_then_retried_within_budget(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    stack.gaps.inject_fault("UpdateEndpointWeightsAndCapacities", "ValidationException", times=1)
    stack.gaps.inject_fault("UpdateEndpointWeightsAndCapacities", "ThrottlingException", times=5)
    report = alarm_handler(alarm_event("action"), stack.context)
    assert report["outcome"] == "applied"
    assert stack.instances() == 3


def test_given_duplicate_delivery_when_received_twice_then_second_has_no_effect(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    event = alarm_event("action")
    alarm_handler(event, stack.context)
    again = alarm_handler(event, stack.context)
    # The same transition through the other route is the same event too.
    other_route = alarm_handler(alarm_event("eventbridge"), stack.context)
    assert stack.instances() == 3
    assert update_calls(stack) == 1
    assert (again["outcome"], again["changes"]) == ("duplicate", [])
    assert again["notes"] == ["duplicate delivery; nothing done (first delivery: applied)"]
    assert other_route["outcome"] == "duplicate"


def test_given_dry_run_when_alarm_then_decision_reported_and_nothing_called(
    stack: Stack, sample_policy: CapacityPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRY_RUN", "true")
    stack.rebuild_functions()
    report = alarm_handler(alarm_event("action"), stack.context)
    assert report["outcome"] == "dry-run"
    assert report["changes"][0]["instances_after"] == 3
    assert update_calls(stack) == 0
    assert stack.instances() == 1


@pytest.mark.parametrize(
    ("handler", "event", "reason"),
    [
        (alarm_handler, {"source": "aws.cloudwatch", "alarmData": {}}, "alarmArn: Field required"),
        (alarm_handler, {"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch"}, "detail"),
        (tick_handler, {"schedule": "x"}, "endpoint: Field required"),
    ],
)
def test_given_malformed_event_when_received_then_rejected_quarantined_and_nothing_called(
    stack: Stack, sample_policy: CapacityPolicy, handler: Any, event: dict[str, Any], reason: str
) -> None:
    report = handler(event, stack.context)
    assert report["outcome"] == "rejected"
    assert reason in report["reason"]
    [quarantined] = stack.messages(stack.dead_letter_queue_url)
    assert reason in quarantined["reason"]
    assert quarantined["event"] == event
    assert update_calls(stack) == 0
    assert stack.gaps.calls.get("DescribeEndpoint", 0) == 0


def test_given_malformed_deferred_message_when_consumed_then_quarantined_not_retried(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    result = deferred_handler(stack.sqs_event([{"kind": "shadowscale.deferred-change"}]), stack.context)
    assert result == {"batchItemFailures": []}
    [quarantined] = stack.messages(stack.dead_letter_queue_url)
    assert "change_id: Field required" in quarantined["reason"]


def test_given_alarm_no_policy_reacts_to_when_received_then_ignored(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    event = alarm_event("action")
    event["alarmData"]["alarmName"] = "unrelated-alarm"
    report = alarm_handler(event, stack.context)
    assert report["outcome"] == "ignored"
    assert stack.gaps.calls.get("DescribeEndpoint", 0) == 0


def hold_for_shadow_test(stack: Stack, owner: str = "shadow-test:exec-42", seconds: int = 4 * 3600) -> None:
    stack.dynamodb.put_item(
        TableName="shadowscale-test-endpoint-state",
        Item={
            "endpoint": {"S": ENDPOINT},
            "leaseOwner": {"S": owner},
            "leaseExpiresAt": {"N": str(int(stack.clock.now().timestamp()) + seconds)},
        },
    )


def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """The EMF documents the handlers printed, merged: metric name → total."""
    found: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    found[metric["Name"]] = found.get(metric["Name"], 0.0) + sum(
                        value if isinstance(value, list) else [value]
                    )
    return found


def take_queued(stack: Stack) -> list[dict[str, Any]]:
    """What the deferral queue holds, taken off it (the local cloud plays the event source mapping)."""
    return [json.loads(body) for body in resources.queued_bodies(stack.intent_queue_url, remove=True)]


def test_given_a_shadow_tests_hold_when_an_alarm_fires_then_it_waits_for_the_hold_and_is_applied_after_it(
    stack: Stack, sample_policy: CapacityPolicy, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a shadow test holding the endpoint while it updates it
    hold_for_shadow_test(stack)

    # WHEN an alarm goes off THEN it waits, naming the test, and nothing is updated
    report = alarm_handler(alarm_event("action"), stack.context)
    assert report["outcome"] == "deferred"
    assert report["notes"][0].startswith("endpoint held by shadow test shadow-test:exec-42: waits for the hold")
    [waiting] = take_queued(stack)
    assert waiting["waiting_for"] == "shadow-test:exec-42"

    # WHEN it comes back, five times, while the hold stands THEN each is consumed and goes round again:
    # no batch item failure ever, so the queue's redrive (8 receives) never dead-letters it
    for _ in range(5):
        stack.clock.advance(30)
        assert deferred_handler(stack.sqs_event([waiting]), stack.context) == {"batchItemFailures": []}
        [waiting] = take_queued(stack)
    assert waiting["rechecks"] == 5
    assert update_calls(stack) == 0

    # WHEN the test lets go THEN the next re-check applies it
    stack.dynamodb.delete_item(TableName="shadowscale-test-endpoint-state", Key={"endpoint": {"S": ENDPOINT}})
    stack.clock.advance(30)
    assert deferred_handler(stack.sqs_event([waiting]), stack.context) == {"batchItemFailures": []}
    assert stack.instances() > 1
    assert take_queued(stack) == []
    assert stack.queue_depth(stack.dead_letter_queue_url) == 0
    assert emitted_metrics(capsys)["ChangesWaitingForShadowTest"] == 6.0


def test_given_a_shadow_tests_hold_when_the_heartbeat_finds_nothing_to_do_then_it_is_a_no_op(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    assert tick(stack)["outcome"] in ("applied", "no-change")  # GIVEN the endpoint within its policy
    hold_for_shadow_test(stack)
    stack.clock.advance(300)
    report = tick(stack)
    assert report["outcome"] == "no-change"
    assert report["notes"][0] == "endpoint held by shadow test shadow-test:exec-42; nothing to do"
    assert take_queued(stack) == []


def test_given_change_deferred_before_a_shadow_test_started_when_replayed_then_it_waits_for_the_hold(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    # GIVEN an alarm deferred because the endpoint was updating
    stack.gaps.set_status(ENDPOINT, "Updating")
    assert alarm_handler(alarm_event("action"), stack.context)["outcome"] == "deferred"
    [deferred] = take_queued(stack)
    stack.gaps.set_status(ENDPOINT, "InService")
    # ... and a shadow test that took the lease since
    hold_for_shadow_test(stack)

    # WHEN the deferral queue delivers it THEN it is no batch item failure, and waits on
    assert deferred_handler(stack.sqs_event([deferred]), stack.context) == {"batchItemFailures": []}
    [waiting] = take_queued(stack)
    assert waiting["waiting_for"] == "shadow-test:exec-42"
    assert stack.instances() == 1


def test_given_a_cooldown_longer_than_a_queue_delay_when_replayed_twice_then_the_second_delivery_applies(
    stack: Stack,
) -> None:
    # GIVEN a policy whose scale-in cooldown (1 h) outlasts SQS's 15-minute delay
    policy = make_policy()
    stack.put_policy(
        policy.model_copy(
            update={
                "variants": tuple(
                    variant.model_copy(update={"scale_in_cooldown_seconds": 3600}) for variant in policy.variants
                )
            }
        )
    )
    alarm_handler(alarm_event("action"), stack.context)
    scaled_out = stack.instances()
    stack.clock.advance(120)
    assert (
        alarm_handler(alarm_event("action", "OK", "2026-11-23T21:02:00.000+0000"), stack.context)["outcome"]
        == "deferred"
    )
    [deferred] = take_queued(stack)

    # WHEN the queue delivers it before the cooldown ends THEN it is sent round again, under a new id
    stack.clock.advance(900)
    assert deferred_handler(stack.sqs_event([deferred]), stack.context) == {"batchItemFailures": []}
    [again] = take_queued(stack)
    assert again["change_id"] != deferred["change_id"]

    # WHEN that one arrives after the cooldown THEN it is applied (not swallowed as a duplicate delivery)
    stack.clock.advance(3600)
    assert deferred_handler(stack.sqs_event([again]), stack.context) == {"batchItemFailures": []}
    assert stack.instances() == scaled_out - 1


def test_given_short_lease_of_another_invocation_when_replayed_then_still_retried(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    # GIVEN another autopilot invocation's lease: short-lived, so the queue's redelivery is the right answer
    hold_for_shadow_test(stack, owner="autopilot:other", seconds=600)
    assert alarm_handler(alarm_event("action"), stack.context)["outcome"] == "deferred"
    [deferred] = stack.queued_bodies(stack.intent_queue_url)
    assert deferred_handler(stack.sqs_event([deferred]), stack.context) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}]
    }


@pytest.mark.parametrize("shape", ["action", "eventbridge"])
def test_given_a_nan_datapoint_when_alarm_received_then_quarantined_with_the_field_and_nothing_scaled(
    stack: Stack, sample_policy: CapacityPolicy, shape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the sample alarm with a NaN among its recent datapoints (once: a NaN breach, the largest step)
    event = alarm_event(shape)
    state = (event["alarmData"] if shape == "action" else event["detail"])["state"]
    state["reasonData"] = state["reasonData"].replace('"recentDatapoints":[', '"recentDatapoints":[NaN,', 1)

    report = alarm_handler(event, stack.context)

    # THEN rejected naming the field, set aside with the reason, counted, and the endpoint untouched
    assert report["outcome"] == "rejected"
    assert "reasonData.recentDatapoints.0: Input should be a finite number" in report["reason"]
    [quarantined] = stack.messages(stack.dead_letter_queue_url)
    assert "recentDatapoints.0" in quarantined["reason"]
    assert emitted_metrics(capsys)["MalformedEvents"] == 1.0
    assert update_calls(stack) == 0
    assert stack.instances() == 1


def test_given_policy_table_throttles_when_alarm_then_error_raised_for_retry_not_ignored(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    from botocore.exceptions import ClientError
    from shadowscale.capacity.policy_store import CachedPolicyStore, TableParameterProvider
    from shadowscale.shared.errors import Throttled

    class ThrottledClient:
        def get_item(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem")

    store = CachedPolicyStore(TableParameterProvider(ThrottledClient(), "t"), 0)  # type: ignore[arg-type]
    with pytest.raises(Throttled):
        store.policy(ENDPOINT)


def define_latency_alarm(comparison: ComparisonOperatorType) -> None:
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_alarm(
        AlarmName="fraud-detector-latency-high",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=100000.0,
        ComparisonOperator=comparison,
    )


def with_evaluated(event: dict[str, Any], values: list[float]) -> dict[str, Any]:
    state = event["alarmData"]["state"]
    reason_data = json.loads(state["reasonData"])
    reason_data["recentDatapoints"] = values
    reason_data["evaluatedDatapoints"] = [{"timestamp": "2026-11-23T21:00:00.000+0000", "value": v} for v in values]
    state["reasonData"] = json.dumps(reason_data)
    return event


def test_given_mixed_side_datapoints_when_alarm_then_average_is_not_beyond_and_nothing_scales(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    # GIVEN `> 100000` in CloudWatch and evaluated [120000, 0, 110000] (largest distance 100000: once +2)
    define_latency_alarm("GreaterThanThreshold")
    report = alarm_handler(with_evaluated(alarm_event("action"), [120000.0, 0.0, 110000.0]), stack.context)

    # THEN the Average (76666.7) is on the non-breaching side: no step, no call, the reason says why
    assert report["outcome"] == "no-change", report
    assert "Average 76666.7 of 3 datapoints is not beyond > 100000" in json.dumps(report)
    assert update_calls(stack) == 0
    assert stack.instances() == 1


def test_given_alarm_defined_below_threshold_when_alarm_then_its_operator_sets_the_side(
    stack: Stack, sample_policy: CapacityPolicy
) -> None:
    # GIVEN the same name defined as `< 100000`: the event's 180000 is on the non-breaching side of it
    define_latency_alarm("LessThanThreshold")
    report = alarm_handler(with_evaluated(alarm_event("action"), [180000.0]), stack.context)
    assert report["outcome"] == "no-change", report
    assert "is not beyond < 100000" in json.dumps(report)

    # WHEN it is defined `>=` THEN the same datapoint is 80000 beyond: +2 (a new transition)
    define_latency_alarm("GreaterThanOrEqualToThreshold")
    later = with_evaluated(alarm_event("action", at="2026-11-23T21:05:00.000+0000"), [180000.0])
    assert alarm_handler(later, stack.context)["outcome"] == "applied"
    assert stack.instances() == 3
