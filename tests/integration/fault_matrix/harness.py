"""The fault matrix's harness: one local cloud per worker with the fault injector installed, the two
scenarios a case runs (a healthy candidate that promotes, a slow one that is removed), settling the cloud
after a case, and the restore guarantee checked in full.

The guarantee (README, "restore guarantee"): every terminal path of a shadow test leaves the endpoint
InService on the promoted config or on its snapshot's config, with data capture and Auto Scaling targets
and their scaling policies as they were (carried to the promoted variant after a promotion), nothing
temporary left (endpoint configs, derived models), the lease released, a report (report.json +
report.html) written, and a notification published; the report's outcome says "promoted" exactly when
the endpoint is on the promoted config.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from shadowscale.shadow_tests.models import ShadowTestPlan
from shadowscale_localcloud.faults import FaultInjector, RecordedCall
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import ACCOUNT, REGION

from tests.integration.test_shadow_lifecycle import (
    MONDAY_0800_UTC,
    REPO,
    USER_CAPTURE,
    ShadowTestRun,
    deploy_endpoint,
    publish_traffic,
)

ScenarioName = Literal["promote", "remove"]
SCENARIOS: tuple[ScenarioName, ...] = ("promote", "remove")
SETTLE_BOUND = timedelta(days=3)  # simulated time a case may take to settle after its start
SETTLE_WALL_SECONDS = 120.0
# Settling wakes when an execution's end is delivered; this only bounds how late it sees anything else.
SETTLE_WAKE_SECONDS = 0.25
POLICY = "invocations-per-instance"
TEST_INPUT: dict[str, Any] = {"durationMinutes": 10, "evaluationPeriodMinutes": 5, "inServiceTimeoutMinutes": 60}


class EndsSignalled(list[dict[str, Any]]):
    """The Step Functions gap's `ended` (the status-change events of ended executions, each appended once
    its delivery is done), signalling every append: settling waits for it instead of polling."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__(events)
        self.grown = threading.Condition()

    def append(self, event: dict[str, Any]) -> None:
        with self.grown:
            super().append(event)
            self.grown.notify_all()

    def wait_past(self, count: int, timeout: float) -> None:
        """Until it holds more than `count` events, or `timeout` seconds have passed."""
        with self.grown:
            self.grown.wait_for(lambda: len(self) > count, timeout)


