"""Step Functions quotas on the local cloud, counted as AWS counts them (localcloud/stepfunctions_gaps.py,
ExecutionQuotas): 25,000 history events, 262,144-byte payloads in UTF-8, and neither States.Runtime nor
States.DataLimitExceeded caught by States.ALL. Small state machines, real ASL on moto's interpreter, a
Lambda function of this test's own run in-process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from shadowscale.shadow_tests.execution_history import (
    CALLBACK_TASK_EVENTS,
    EXECUTION_EVENTS,
    HISTORY_LIMIT_CAUSE,
    PAYLOAD_LIMIT_BYTES,
    RETRY_EVENTS,
    STATE_EVENTS,
    TASK_EVENTS,
)
from shadowscale_localcloud.lambda_runtime import InProcessLambdaRuntime
from shadowscale_localcloud.platform import AcceleratedClock
from shadowscale_localcloud.stepfunctions_gaps import ExecutionQuotas, StepFunctionsOnTheClock, payload_bytes

REGION = "us-east-1"
FUNCTION = "quota-probe"
HANDLER = """
import pathlib


class Boom(Exception):
    pass


CALLS = {}


def lambda_handler(event, context):
    key = event.get("key", "")
    CALLS[key] = CALLS.get(key, 0) + 1
    if "token" in event:
        pathlib.Path(event["tokenFile"]).write_text(event["token"])
        return {}
    if CALLS[key] <= event.get("fails", 0):
        raise Boom(f"call {CALLS[key]} of {key}")
    return {"blob": "x" * event.get("size", 0)}
