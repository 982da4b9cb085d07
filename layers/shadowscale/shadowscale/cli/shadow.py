"""`shadowscale shadow ...`: start a shadow test from a file, follow it, approve or reject it, abort it,
recover it, print or open its report. Everything goes through the deployed stack's outputs and public APIs, so the
same commands work against AWS and against the local cloud (`--endpoint-url`). The click options live in
cli.main; this module is what the commands do."""

from __future__ import annotations

import argparse
import json
import sys
import time
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shadowscale.cli.errors import ExitCode, NotFound
from shadowscale.cli.follow import ExecutionProgress, FollowView, cause_line
from shadowscale.cli.policy_wiring import DeployedOutputs
from shadowscale.shadow_tests.models import (
    GateResult,
    ShadowTestPlan,
    ShadowTestReport,
    lease_owner,
    parse_shadow_test_input,
)
from shadowscale.shadow_tests.records import DynamoShadowTestRecords
from shadowscale.shadow_tests.report_gates import interval_text
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

    def _describe_execution(self, execution_arn: str) -> dict[str, Any]:
        stepfunctions = self.client("stepfunctions")
        try:
            described: dict[str, Any] = stepfunctions.describe_execution(executionArn=execution_arn)
        except stepfunctions.exceptions.ExecutionDoesNotExist as exc:
            raise NotFound(f"no shadow test execution {execution_arn.rsplit(':', 1)[-1]!r} ({execution_arn})") from exc
        return described

    def _command_options(self) -> str:
        """The options this command was given that a printed command needs to reach the same stack."""
        given = [("--stack-name", self._args.stack_name), ("--region", self._args.region)]
        given.append(("--endpoint-url", self._args.endpoint_url))
        return " ".join(f"{flag} {value}" for flag, value in given if value)

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
        self._check_targets(request.endpoint_name, request.candidate.model_name)
        name = self._args.name or f"{request.endpoint_name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        started = self.client("stepfunctions").start_execution(
            stateMachineArn=self.outputs.ShadowTestStateMachineArn, name=name, input=json.dumps(document)
        )
        self._out(f"started {started['executionArn']}")
        if self._args.follow:
            return self._follow(started["executionArn"], name)
        options = self._command_options()
        self._out(f"follow it with: shadowscale shadow follow {name}" + (f" {options}" if options else ""))
        return 0

    def _check_targets(self, endpoint: str, model: str) -> None:
        """The endpoint and the candidate model exist, before an execution starts (and fails in its restore)."""
        sagemaker = self.client("sagemaker")
        region = sagemaker.meta.region_name
        for what, operation, parameters in (
            ("endpoint", "describe_endpoint", {"EndpointName": endpoint}),
            ("candidate model", "describe_model", {"ModelName": model}),
        ):
            try:
                getattr(sagemaker, operation)(**parameters)
            except sagemaker.exceptions.ClientError as exc:
                # SageMaker answers ValidationException "Could not find ..." for a missing endpoint or model.
                if exc.response.get("Error", {}).get("Code") != "ValidationException":
                    raise
                name = next(iter(parameters.values()))
                raise NotFound(f"{what} {name!r} not found in {region}; nothing was started") from exc

    def follow(self) -> int:
        return self._follow(self._execution_arn(self._args.execution), self._args.execution)

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        paginator = self.client("stepfunctions").get_paginator("get_execution_history")
        return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]

    def _follow(self, execution_arn: str, name: str) -> int:
        drawn: list[str] = []
        while True:
            described = self._describe_execution(execution_arn)
            progress = ExecutionProgress.from_history(self._history(execution_arn))
            if described["status"] != "RUNNING" and described.get("error"):
                # How the execution ended says more than a task error a Catch or Retry already handled.
                progress.failure = cause_line(described.get("error"), described.get("cause"))
                progress.failed_in = progress.failed_in or progress.state
            view = FollowView(
                execution=name,
                status=described["status"],
                progress=progress,
                now=datetime.now(UTC),
                command_options=self._command_options(),
            ).lines()
            if view != drawn:
                self._draw(view, drawn)
                drawn = view
            if described["status"] in TERMINAL:
                self._print_report_summary(execution_arn, described)
                return ExitCode.OK if described["status"] == "SUCCEEDED" else ExitCode.FAILED
            time.sleep(self._args.poll_seconds)

    def _draw(self, view: list[str], previous: list[str]) -> None:
        if previous and sys.stdout.isatty():
            sys.stdout.write(f"\x1b[{len(previous)}F\x1b[J")  # redraw in place, as `kubectl ... --watch` does
        self._out("\n".join(view))

    def _record(self, execution_arn: str) -> tuple[dict[str, Any], str | None]:
        described = self._describe_execution(execution_arn)
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
            print(
                f"error: {self._args.execution} is {described['status']} and not waiting for approval",
                file=sys.stderr,
            )
            return ExitCode.FAILED
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
        described = self._describe_execution(execution_arn)
        if described["status"] == "RUNNING":
            print(f"error: {execution_arn} is still running; `shadowscale shadow abort` it first", file=sys.stderr)
            return ExitCode.FAILED
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
                why = f": {cause_line(ended.get('error'), ended.get('cause'))}" if ended.get("cause") else ""
                self._out(f"recovery {ended['status']}{why}")
                return 0 if ended["status"] == "SUCCEEDED" else 1
            time.sleep(self._args.poll_seconds)

    def status(self) -> int:
        execution_arn = self._execution_arn(self._args.execution)
        described, token = self._record(execution_arn)
        waiting = described["status"] == "RUNNING" and token is not None
        if self._args.output == "json":
            document = {
                "executionArn": execution_arn,
                "status": described["status"],
                "waitingForApproval": waiting,
                "taskToken": token if waiting else None,
                "error": described.get("error"),
                "cause": cause_line(described.get("error"), described.get("cause")) if described.get("error") else None,
            }
            self._out(json.dumps(document, indent=2, sort_keys=True))
            return 0
        self._out(f"{execution_arn}: {described['status']}")
        if described.get("error"):
            self._out(f"  {cause_line(described.get('error'), described.get('cause'))}")
        if waiting:
            options = self._command_options()
            options = f" {options}" if options else ""
            self._out("waiting for approval; decide with one of:")
            self._out(f'  shadowscale shadow approve {self._args.execution}{options} --comment "why"')
            self._out(f'  shadowscale shadow reject {self._args.execution}{options} --comment "why"')
            self._out(f"task token (for aws stepfunctions send-task-success): {token}")
        return 0

    def report(self) -> int:
        execution_arn = self._execution_arn(self._args.execution)
        described = self._describe_execution(execution_arn)
        endpoint = json.loads(described.get("input") or "{}").get("endpointName", "unknown")
        test_id = ShadowTestPlan.test_id_of(execution_arn)
        key = f"reports/{endpoint}/{test_id}/report"
        if described["status"] == "RUNNING":
            key = f"{key}-pending"  # the interim report written when it asked for approval, if it has
        if self._args.open_page:
            return self._open(f"{key}.html", test_id, described)
        body = self._report_object(f"{key}.json")
        if body is None:
            print(f"error: {self._no_report_yet(execution_arn, described)}", file=sys.stderr)
            return ExitCode.OK if described["status"] == "RUNNING" else ExitCode.NOT_FOUND
        document = json.loads(body)
        self._out(json.dumps(document, indent=2) if self._args.output == "json" else _summary(document))
        return 0

    def _report_object(self, key: str) -> bytes | None:
        s3 = self.client("s3")
        try:
            body: bytes = s3.get_object(Bucket=self.outputs.DataBucketName, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return body

    def _open(self, key: str, test_id: str, described: dict[str, Any]) -> int:
        body = self._report_object(key)
        if body is None:
            print(f"error: {self._no_report_yet(described['executionArn'], described)}", file=sys.stderr)
            return ExitCode.NOT_FOUND
        folder = Path(self._args.output_dir) if self._args.output_dir else report_cache_dir()
        target = folder / f"{test_id}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        self._out(f"report saved to {target}")
        webbrowser.open(target.resolve().as_uri())
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
        body = self._report_object(key)
        if body is None:
            self._out(f"report: s3://{self.outputs.DataBucketName}/{key} (not written yet)")
            return
        self._out(_summary(json.loads(body)))


def report_cache_dir() -> Path:
    """Where `report --open` keeps pages: $XDG_CACHE_HOME/shadowscale/reports (~/.cache/...), not the CWD."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shadowscale" / "reports"


def _summary(report: dict[str, Any]) -> str:
    lines = [
        f"{report['endpoint']}: {report['outcome'].upper()} (verdict: {report.get('verdict') or '-'})",
        f"  {report['reason']}",
    ]
    evaluation = report.get("evaluation") or {}
    if evaluation:
        lines.append(f"  gates as evaluated at {evaluation.get('at')}:")
    for gate in evaluation.get("gates", []):
        estimate = interval_text(GateResult.model_validate(gate)) or "-"  # "0.981 [0.972, 0.988] 95 % Wilson"
        threshold = _or_dash(gate.get("threshold"))
        lines.append(f"  {gate['status']:>17}  {gate['name']:<24} observed={estimate} threshold={threshold}")
    pairs = pairs_line(ShadowTestReport.model_validate(report))
    if pairs is not None:
        lines.append(f"  {pairs[0].lower()}{pairs[1:]}")
        if report.get("diffNote"):
            lines.append(f"    {report['diffNote']}")
    lines.append(f"  report: {report.get('htmlUri')}")
    return "\n".join(lines)


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)
