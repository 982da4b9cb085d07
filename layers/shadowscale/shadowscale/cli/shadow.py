"""`shadowscale shadow ...`: start a shadow test from a file, follow it, approve or reject it, abort it,
recover it, print or open its report. Everything goes through the deployed stack's outputs and public APIs, so the
same commands work against AWS and against the local cloud (`--endpoint-url`)."""

from __future__ import annotations

import argparse
import json
import time
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from shadowscale.cli.policy_wiring import DeployedOutputs
from shadowscale.shadow_tests.models import ShadowTestPlan, ShadowTestReport, lease_owner, parse_shadow_test_input
from shadowscale.shadow_tests.records import DynamoShadowTestRecords
from shadowscale.shadow_tests.report_page import pairs_line
from shadowscale.shared.errors import InvalidShadowTestInput

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class ShadowStackOutputs(DeployedOutputs):
    ShadowTestStateMachineArn: str
    ShadowTestRecoveryStateMachineArn: str
    EndpointStateTableName: str
    DataBucketName: str


ClientFactory = Callable[[argparse.Namespace, str], Any]


class ShadowCommands:
    def __init__(self, args: argparse.Namespace, client: ClientFactory, out: Callable[[str], None] = print) -> None:
        self._args = args
        self._client = client
        self._out = out
        self._outputs: ShadowStackOutputs | None = None

    def client(self, service: str) -> Any:  # noqa: ANN401
        return self._client(self._args, service)

    @property
    def outputs(self) -> ShadowStackOutputs:
        if self._outputs is None:
            self._outputs = ShadowStackOutputs.from_stack(self.client("cloudformation"), self._args.stack_name)
        return self._outputs

    def _execution_arn(self, reference: str) -> str:
        """An execution ARN, or an execution name of the stack's state machine."""
        if reference.startswith("arn:"):
            return reference
        machine = self.outputs.ShadowTestStateMachineArn
        return machine.replace(":stateMachine:", ":execution:") + f":{reference}"

    # --- commands -------------------------------------------------------------------------------

    def start(self) -> int:
        path = Path(self._args.file)
        try:
            document = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidShadowTestInput(f"{path}: cannot read a JSON document: {exc}") from exc
        try:
            request = parse_shadow_test_input(document)  # the state machine validates again; fail fast here
        except InvalidShadowTestInput as exc:
            raise InvalidShadowTestInput(f"{path}: {exc}") from exc
        name = self._args.name or f"{request.endpoint_name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        started = self.client("stepfunctions").start_execution(
            stateMachineArn=self.outputs.ShadowTestStateMachineArn, name=name, input=json.dumps(document)
        )
        self._out(f"started {started['executionArn']}")
        if self._args.follow:
            return self._follow(started["executionArn"])
        self._out(f"follow it with: shadowscale shadow follow {name}")
        return 0

    def follow(self) -> int:
        return self._follow(self._execution_arn(self._args.execution))

    def _follow(self, execution_arn: str) -> int:
        stepfunctions = self.client("stepfunctions")
        seen = 0
        while True:
            events = [
                event
                for page in stepfunctions.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
                for event in page["events"]
            ]
            for event in events[seen:]:
                line = _describe_event(event)
                if line:
                    self._out(line)
            seen = len(events)
            described = stepfunctions.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL:
                self._out(f"execution {described['status']}")
                self._print_report_summary(execution_arn, described)
                return 0 if described["status"] == "SUCCEEDED" else 1
            time.sleep(self._args.poll_seconds)

    def _record(self, execution_arn: str) -> tuple[dict[str, Any], str | None]:
        described = self.client("stepfunctions").describe_execution(executionArn=execution_arn)
        document = json.loads(described.get("input") or "{}")
        endpoint = document.get("endpointName", "")
        stored = DynamoShadowTestRecords(self.client("dynamodb"), self.outputs.EndpointStateTableName).load(endpoint)
        if stored.owner != lease_owner(execution_arn):
            return described, None
        return described, stored.approval_token

    def decide(self, approved: bool) -> int:
        execution_arn = self._execution_arn(self._args.execution)
        described, token = self._record(execution_arn)
        if described["status"] != "RUNNING" or token is None:
            self._out(f"error: {execution_arn} is {described['status']} and not waiting for approval")
            return 1
        output = {"approved": approved, "by": self._args.by, "comment": self._args.comment or ""}
        self.client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))
        self._out(f"{'approved' if approved else 'rejected'} {execution_arn}")
        return 0

    def abort(self) -> int:
        execution_arn = self._execution_arn(self._args.execution)
        self.client("stepfunctions").stop_execution(
            executionArn=execution_arn, error="Aborted", cause=self._args.cause or f"aborted by {self._args.by}"
        )
        self._out(f"aborted {execution_arn}: a recovery execution restores the endpoint and writes the report")
        return 0

    def recover(self) -> int:
        """Start a recovery of an ended test: after a recovery gave up (its alarm), or to re-write a report."""
        execution_arn = self._execution_arn(self._args.execution)
        stepfunctions = self.client("stepfunctions")
        described = stepfunctions.describe_execution(executionArn=execution_arn)
        if described["status"] == "RUNNING":
            self._out(f"error: {execution_arn} is still running; `shadowscale shadow abort` it first")
            return 1
        detail = {"executionArn": execution_arn, "status": described["status"], "input": described.get("input")}
        started = stepfunctions.start_execution(
            stateMachineArn=self.outputs.ShadowTestRecoveryStateMachineArn, input=json.dumps({"detail": detail})
        )
        self._out(f"recovering {execution_arn}: {started['executionArn']}")
        if not self._args.wait:
            return 0
        while True:
            ended = stepfunctions.describe_execution(executionArn=started["executionArn"])
            if ended["status"] in TERMINAL:
                self._out(f"recovery {ended['status']}" + (f": {ended.get('cause', '')}" if ended.get("cause") else ""))
                return 0 if ended["status"] == "SUCCEEDED" else 1
            time.sleep(self._args.poll_seconds)

    def status(self) -> int:
        execution_arn = self._execution_arn(self._args.execution)
        described, token = self._record(execution_arn)
        self._out(f"{execution_arn}: {described['status']}")
        if token:
            self._out("waiting for approval: shadowscale shadow approve|reject " + execution_arn)
            self._out(f"task token: {token}")
        return 0

    def report(self) -> int:
        execution_arn = self._execution_arn(self._args.execution)
        described = self.client("stepfunctions").describe_execution(executionArn=execution_arn)
        endpoint = json.loads(described.get("input") or "{}").get("endpointName", "unknown")
        key = f"reports/{endpoint}/{ShadowTestPlan.test_id_of(execution_arn)}/report"
        s3 = self.client("s3")
        if self._args.open:
            target = Path(self._args.output_dir) / f"{ShadowTestPlan.test_id_of(execution_arn)}.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=self.outputs.DataBucketName, Key=f"{key}.html")["Body"].read())
            self._out(f"report saved to {target}")
            webbrowser.open(target.resolve().as_uri())
            return 0
        if described["status"] == "RUNNING":
            key = f"{key}-pending"  # the interim report written when it asked for approval, if it has
        try:
            body = json.loads(s3.get_object(Bucket=self.outputs.DataBucketName, Key=f"{key}.json")["Body"].read())
        except s3.exceptions.NoSuchKey:
            self._out(self._no_report_yet(execution_arn, described))
            return 0 if described["status"] == "RUNNING" else 1
        if self._args.json:
            self._out(json.dumps(body, indent=2))
            return 0
        self._out(_summary(body))
        return 0

    def _no_report_yet(self, execution_arn: str, described: dict[str, Any]) -> str:
        if described["status"] != "RUNNING":
            status = described["status"]
            return f"{execution_arn}: {status}, and no report was written (`shadowscale shadow recover` writes it)"
        events = self.client("stepfunctions").get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=50
        )["events"]
        entered = next((e for e in events if e["type"].endswith("StateEntered")), None)
        where = f"in {entered['stateEnteredEventDetails']['name']} since {entered['timestamp']}" if entered else ""
        return (
            f"{execution_arn}: RUNNING {where}; no report yet"
            " (one is written when it asks for approval and when it ends)"
        )

    def _print_report_summary(self, execution_arn: str, described: dict[str, Any]) -> None:
        endpoint = json.loads(described.get("input") or "{}").get("endpointName", "unknown")
        key = f"reports/{endpoint}/{ShadowTestPlan.test_id_of(execution_arn)}/report.json"
        try:
            body = self.client("s3").get_object(Bucket=self.outputs.DataBucketName, Key=key)["Body"].read()
        except Exception:
            self._out(f"report: s3://{self.outputs.DataBucketName}/{key} (not written yet)")
            return
        self._out(_summary(json.loads(body)))