"""


@dataclass
class Machines:
    session: boto3.Session
    role: str
    function_arn: str
    runtime: InProcessLambdaRuntime
    gaps: StepFunctionsOnTheClock
    workdir: Path

    @property
    def sfn(self) -> Any:
        return self.session.client("stepfunctions")

    def task(self, next_state: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": self.function_arn, "Payload": payload},
            "ResultPath": None,
            "Next": next_state,
            **extra,
        }

    def run(self, name: str, definition: dict[str, Any], document: Any = None, *, timeout: float = 120) -> Run:
        machine = self.sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=self.role)
        started = self.sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"], input=json.dumps(document or {}, ensure_ascii=False)
        )
        return Run(self, started["executionArn"]).wait(timeout)


@dataclass
class Run:
    machines: Machines
    arn: str
    described: dict[str, Any] | None = None

    def wait(self, timeout: float) -> Run:
        deadline = time.monotonic() + timeout
        while True:
            self.described = self.machines.sfn.describe_execution(executionArn=self.arn)
            if self.described["status"] != "RUNNING":
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.arn} still RUNNING after {timeout} s")
            time.sleep(0.02)

    @property
    def status(self) -> tuple[str, str | None, str | None]:
        assert self.described is not None
        return self.described["status"], self.described.get("error"), self.described.get("cause")

    def history(self) -> list[dict[str, Any]]:
        pages = self.machines.sfn.get_paginator("get_execution_history").paginate(executionArn=self.arn)
        return [event for page in pages for event in page["events"]]


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    code = tmp_path_factory.mktemp("quota-probe")
    (code / "app.py").write_text(HANDLER)
    clock = AcceleratedClock()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        session = boto3.Session(region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
        role = session.client("iam").create_role(RoleName="machines", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function_arn = session.client("lambda").create_function(
            FunctionName=FUNCTION,
            Runtime="python3.13",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # code comes from `code`, in-process
        )["FunctionArn"]
        runtime = InProcessLambdaRuntime(code_dirs={FUNCTION: code}).install()
        gaps = StepFunctionsOnTheClock(advance=clock.sleep, sleep=clock.sleep, now=clock.now).install()
        try:
            yield Machines(session, role, function_arn, runtime, gaps, code)
        finally:
            gaps.uninstall()
            runtime.uninstall()


class TestHistoryEventsPerStateType:
    def test_given_every_state_type_we_use_when_run_then_moto_writes_the_events_aws_does(
        self, machines: Machines
    ) -> None:
        token_file = machines.workdir / "token"
        definition = {
            "StartAt": "P",
            "States": {
                "P": {"Type": "Pass", "Next": "C"},
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "W"}],
                    "Default": "W",
                },
                "W": {"Type": "Wait", "Seconds": 30, "Next": "T"},
                "T": machines.task("R", {"key": "t"}),
                "R": machines.task(
                    "K",
                    {"key": "r", "fails": 1},
                    Retry=[{"ErrorEquals": ["Boom"], "IntervalSeconds": 5, "MaxAttempts": 2}],
                ),
                "K": machines.task(
                    "A",
                    {"key": "k", "fails": 99},
                    Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "A"}],
                ),
                "A": {
                    **machines.task("S", {"token.$": "$$.Task.Token", "tokenFile": str(token_file)}),
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                },
                "S": {"Type": "Succeed"},
            },
        }
        approver = threading.Thread(target=self._approve, args=(machines, token_file), daemon=True)
        approver.start()
        run = machines.run("every-state", definition, {"x": 1})
        assert run.status[0] == "SUCCEEDED"
        retried = (*TASK_EVENTS[:1], *RETRY_EVENTS, *TASK_EVENTS[1:])
        caught = (*TASK_EVENTS[:3], "TaskFailed", TASK_EVENTS[-1])
        expected = [
            EXECUTION_EVENTS[0],
            *STATE_EVENTS["Pass"],
            *STATE_EVENTS["Choice"],
            *STATE_EVENTS["Wait"],
            *TASK_EVENTS,
            *retried,
            *caught,
            *CALLBACK_TASK_EVENTS,
            *STATE_EVENTS["Succeed"],
            EXECUTION_EVENTS[1],
        ]
        assert [event["type"] for event in run.history()] == expected

    def test_given_a_fail_state_when_run_then_it_writes_one_event_before_the_execution_fails(
        self, machines: Machines
    ) -> None:
        run = machines.run("fail-state", {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}})
        assert [event["type"] for event in run.history()] == [
            "ExecutionStarted",
            *STATE_EVENTS["Fail"],
            "ExecutionFailed",
        ]

    @staticmethod
    def _approve(machines: Machines, token_file: Path) -> None:
        deadline = time.monotonic() + 60
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        machines.sfn.send_task_success(taskToken=token_file.read_text(), output='{"approved": true}')


SPIN = {
    "StartAt": "Spin",
    "States": {
        "Spin": {"Type": "Pass", "Next": "Again?"},
        "Again?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.spin", "BooleanEquals": True, "Next": "Spin"}],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


class TestHistoryLimit:
    def test_given_a_loop_without_end_when_run_then_event_25000_is_the_states_runtime_failure(
        self, machines: Machines
    ) -> None:
        run = machines.run("spin-forever", SPIN, {"spin": True}, timeout=300)
        assert run.status == ("FAILED", "States.Runtime", HISTORY_LIMIT_CAUSE)
        history = run.history()
        assert len(history) == 25_000
        last, before = history[-1], history[-2]
        assert (last["id"], last["type"]) == (25_000, "ExecutionFailed")
        assert last["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": HISTORY_LIMIT_CAUSE}
        assert before["id"] == 24_999
        assert before["type"] in {"PassStateEntered", "PassStateExited", "ChoiceStateEntered", "ChoiceStateExited"}

    def test_given_a_short_loop_when_run_then_it_ends_as_written(self, machines: Machines) -> None:
        run = machines.run("spin-once", SPIN, {"spin": False})
        assert run.status[0] == "SUCCEEDED"

    def test_given_the_limit_hit_inside_a_task_with_catch_all_when_run_then_not_caught(
        self, machines: Machines
    ) -> None:
        # A smaller limit, so that the cut falls inside a task whose Catch names States.ALL.
        limit = 1 + len(TASK_EVENTS) + 3  # ExecutionStarted, the first task, 2 events into the second, the end
        definition = {
            "StartAt": "First",
            "States": {
                "First": machines.task("Second", {"key": "first"}),
                "Second": machines.task(
                    "Done",
                    {"key": "second"},
                    Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Done"}],
                ),
                "Done": {"Type": "Succeed"},
            },
        }
        quotas, machines.gaps.quotas.history_limit = machines.gaps.quotas, limit
        try:
            run = machines.run("cut-in-task", definition)
        finally:
            quotas.history_limit = ExecutionQuotas().history_limit
        assert run.status == ("FAILED", "States.Runtime", HISTORY_LIMIT_CAUSE)
        assert [event["type"] for event in run.history()][-2:] == ["TaskScheduled", "ExecutionFailed"]


def blob_of(size: int) -> dict[str, Any]:
    return {"blob": "x" * size}


class TestPayloadLimit:
    def test_given_a_task_result_over_256_kb_and_a_catch_all_when_run_then_the_execution_fails(
        self, machines: Machines
    ) -> None:
        definition = {
            "StartAt": "Big",
            "States": {
                "Big": {
                    **machines.task("Caught", {"key": "big", "size": 300_000}),
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Caught"}],
                },
                "Caught": {"Type": "Succeed"},
            },
        }
        run = machines.run("big-result", definition)
        assert run.status[:2] == ("FAILED", "States.DataLimitExceeded")

    def test_given_parameters_that_build_an_input_over_256_kb_when_run_then_failed_before_the_call(
        self, machines: Machines
    ) -> None:
        calls = len(machines.runtime.invocations)
        definition = {
            "StartAt": "Doubled",
            "States": {
                "Doubled": {
                    **machines.task("Done", {"a.$": "$.blob", "b.$": "$.blob"}),
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Done"}],
                },
                "Done": {"Type": "Succeed"},
            },
        }
        run = machines.run("doubled-input", definition, blob_of(140_000))  # 140 kB in, 280 kB after Parameters
        status, error, cause = run.status
        assert (status, error) == ("FAILED", "States.DataLimitExceeded")
        assert "Doubled" in (cause or "")
        assert len(machines.runtime.invocations) == calls

    @pytest.mark.parametrize(("extra", "status"), [(0, "SUCCEEDED"), (1, "FAILED")])
    def test_given_an_output_of_exactly_262144_bytes_when_run_then_allowed_and_one_more_is_not(
        self, machines: Machines, extra: int, status: str
    ) -> None:
        shape = {"b": "", "c": "", "d": ""}
        room = PAYLOAD_LIMIT_BYTES + extra - payload_bytes(shape)
        half, odd = divmod(room, 2)
        definition = {
            "StartAt": "Exact",
            "States": {
                "Exact": {"Type": "Pass", "Parameters": {"b.$": "$.blob", "c.$": "$.blob", "d": "x" * odd}, "End": True}
            },
        }
        run = machines.run(f"exact-{extra}", definition, blob_of(half))
        assert run.status[0] == status
        if status == "FAILED":
            assert run.status[1] == "States.DataLimitExceeded"

    def test_given_non_ascii_output_when_measured_then_utf8_bytes_count(self, machines: Machines) -> None:
        accented = {"blob": "é" * 120_000}  # 240,000 bytes of UTF-8; 720,000 as \\u escapes
        definition = {
            "StartAt": "Echo",
            "States": {"Echo": {"Type": "Pass", "Parameters": {"b.$": "$.blob"}, "End": True}},
        }
        run = machines.run("accented", definition, accented)
        assert run.status[0] == "SUCCEEDED"
