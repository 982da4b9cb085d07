"""The recovery state machine, as deployed: after a shadow test's execution ends without restoring (abort,
timeout, a failed restore) EventBridge starts a recovery execution, which restores the endpoint, or sees
a started promotion through, then finalizes, reports and notifies. Durable (waits and retries of hours
on the local cloud's clock, no Lambda that sleeps), idempotent, resumable."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from moto.core.exceptions import JsonRESTError
from shadowscale.cli.main import main as cli
from shadowscale.shadow_tests.models import ShadowTestPlan
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud

from tests.integration.test_shadow_lifecycle import (
    MONDAY_0800_UTC,
    REPO,
    USER_CAPTURE,
    ShadowTestRun,
    deploy_endpoint,
    publish_traffic,
)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(MONDAY_0800_UTC), stack_name="recovery-test") as running:
        yield running


@pytest.fixture(scope="module")
def notifications(cloud: LocalCloud) -> str:
    """A queue subscribed to the stack's topic: every notification lands here."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName="recovery-test-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=arn)
    return str(url)


def subjects_for(cloud: LocalCloud, queue_url: str, endpoint: str) -> list[str]:
    sqs = cloud.client("sqs")
    found: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            body = json.loads(message["Body"])
            if endpoint in body.get("Subject", "") or endpoint in body.get("Message", ""):
                found.append(str(body.get("Subject", "")))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def refuse(
    monkeypatch: pytest.MonkeyPatch, matches: Callable[[str, dict[str, Any]], bool], *, times: int, code: str
) -> list[int]:
    """The next `times` calls `matches` picks fail with `code` (HTTP 500), each one a call that failed after
    the SDK's own retries; the returned counter says how many refusals are left."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    original = BaseClient._make_api_call  # type: ignore[attr-defined]
    left = [times]

    def refusing(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if matches(operation, params) and left[0] > 0:
            left[0] -= 1
            response: Any = {
                "Error": {"Code": code, "Message": "We encountered an internal error. Please try again."},
                # moto's Step Functions interpreter reads RequestId when an SDK integration fails.
                "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "r-1", "HTTPHeaders": {}, "RetryAttempts": 0},
            }
            raise ClientError(response, operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refusing)
    return left


def abort_at(
    cloud: LocalCloud,
    run: ShadowTestRun,
    state: str,
    before_stop: Callable[[], None] = lambda: None,
    **overrides: Any,
) -> dict[str, Any]:
    """Start the test, let it pass one Wait state at a time until it waits in `state`, stop it there."""
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        run.start(**overrides)
        cloud.step_to(run.execution_arn, state)
        before_stop()
        cloud.client("stepfunctions").stop_execution(executionArn=run.execution_arn, cause="operator abort")
    finally:
        cloud.stepfunctions.release_waits()
    return run.finish()


def test_an_abort_after_the_promotion_update_sees_the_promotion_through(cloud: LocalCloud) -> None:
    # GIVEN a healthy candidate whose promotion update has been made (the test waits for it in PromoteWait)
    run = deploy_endpoint(cloud, "abort-promoting")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=21, invocations=150)

    # WHEN the execution is stopped there
    described = abort_at(cloud, run, "PromoteWait")

    # THEN the recovery does not undo the promotion: it waits for it, carries Auto Scaling (target and
    # policy) to the promoted variant, and reports a promotion
    assert described["status"] == "ABORTED"
    assert [recovery["status"] for recovery in run.recoveries] == ["SUCCEEDED"]
    promoted = json.loads(run.recoveries[-1]["output"])["plan"]["promotedConfigName"]
    run.assert_clean(config=promoted, variant="shadow", model="abort-promoting-v2", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"shadow": (2, 6, ["invocations-per-instance"])}
    report = run.report()
    assert report["outcome"] == "promoted"
    assert "completed by the recovery after the execution ended ABORTED" in report["reason"]


def test_an_original_config_deleted_mid_test_is_created_again_from_the_snapshot(cloud: LocalCloud) -> None:
    # GIVEN a slow candidate baking, and someone tidying up endpoint configs meanwhile
    run = deploy_endpoint(cloud, "tidied-up")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=60, invocations=150)
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        run.start()
        cloud.step_to(run.execution_arn, "Bake")
        cloud.client("sagemaker").delete_endpoint_config(EndpointConfigName="tidied-up-config-1")
    finally:
        cloud.stepfunctions.release_waits()

    # WHEN the test removes the shadow
    described = run.finish()

    # THEN the endpoint is back on a config of the original name, variants and capture
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    assert run.report()["outcome"] == "removed"
    run.assert_clean(config="tidied-up-config-1", variant="primary", model="tidied-up-v1", capture=USER_CAPTURE)
    config = cloud.client("sagemaker").describe_endpoint_config(EndpointConfigName="tidied-up-config-1")
    [variant] = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.xlarge", 2)
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}


def test_an_update_stalling_for_hours_during_an_abort_is_waited_out(cloud: LocalCloud) -> None:
    # GIVEN a test baking, whose restore update will hang for three hours and then roll back
    run = deploy_endpoint(cloud, "stalls-on-abort")
    started = cloud.clock.now()

    def stall_the_restore() -> None:
        cloud.gaps.stall_next_update("stalls-on-abort", seconds=3 * 3600)  # type: ignore[union-attr]

    # WHEN it is aborted and the recovery runs
    described = abort_at(cloud, run, "Bake", before_stop=stall_the_restore, durationMinutes=240)

    # THEN it waited out the stall and the rollback, updated again, and the shadow no longer serves
    assert described["status"] == "ABORTED"
    assert [recovery["status"] for recovery in run.recoveries] == ["SUCCEEDED"]
    assert cloud.clock.now() - started >= timedelta(hours=3)
    run.assert_clean(
        config="stalls-on-abort-config-1", variant="primary", model="stalls-on-abort-v1", capture=USER_CAPTURE
    )
    assert run.report()["outcome"] == "aborted"


def test_a_duplicate_end_event_restores_once_and_notifies_once(cloud: LocalCloud, notifications: str) -> None:
    # GIVEN an aborted test that its recovery restored and reported
    run = deploy_endpoint(cloud, "told-twice")
    described = abort_at(cloud, run, "Bake", durationMinutes=240)
    assert described["status"] == "ABORTED"
    first = subjects_for(cloud, notifications, "told-twice")

    # WHEN EventBridge delivers the same status-change event again (at-least-once delivery)
    assert cloud.stepfunctions is not None
    [ended] = [e for e in cloud.stepfunctions.ended if e["detail"]["executionArn"] == run.execution_arn]
    cloud.put_event(ended)
    again = cloud.wait_for_recoveries(run.execution_arn)

    # THEN the second recovery finds nothing to do: no second restore, report or notification
    assert [recovery["status"] for recovery in again] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(first) == 1
    assert subjects_for(cloud, notifications, "told-twice") == []
    run.assert_clean(config="told-twice-config-1", variant="primary", model="told-twice-v1", capture=USER_CAPTURE)


def test_a_concurrent_update_of_a_scalable_target_is_retried(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Application Auto Scaling answers ConcurrentUpdateException to the first two PutScalingPolicy calls
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

    original = ApplicationAutoscalingBackend.put_scaling_policy
    refusals = [2]

    def busy(self: Any, *args: Any, **kwargs: Any) -> Any:
        if refusals[0] > 0:
            refusals[0] -= 1
            raise JsonRESTError("ConcurrentUpdateException", "Concurrent update on the scalable target")
        return original(self, *args, **kwargs)

    run = deploy_endpoint(cloud, "aas-busy")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=21, invocations=150)
    monkeypatch.setattr(ApplicationAutoscalingBackend, "put_scaling_policy", busy)

    # WHEN a test promotes (finalize carries the target and its policy to the promoted variant)
    run.start()
    described = run.finish()

    # THEN the refusals were retried: the promotion stands with the policy on the promoted variant
    assert refusals[0] == 0
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    assert run.report()["outcome"] == "promoted"
    assert run.scaling_targets() == {"shadow": (2, 6, ["invocations-per-instance"])}


def test_a_second_test_on_a_held_endpoint_with_a_look_alike_name_fails_cleanly_at_lock(cloud: LocalCloud) -> None:
    # GIVEN a test baking under the execution name "look.alike"
    run = deploy_endpoint(cloud, "look-alike")
    other = ShadowTestRun(cloud, "look-alike")
    stepfunctions = cloud.client("stepfunctions")
    machine = cloud.outputs["ShadowTestStateMachineArn"]
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        document = {
            "endpointName": "look-alike",
            "candidate": {"modelName": "look-alike-v2", "instanceType": "ml.g4dn.xlarge", "instanceCount": 1},
            "sampling": {"percent": 50},
            "durationMinutes": 30,
        }
        run.execution_arn = stepfunctions.start_execution(
            stateMachineArn=machine, name="look.alike", input=json.dumps(document)
        )["executionArn"]
        cloud.step_to(run.execution_arn, "Bake")

        # WHEN a second execution, "look_alike" (the same test id before ids carried a hash), starts
        other.execution_arn = stepfunctions.start_execution(
            stateMachineArn=machine, name="look_alike", input=json.dumps(document)
        )["executionArn"]
        second = cloud.wait_for_execution(other.execution_arn)
    finally:
        cloud.stepfunctions.release_waits()

    # THEN the second one stops at Lock, touching nothing, and says who holds the endpoint
    assert second["status"] == "FAILED"
    report = other.report()
    assert report["outcome"] == "locked"
    assert run.execution_arn in report["reason"]
    assert report["testId"] != ShadowTestPlan.test_id_of(run.execution_arn)
    # ... and the first one runs to its end undisturbed
    assert run.finish()["status"] == "SUCCEEDED"


def test_an_operator_resumes_a_recovery_with_the_cli(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a test aborted while its endpoint was held by a recovery that then gave up (simulated: the
    # restore left undone, the lease and record still in place, by aborting with the recovery rule off)
    run = deploy_endpoint(cloud, "resume-me")
    events = cloud.client("events")
    rule = "shadowscale-dev-shadow-test-ended"
    events.disable_rule(Name=rule)
    try:
        described = abort_at(cloud, run, "Bake", durationMinutes=240)
    finally:
        events.enable_rule(Name=rule)
    assert described["status"] == "ABORTED"
    assert run.recoveries == []
    assert run.lease()["testOwner"]["S"] == f"shadow-test:{run.execution_arn}"

    # WHEN the operator runs the command the alarm's description gives
    code = cli(
        ["shadow", "recover", run.execution_arn, "--wait", "--poll-seconds", "0.05", "--stack-name", "recovery-test"]
    )

    # THEN the endpoint is restored and the report written
    assert code == 0, capsys.readouterr().out
    assert "recovery SUCCEEDED" in capsys.readouterr().out
    run.assert_clean(config="resume-me-config-1", variant="primary", model="resume-me-v1", capture=USER_CAPTURE)
    assert run.report()["outcome"] == "aborted"


def test_a_report_that_cannot_be_written_still_notifies_and_the_recovery_writes_it(
    cloud: LocalCloud, notifications: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 refuses the test's report for longer than the execution's own retries last (31 attempts):
    # each refusal is one PutObject that failed after the SDK's own retries
    def report_json(operation: str, params: dict[str, Any]) -> bool:
        key = str(params.get("Key", ""))
        return operation == "PutObject" and key.startswith("reports/unwritten/") and key.endswith("report.json")

    refusals = refuse(monkeypatch, report_json, times=31, code="InternalError")
    run = deploy_endpoint(cloud, "unwritten")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=60, invocations=150)

    # WHEN the test runs to its end
    run.start()
    described = run.finish()

    # THEN the endpoint was restored, the notification said the report is missing, and the recovery
    # wrote the report afterwards and notified again with it
    assert refusals[0] == 0
    assert (described["status"], described.get("error")) == ("FAILED", "ReportNotWritten")
    assert [recovery["status"] for recovery in run.recoveries] == ["SUCCEEDED"]
    subjects = subjects_for(cloud, notifications, "unwritten")
    assert subjects[0] == "[shadowscale] shadow test ended; report not written yet"
    assert len(subjects) == 2, subjects
    assert "removed" in subjects[1]
    assert run.report()["outcome"] == "removed"
    run.assert_clean(config="unwritten-config-1", variant="primary", model="unwritten-v1", capture=USER_CAPTURE)


def test_an_end_event_naming_no_valid_endpoint_is_recognised_and_nothing_is_touched(cloud: LocalCloud) -> None:
    # GIVEN the end event of an execution whose input named an empty endpoint
    machine = cloud.outputs["ShadowTestStateMachineArn"]
    execution = machine.replace(":stateMachine:", ":execution:") + ":never-valid"
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [execution],
        "detail": {
            "executionArn": execution,
            "stateMachineArn": machine,
            "status": "FAILED",
            "input": json.dumps({"endpointName": ""}),
        },
    }

    # WHEN EventBridge delivers it
    cloud.put_event(event)
    [recovery] = cloud.wait_for_recoveries(execution)

    # THEN the recovery ends at once, having found nothing to restore (no retries, no dead letter)
    assert recovery["status"] == "SUCCEEDED"
    assert json.loads(recovery["output"])["recovery"]["action"] == "nothing"


def test_a_notification_that_cannot_be_published_is_sent_by_the_recovery(
    cloud: LocalCloud, notifications: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SNS refuses the test's notification for longer than the execution's own retries last
    def its_notification(operation: str, params: dict[str, Any]) -> bool:
        return operation == "Publish" and "unheard" in str(params.get("Subject", ""))

    refusals = refuse(monkeypatch, its_notification, times=31, code="InternalError")
    run = deploy_endpoint(cloud, "unheard")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=60, invocations=150)

    # WHEN the test runs to its end
    run.start()
    described = run.finish()

    # THEN the execution says the notification is missing, and the recovery sent it (once)
    assert refusals[0] == 0
    assert (described["status"], described.get("error")) == ("FAILED", "NotificationNotSent")
    assert [recovery["status"] for recovery in run.recoveries] == ["SUCCEEDED"]
    subjects = subjects_for(cloud, notifications, "unheard")
    assert len(subjects) == 1, subjects
    assert "removed" in subjects[0]
    assert run.report()["outcome"] == "removed"
    run.assert_clean(config="unheard-config-1", variant="primary", model="unheard-v1", capture=USER_CAPTURE)