def _describe_event(event: dict[str, Any]) -> str | None:
    kind = event["type"]
    at = event["timestamp"].strftime("%H:%M:%S") if isinstance(event["timestamp"], datetime) else event["timestamp"]
    if kind.endswith("StateEntered") and not kind.startswith(("Choice", "Pass")):
        return f"{at}  {event['stateEnteredEventDetails']['name']}"
    if kind in {"TaskFailed", "LambdaFunctionFailed", "ExecutionFailed"}:
        details: dict[str, Any] = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
        return f"{at}  ! {details.get('error', kind)}: {str(details.get('cause', ''))[:200]}"
    return None


def _summary(report: dict[str, Any]) -> str:
    lines = [
        f"{report['endpoint']}: {report['outcome'].upper()} (verdict: {report.get('verdict') or '-'})",
        f"  {report['reason']}",
    ]
    evaluation = report.get("evaluation") or {}
    if evaluation:
        lines.append(f"  gates as evaluated at {evaluation.get('at')}:")
    for gate in evaluation.get("gates", []):
        lines.append(
            f"  {gate['status']:>17}  {gate['name']:<24} "
            f"observed={gate.get('observed')} threshold={gate.get('threshold')}"
        )
    pairs = pairs_line(ShadowTestReport.model_validate(report))
    if pairs is not None:
        lines.append(f"  {pairs[0].lower()}{pairs[1:]}")
        if report.get("diffNote"):
            lines.append(f"    {report['diffNote']}")
    lines.append(f"  report: {report.get('htmlUri')}")
    return "\n".join(lines)