@dataclass
class MatrixCloud:
    cloud: LocalCloud
    faults: FaultInjector
    notifications_url: str
    ended: EndsSignalled = field(default_factory=lambda: EndsSignalled([]))
    _machines: list[str] | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """The operator's client, made once (a boto3 client costs milliseconds to make; the harness asks
        hundreds of times a case). Only for the test's own thread."""
        if service not in self._clients:
            self._clients[service] = self.cloud.client(service)
        return self._clients[service]

    def state_machines(self) -> list[str]:
        """The stack's state machines (deployed once with the stack: listed once)."""
        if self._machines is None:
            machines = self.client("stepfunctions").list_state_machines()["stateMachines"]
            self._machines = [str(machine["stateMachineArn"]) for machine in machines]
        return self._machines

    def executions(self, since: datetime) -> dict[str, dict[str, Any]]:
        """Executions of every state machine of the stack started at or after `since` (on the cloud's
        clock, as the local cloud stamps them; listed newest first)."""
        stepfunctions = self.client("stepfunctions")
        found: dict[str, dict[str, Any]] = {}
        for machine in self.state_machines():
            for page in stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=machine):
                recent = [execution for execution in page["executions"] if execution["startDate"] >= since]
                found.update({str(execution["executionArn"]): execution for execution in recent})
                if len(recent) < len(page["executions"]):
                    break
        return found

    def unsettled(self, since: datetime) -> list[str]:
        """What settling waits for, read from moto's backend in-process (as ListExecutions would answer,
        without a request per poll): every RUNNING execution of the stack's machines or, when none runs,
        those started at or after `since` whose end the local cloud has not delivered yet."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        machines = set(self.state_machines())
        executions = [
            execution
            for machine in list(stepfunctions_parser_backends[ACCOUNT][REGION].state_machines)
            if machine.arn in machines
            for execution in list(machine.executions)
        ]
        running = [str(execution.execution_arn) for execution in executions if _status(execution) == "RUNNING"]
        if running:
            return running
        ended = {event["detail"]["executionArn"] for event in list(self.ended)}
        return [
            str(execution.execution_arn)
            for execution in executions
            if execution.start_date >= since and execution.execution_arn not in ended
        ]

    def deliveries_due(self) -> bool:
        """Messages waiting in a queue an event source mapping reads (the local cloud delivers them on the
        clock): GetQueueAttributes' three counts, read from moto's queues in-process."""
        from moto.sqs.models import sqs_backends

        queues = sqs_backends[ACCOUNT][REGION].queues
        return any(
            queue.approximate_number_of_messages
            or queue.approximate_number_of_messages_delayed
            or queue.approximate_number_of_messages_not_visible
            for queue in (queues[name] for name in list(self.cloud._mappings))
        )

    def notifications(self) -> list[dict[str, str]]:
        """Every notification delivered to the subscribed queue since the last call."""
        sqs = self.client("sqs")
        found: list[dict[str, str]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.notifications_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                found.append({"subject": str(body.get("Subject", "")), "message": str(body.get("Message", ""))})
                sqs.delete_message(QueueUrl=self.notifications_url, ReceiptHandle=message["ReceiptHandle"])


def _status(execution: Any) -> str:  # moto's interpreter's Execution
    # moto lists an execution just before it sets it RUNNING: no status yet counts as running.
    status = getattr(execution, "exec_status", None)
    return str(status.value) if status is not None else "RUNNING"


@contextmanager
def matrix_cloud(stack_name: str) -> Iterator[MatrixCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(MONDAY_0800_UTC), stack_name=stack_name) as cloud:
        assert cloud.role_sessions is not None
        sqs, sns = cloud.client("sqs"), cloud.client("sns")
        url = sqs.create_queue(QueueName=f"{stack_name}-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=cloud.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=arn)
        assert cloud.stepfunctions is not None
        ended = EndsSignalled(cloud.stepfunctions.ended)
        cloud.stepfunctions.ended = ended  # the gap appends to whatever list it holds: now one that signals
        with FaultInjector(principals=cloud.role_sessions, now=cloud.clock.now) as faults:
            yield MatrixCloud(cloud, faults, str(url), ended)


def endpoint_name(case_id: str) -> str:
    """A short name of its own per case (SageMaker names ≤ 63 characters, SNS subjects < 100)."""
    return "fm-" + hashlib.sha1(case_id.encode()).hexdigest()[:10]


@dataclass
class Case:
    """One shadow test on an endpoint of its own, and everything needed to judge how it ended."""

    matrix: MatrixCloud
    case_id: str
    scenario: ScenarioName
    endpoint: str = ""
    run: ShadowTestRun | None = None
    others: list[ShadowTestRun] = field(default_factory=list)  # further executions on the same endpoint
    started_at: datetime | None = None
    since: datetime = field(init=False)  # on the cloud's clock: executions started after it are the case's
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.since = self.cloud.clock.now()

    @property
    def cloud(self) -> LocalCloud:
        return self.matrix.cloud

    def applies(self, call: RecordedCall) -> bool:
        """Whether a call belongs to this case: made by one of its executions (or their recoveries, whose
        input carries the test's input) or, outside any execution, naming its endpoint."""
        if call.execution_input is not None:
            return self.endpoint in call.execution_input
        return self.endpoint in json.dumps(call.params, default=str)

    def deploy(self) -> ShadowTestRun:
        self.endpoint = self.endpoint or endpoint_name(self.case_id)
        self.matrix.notifications()  # drain what earlier cases left
        self.since = self.cloud.clock.now() - timedelta(milliseconds=1)
        self.started_at = self.cloud.clock.now()
        self.run = deploy_endpoint(self.cloud, self.endpoint)
        shadow_latency = 21.0 if self.scenario == "promote" else 60.0
        publish_traffic(self.cloud, self.endpoint, "primary", latency_ms=20, minutes=120)
        publish_traffic(self.cloud, self.endpoint, "shadow", latency_ms=shadow_latency, invocations=150, minutes=120)
        return self.run

    def start(self, name: str | None = None, **overrides: Any) -> ShadowTestRun:
        run = (
            self.run
            if self.run is not None and not self.run.execution_arn
            else ShadowTestRun(self.cloud, self.endpoint)
        )
        document: dict[str, Any] = {
            "endpointName": self.endpoint,
            "candidate": {"modelName": f"{self.endpoint}-v2", "instanceType": "ml.g4dn.xlarge", "instanceCount": 1},
            "sampling": {"percent": 50},
            "gates": {"minInvocations": 100},
            **TEST_INPUT,
            **overrides,
        }
        started = self.matrix.client("stepfunctions").start_execution(
            stateMachineArn=self.cloud.outputs["ShadowTestStateMachineArn"],
            name=name or f"{self.endpoint}-{len(self.others)}",
            input=json.dumps(document),
        )
        run.execution_arn = str(started["executionArn"])
        if run is not self.run:
            self.others.append(run)
        return run

    # --- settling -----------------------------------------------------------------------------

    def settle(self) -> list[str]:
        """Let the cloud run until no execution of any of the stack's state machines is RUNNING (its end
        delivered to EventBridge) and no queued delivery is due, within SETTLE_BOUND of simulated time
        after the case began. Returns what is still running when the bound is hit."""
        assert self.started_at is not None
        cloud, matrix = self.cloud, self.matrix
        wall_deadline = time.monotonic() + SETTLE_WALL_SECONDS
        while True:
            seen = len(matrix.ended)  # before reading: an end delivered after this wakes the wait at once
            running = matrix.unsettled(self.since)
            out_of_time = cloud.clock.now() - self.started_at > SETTLE_BOUND or time.monotonic() > wall_deadline
            if running:
                if out_of_time:
                    return [arn.split(":", 6)[-1] for arn in running]
                matrix.ended.wait_past(seen, SETTLE_WAKE_SECONDS)
                continue
            if out_of_time or not matrix.deliveries_due():
                return []
            cloud.advance(60)

    # --- the guarantee ------------------------------------------------------------------------

    def report(self, run: ShadowTestRun) -> tuple[dict[str, Any] | None, str | None]:
        s3 = self.matrix.client("s3")
        prefix = f"reports/{self.endpoint}/{ShadowTestPlan.test_id_of(run.execution_arn)}/"
        bucket = self.cloud.outputs["DataBucketName"]
        found: list[Any] = []
        for name in ("report.json", "report.html"):
            try:
                found.append(s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read().decode())
            except s3.exceptions.NoSuchKey:
                found.append(None)
        return (json.loads(found[0]) if found[0] else None), found[1]

    def promoted_config(self) -> str | None:
        """The promoted config's name, as the test planned it: from the plan any state of the test's
        execution or of a recovery of it passed on (the execution may have failed, with no output)."""
        assert self.run is not None
        stepfunctions = self.matrix.client("stepfunctions")
        for arn in self.matrix.executions(self.since):
            described = stepfunctions.describe_execution(executionArn=arn)
            if arn != self.run.execution_arn and self.run.execution_arn not in (described.get("input") or ""):
                continue
            outputs = [described.get("output")] + [
                (event.get("stateExitedEventDetails") or {}).get("output") for event in self.cloud.history(arn)
            ]
            for output in outputs:
                plan = json.loads(output).get("plan") if output and output.startswith("{") else None
                if isinstance(plan, dict) and plan.get("promotedConfigName"):
                    return str(plan["promotedConfigName"])
        return None

    def state(self) -> dict[str, Any]:
        """The endpoint's actual state, as a failure message shows it."""
        sagemaker = self.matrix.client("sagemaker")
        described: dict[str, Any] = {}
        try:
            described = sagemaker.describe_endpoint(EndpointName=self.endpoint)
        except sagemaker.exceptions.ClientError as error:
            described = {"error": str(error)}
        configs = sorted(
            name
            for page in sagemaker.get_paginator("list_endpoint_configs").paginate()
            for name in (c["EndpointConfigName"] for c in page["EndpointConfigs"])
            if self.endpoint in name
        )
        models = sorted(
            name
            for page in sagemaker.get_paginator("list_models").paginate()
            for name in (m["ModelName"] for m in page["Models"])
            if self.endpoint in name
        )
        assert self.run is not None
        executions = {arn.rsplit(":", 1)[-1]: e["status"] for arn, e in self.matrix.executions(self.since).items()}
        return {
            "status": described.get("EndpointStatus", described.get("error")),
            "config": described.get("EndpointConfigName"),
            "variants": [v["VariantName"] for v in described.get("ProductionVariants", [])],
            "shadowVariants": [v["VariantName"] for v in described.get("ShadowProductionVariants", [])],
            "capture": {
                key: value
                for key, value in (described.get("DataCaptureConfig") or {}).items()
                if key in ("EnableCapture", "CurrentSamplingPercentage", "DestinationS3Uri", "CaptureStatus")
            },
            "failureReason": described.get("FailureReason"),
            "configs": configs,
            "models": models,
            "scalingTargets": self.scaling_targets(),
            "lease": {key: next(iter(value.values())) for key, value in self.run.lease().items()},
            "executions": executions,
            "clock": str(self.cloud.clock.now() - (self.started_at or self.cloud.clock.now())),
        }

    def scaling_targets(self) -> dict[str, tuple[int, int, list[str]]]:
        """The endpoint's scalable targets and their policies' names, by variant (asked by resource id:
        DescribeScalableTargets pages at 50 targets, and a worker's cloud holds hundreds)."""
        autoscaling = self.matrix.client("application-autoscaling")
        found: dict[str, tuple[int, int, list[str]]] = {}
        resources = [f"endpoint/{self.endpoint}/variant/{variant}" for variant in ("primary", "shadow")]
        targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=resources)
        for target in targets["ScalableTargets"]:
            policies = autoscaling.describe_scaling_policies(
                ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
            )["ScalingPolicies"]
            found[target["ResourceId"].rsplit("/", 1)[-1]] = (
                target["MinCapacity"],
                target["MaxCapacity"],
                sorted(policy["PolicyName"] for policy in policies),
            )
        return found

    def guarantee(self, *, still_running: list[str], notifications: list[dict[str, str]]) -> list[str]:
        """Every part of the restore guarantee that does not hold, one line each (empty: it all holds)."""
        assert self.run is not None
        broken: list[str] = []
        state = self.state()
        if still_running:
            broken.append(f"not settled within {SETTLE_BOUND} of the clock: still running {still_running}")
        report, html = self.report(self.run)
        outcome = report.get("outcome") if report else None
        promoted_name = self.promoted_config()
        on_promoted = promoted_name is not None and state["config"] == promoted_name
        snapshot = f"{self.endpoint}-config-1"
        if state["status"] != "InService":
            broken.append(f"endpoint not InService: {state['status']} (FailureReason {state['failureReason']!r})")
        if not on_promoted and state["config"] != snapshot:
            broken.append(f"endpoint on neither the promoted config ({promoted_name}) nor the snapshot's ({snapshot})")
        variant, model = ("shadow", f"{self.endpoint}-v2") if on_promoted else ("primary", f"{self.endpoint}-v1")
        if state["variants"] != [variant]:
            broken.append(f"production variants {state['variants']}, expected [{variant!r}]")
        if state["config"]:
            config = self.matrix.client("sagemaker").describe_endpoint_config(EndpointConfigName=state["config"])
            models = [v["ModelName"] for v in config["ProductionVariants"]]
            if models != [model]:
                broken.append(f"config {state['config']} serves {models}, expected [{model!r}]")
        if state["shadowVariants"]:
            broken.append(f"shadow variant left on the endpoint: {state['shadowVariants']}")
        capture = state["capture"]
        if (
            capture.get("EnableCapture") is not True
            or capture.get("CurrentSamplingPercentage") != USER_CAPTURE["InitialSamplingPercentage"]
            or capture.get("DestinationS3Uri") != USER_CAPTURE["DestinationS3Uri"]
        ):
            broken.append(f"data capture not as it was: {capture}")
        expected_targets = {variant: (2, 6, [POLICY])}
        if state["scalingTargets"] != expected_targets:
            broken.append(f"Auto Scaling targets/policies {state['scalingTargets']}, expected {expected_targets}")
        # The lease: leaseOwner and the test's record shadowTest (any other *Owner attribute counts as a holder too).
        if "shadowTest" in state["lease"] or any(key.endswith("Owner") for key in state["lease"]):
            broken.append(f"lease not released: {state['lease']}")
        allowed = {snapshot, *([promoted_name] if on_promoted and promoted_name else [])}
        left = [name for name in state["configs"] if name not in allowed]
        if left:
            broken.append(f"temporary endpoint configs left: {left}")
        derived = [name for name in state["models"] if name not in (f"{self.endpoint}-v1", f"{self.endpoint}-v2")]
        if derived:
            broken.append(f"derived models left: {derived}")
        if report is None:
            broken.append("report.json not written")
        if html is None:
            broken.append("report.html not written")
        elif outcome is not None and not re.search(f'<span class="badge"[^>]*>{re.escape(str(outcome))}</span>', html):
            broken.append(f"report.html does not show the outcome {outcome!r}")
        if report is not None and (outcome == "promoted") != on_promoted:
            broken.append(
                f"report says {outcome!r} but the endpoint is on {state['config']} (promoted config {promoted_name})"
            )
        mine = [n for n in notifications if self.endpoint in n["subject"] or self.endpoint in n["message"]]
        if not mine:
            broken.append("no notification published to the topic")
        if broken:
            broken.append(f"endpoint state: {json.dumps(state, default=str)}")
            if report is not None:
                broken.append(
                    f"report: outcome={outcome!r} reason={report.get('reason')!r} failure={report.get('failure')}"
                )
            broken.append(f"notifications: {[n['subject'] for n in mine]}")
        return broken

    def finish(self) -> list[str]:
        """Settle, then judge: the broken parts of the guarantee."""
        still_running = self.settle()
        return self.guarantee(still_running=still_running, notifications=self.matrix.notifications())
