"""Every IAM statement the stack grants is needed, and nothing the stack does is denied.

The demo's whole journey (schedules, alarms through the EventBridge rule and an alarm action, deferred
changes through the SQS event source mapping, a variant under Auto Scaling, a shadow test that promotes
and one a person rejects, response diffs closed on time) runs on the local cloud with IAM enforced, then
a shadow test with a derived candidate model is aborted mid-bake (a recovery execution restores), a
guarded promotion rolls back on its alarm, a close request arrives early, a malformed message reaches the
diff queue, and a backfill diffs a test again.
Every authorisation is recorded; a statement is needed when it was the only grant of at least one call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from shadowscale.shared.diff_contract import CloseDiffs
from shadowscale_localcloud import demo
from shadowscale_localcloud.iam_enforcement import AuthorizationRecord
from shadowscale_localcloud.platform import LocalCloud

from tests.e2e.test_guarded_promotion import roll_back_a_guarded_promotion
from tests.integration.test_shadow_lifecycle import deploy_endpoint

pytestmark = pytest.mark.e2e

# Statements only paths the local cloud cannot drive use, each with its reason. An entry that a call
# needed after all fails the test (keep this list true).
NOT_DRIVABLE = {
    "ShadowTestRecoveryStateMachineRole+ShadowTestStateMachineRole:DeliverLogs": "Step Functions itself sets"
    " up log delivery with these when a state machine with a LoggingConfiguration is created or updated; the"
    " local cloud creates its state machines without one (moto delivers no execution logs).",
    "CaptureBackfillStateMachineRole:DeliverLogs": "as for the shadow-test state machine: log delivery set-up"
    " at CreateStateMachine, which the local cloud does not make with a LoggingConfiguration.",
    "CaptureBackfillStateMachineRole:RunChildWorkflows": "a Distributed Map starts its items as child"
    " executions with states:StartExecution; moto's interpreter runs them in-process, without the call.",
    "CaptureBackfillStateMachineRole:ManageChildWorkflows": "Step Functions describes and stops a Distributed"
    " Map's child executions; moto's interpreter never makes these calls.",
    "SchedulerInvokeRole:invoke-scheduled-scaler#1": "EventBridge Scheduler sends an event it could not"
    " deliver after its retries to the schedule's dead-letter queue; the local cloud's schedules always reach"
    " the function.",
    "SchedulerInvokeRole:invoke-scheduled-scaler#2": "the key of that dead-letter queue, for the same"
    " undeliverable event.",
}


@dataclass
class Journey:
    cloud: LocalCloud
    records: list[AuthorizationRecord]
    unmodelled: list[str]
    aborted: dict[str, Any]
    backfill: dict[str, Any]


def abort_a_derived_candidate_mid_bake(cloud: LocalCloud) -> dict[str, Any]:
    """A candidate with its own environment (a derived model: CreateModel, PassRole), stopped while it bakes."""
    run = deploy_endpoint(cloud, "abort-me")
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        run.start(
            durationMinutes=240,
            candidate={
                "modelName": "abort-me-v2",
                "instanceType": "ml.g4dn.xlarge",
                "instanceCount": 1,
                "environment": {"MODEL_THRESHOLD": "0.7"},
            },
        )
        cloud.step_to(run.execution_arn, "Bake")  # one Wait state at a time
        cloud.client("stepfunctions").stop_execution(executionArn=run.execution_arn, cause="operator abort")
    finally:
        cloud.stepfunctions.release_waits()
    described = run.finish()
    assert [recovery["status"] for recovery in run.recoveries] == ["SUCCEEDED"]
    return described


def send_to_diff_queue(cloud: LocalCloud, body: str) -> None:
    cloud.client("sqs").send_message(QueueUrl=cloud.outputs["CaptureDiffQueueUrl"], MessageBody=body)
    cloud.advance(60)


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    started: list[LocalCloud] = []
    start, stop = LocalCloud.start, LocalCloud.stop

    def keep(cloud: LocalCloud) -> LocalCloud:
        started.append(cloud)
        return start(cloud)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalCloud, "start", keep)
        patch.setattr(LocalCloud, "stop", lambda cloud: None)  # the journey goes on after the demo
        try:
            demo.run(tmp_path_factory.mktemp("demo-output"))
            cloud = started[0]
            assert cloud.runtime is not None
            assert cloud.iam is not None
            cloud.runtime.log_sink = None  # the demo closed its log file
            aborted = abort_a_derived_candidate_mid_bake(cloud)
            # A guarded promotion's alarms: created, read when SageMaker rolls back, deleted.
            assert roll_back_a_guarded_promotion(cloud, "guarded-iam")["outcome"] == "rolled-back"
            # An early close request goes back on the queue; a malformed message is dead-lettered.
            send_to_diff_queue(
                cloud, CloseDiffs(test_id="promote-v2", ended_at=cloud.clock.now()).model_dump_json(by_alias=True)
            )
            send_to_diff_queue(cloud, json.dumps({"hello": 1}))
            backfill = cloud.client("stepfunctions").start_execution(
                stateMachineArn=cloud.outputs["CaptureBackfillStateMachineArn"],
                name="promote-v2-again",
                input=json.dumps({"testId": "promote-v2", "run": "again"}),
            )
            described = cloud.wait_for_execution(backfill["executionArn"], timeout=300)
            yield Journey(cloud, list(cloud.iam.records), list(cloud.iam.unmodelled), aborted, described)
        finally:
            for cloud in started:
                stop(cloud)


# --- the stack's statements, as deployed ------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """One Allow statement as template.yaml writes it; copies (a YAML anchor, a shared managed policy)
    are one statement, needed if any role that holds it needed it."""

    name: str
    statement: str  # JSON, for the report


def written_statements(cloud: LocalCloud) -> tuple[dict[str, Written], dict[tuple[str, str, int], str]]:
    """Every template-written Allow statement of the stack's roles, and where each copy lives: (role
    physical name, inline policy name or managed policy ARN, index) → statement name."""
    assert cloud.stack is not None
    physical = cloud.stack.physical
    resources = cloud.stack.translated["Resources"]
    holders: dict[str, list[str]] = {}  # an inline document → the roles that hold it
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                holders.setdefault(json.dumps(policy["PolicyDocument"], sort_keys=True), []).append(logical_id)
    written: dict[str, Written] = {}
    copies: dict[tuple[str, str, int], str] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        properties = resource["Properties"]
        for policy in properties.get("Policies", []):
            if policy["PolicyName"] == "DeadLetterQueuePolicy":
                continue  # SAM's own, for the DeadLetterQueue property: a grant, not a statement we wrote
            owners = "+".join(holders[json.dumps(policy["PolicyDocument"], sort_keys=True)])
            for index, statement in enumerate(policy["PolicyDocument"]["Statement"]):
                if statement.get("Effect") != "Allow":
                    continue
                name = f"{owners}:{statement.get('Sid') or policy['PolicyName'] + '#' + str(index)}"
                written.setdefault(name, Written(name, json.dumps(statement)))
                copies[(physical[logical_id], policy["PolicyName"], index)] = name
        for arn in properties.get("ManagedPolicyArns", []):
            if not isinstance(arn, dict):
                continue  # an AWS managed policy SAM adds
            managed = arn["Ref"]
            for index, statement in enumerate(resources[managed]["Properties"]["PolicyDocument"]["Statement"]):
                name = f"{managed}:{statement.get('Sid') or index}"
                written.setdefault(name, Written(name, json.dumps(statement)))
                copies[(physical[logical_id], physical[managed], index)] = name
    return written, copies


def needs(journey: Journey) -> dict[str, list[AuthorizationRecord]]:
    """Each written statement that was the only grant of some call, with those calls."""
    _, copies = written_statements(journey.cloud)
    found: dict[str, list[AuthorizationRecord]] = {}
    for record in journey.records:
        grants = [ref for ref in record.evaluation.allowed_by if not ref.policy.startswith("resource policy")]
        if record.allowed and len(grants) == 1:
            name = copies.get((record.principal.role_name, grants[0].policy, grants[0].index))
            if name is not None:
                found.setdefault(name, []).append(record)
    return found


# --- the tests --------------------------------------------------------------------------------------


def test_the_journey_ran_every_flow(journey: Journey) -> None:
    assert journey.aborted["status"] == "ABORTED"
    recoveries = [d for d in journey.cloud.deliveries if d.target.endswith("shadow-test-recovery")]
    assert recoveries
    assert recoveries[-1].error is None
    assert journey.backfill["status"] == "SUCCEEDED", journey.backfill.get("cause")
    operations = {record.operation for record in journey.records}
    for expected in (
        "sagemaker:CreateModel",  # the derived candidate
        "lambda:EventSourceMapping",  # both queues' mappings polled with their function's role
        "lambda:Invoke",  # schedules (their role) and the state machines (theirs)
        "s3:ListBucket",  # the backfill listing its hour folders and their objects
        "sns:Publish",
    ):
        assert expected in operations


def test_nothing_the_stack_does_is_denied_and_every_call_is_modelled(journey: Journey) -> None:
    denied = [
        f"{r.principal.label}: {r.operation} needs {r.check.action} on {r.check.resource}"
        for r in journey.records
        if not r.allowed
    ]
    assert denied == []
    assert journey.unmodelled == []


def test_every_statement_is_the_only_grant_of_some_call(journey: Journey) -> None:
    written, _ = written_statements(journey.cloud)
    needed = needs(journey)
    print("\nEvery Allow statement of the stack's roles and one call that needs it:")
    for name in sorted(written):
        calls = needed.get(name)
        if calls:
            call = calls[0]
            why = f" ({call.check.because})" if call.check.because else ""
            print(
                f"  {name}\n      {call.principal.label}: {call.operation} → {call.check.action} on"
                f" {call.check.resource}{why}"
            )
        else:
            print(f"  {name}\n      not driven: {NOT_DRIVABLE.get(name, 'NO CALL NEEDED IT')}")
    unneeded = sorted(set(written) - set(needed))
    assert unneeded == sorted(NOT_DRIVABLE), "statements no call needed (delete them, or say why here)"