def add_shadow_commands(
    commands: Any,  # noqa: ANN401  (argparse's private subparsers type)
    aws_options: Callable[[argparse.ArgumentParser], None],
    client: ClientFactory,
) -> None:
    shadow = commands.add_parser("shadow", help="shadow tests").add_subparsers(dest="action", required=True)

    def command(name: str, text: str, run: Callable[[ShadowCommands], int]) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = shadow.add_parser(name, help=text)
        aws_options(sub)
        sub.set_defaults(run=lambda args: run(ShadowCommands(args, client)))
        return sub

    start = command("start", "start a shadow test from a JSON input file", ShadowCommands.start)
    start.add_argument("file")
    start.add_argument("--name", help="execution name (default: <endpoint>-<UTC timestamp>)")
    start.add_argument("--follow", action="store_true", help="print progress until it ends")
    start.add_argument("--poll-seconds", type=float, default=10.0)
    follow = command("follow", "print a test's progress until it ends", ShadowCommands.follow)
    follow.add_argument("execution", help="execution ARN or name")
    follow.add_argument("--poll-seconds", type=float, default=10.0)
    for name, approved in (("approve", True), ("reject", False)):
        sub = command(name, f"{name} a test waiting for approval", partial(ShadowCommands.decide, approved=approved))
        sub.add_argument("execution", help="execution ARN or name")
        sub.add_argument("--by", default=_whoami())
        sub.add_argument("--comment")
    abort = command("abort", "stop a running test; the endpoint returns to its snapshot", ShadowCommands.abort)
    abort.add_argument("execution", help="execution ARN or name")
    abort.add_argument("--by", default=_whoami())
    abort.add_argument("--cause")
    recover = command(
        "recover", "restore (or finish promoting) an ended test's endpoint and write its report", ShadowCommands.recover
    )
    recover.add_argument("execution", help="the test's execution ARN or name")
    recover.add_argument("--wait", action="store_true", help="wait for the recovery to end")
    recover.add_argument("--poll-seconds", type=float, default=10.0)
    status = command("status", "a test's status, and its approval token if it waits for one", ShadowCommands.status)
    status.add_argument("execution", help="execution ARN or name")
    report = command("report", "print a test's report (or --json, or --open the HTML page)", ShadowCommands.report)
    report.add_argument("execution", help="execution ARN or name")
    report.add_argument("--json", action="store_true")
    report.add_argument("--open", action="store_true", help="save the HTML report locally and open it")
    report.add_argument("--output-dir", default="shadowscale-reports")


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
