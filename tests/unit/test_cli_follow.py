"""`shadowscale shadow follow`'s view, built from an execution history like Step Functions returns it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shadowscale.cli.follow import ExecutionProgress, FollowView, bar, cause_line
from shadowscale.shadow_tests.models import (
    Evaluation,
    GateResult,
    ShadowTestPlan,
    VariantStats,
    parse_shadow_test_input,
)

REPO = Path(__file__).resolve().parents[2]
ARN = "arn:aws:states:us-east-1:123456789012:execution:shadowscale-dev-shadow-test:fraud-v2-try-1"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def plan() -> ShadowTestPlan:
    request = parse_shadow_test_input(json.loads((REPO / "events" / "shadow_test.json").read_text()))
    return ShadowTestPlan.create(
        request, execution_arn=ARN, started_at=T0, data_bucket="bucket", default_topic_arn="arn:aws:sns:x:1:t"
    )


def evaluation(at: datetime, step_index: int = 1, step_started_at: datetime = T0) -> Evaluation:
    return Evaluation(
        at=at,
        step_index=step_index,
        step_started_at=step_started_at,
        window_start=step_started_at,
        production=VariantStats(invocations=900),
        shadow=VariantStats(invocations=90),
        gates=(
            GateResult(name="latency.p99Ratio", status="pass", observed=1.12, threshold=1.5),
            GateResult(name="errorRates.max5xxDelta", status="fail", observed=0.004, threshold=0.002),
            GateResult(name="utilization.maxCpuPercent", status="not-configured"),
        ),
        verdict="fail",
        next="bake",
        wait_seconds=900,
    )


def entered(name: str, at: datetime, document: dict[str, Any] | None = None, kind: str = "Task") -> dict[str, Any]:
    return {
        "type": f"{kind}StateEntered",
        "timestamp": at,
        "stateEnteredEventDetails": {"name": name, "input": json.dumps(document or {})},
    }


def exited(name: str, at: datetime, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "TaskStateExited",
        "timestamp": at,
        "stateExitedEventDetails": {"name": name, "output": json.dumps(document)},
    }


def state(progress: Evaluation | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"plan": plan().model_dump(mode="json", by_alias=True)}
    if progress is not None:
        document["progress"] = progress.model_dump(mode="json", by_alias=True)
    return document


def test_given_a_test_baking_its_second_step_when_viewed_then_step_sampling_bake_gates_and_bar_show() -> None:
    # GIVEN the second ramp step (50 %, 120 min) started at 10:00, evaluated at 10:45, now baking 15 min
    evaluated = evaluation(T0 + timedelta(minutes=45))
    history = [
        entered("Validate", T0 - timedelta(minutes=5)),
        entered("Evaluate", T0 + timedelta(minutes=44), state()),
        exited("Evaluate", T0 + timedelta(minutes=45), state(evaluated)),
        entered("Progress?", T0 + timedelta(minutes=45), state(evaluated), kind="Choice"),
        entered("Bake", T0 + timedelta(minutes=45), state(evaluated), kind="Wait"),
    ]
    # WHEN drawn five minutes into the bake
    lines = FollowView(
        execution="fraud-v2-try-1",
        status="RUNNING",
        progress=ExecutionProgress.from_history(history),
        now=T0 + timedelta(minutes=50),
    ).lines()
    text = "\n".join(lines)
    # THEN it says where it is, which step of how many at what sampling, and the time left in the step's bake
    assert lines[0] == "fraud-v2-try-1: RUNNING  Bake since 10:45:00"
    assert "  states: Validate, Evaluate, Bake" in lines  # Choice states are not steps a person cares about
    assert "step 2 of 3: sampling 50%, bake 120 min, 1h15m left at the last evaluation" in text
    # ... a bar for the wait (5 of 15 minutes)
    assert f"Bake {bar(300, 900)} 10m00s left of 15m00s" in text
    assert "[########................]  33%" in text
    # ... and each configured gate's latest value against its threshold
    assert "pass              latency.p99Ratio                   1.12 vs 1.5" in text
    assert "fail              errorRates.max5xxDelta            0.004 vs 0.002" in text
    assert "maxCpuPercent" not in text
    assert "verdict so far: fail" in text


def test_given_a_test_awaiting_approval_when_viewed_then_the_exact_commands_are_printed() -> None:
    history = [entered("AwaitApproval", T0, state(evaluation(T0)))]
    lines = FollowView(
        execution="fraud-v2-try-1",
        status="RUNNING",
        progress=ExecutionProgress.from_history(history),
        now=T0 + timedelta(hours=1),
        command_options="--stack-name shadowscale-local --endpoint-url http://localhost:5000",
    ).lines()
    assert (
        "    shadowscale shadow approve fraud-v2-try-1 --stack-name shadowscale-local "
        '--endpoint-url http://localhost:5000 --comment "why"'
    ) in lines
    assert (
        "    shadowscale shadow reject fraud-v2-try-1 --stack-name shadowscale-local "
        '--endpoint-url http://localhost:5000 --comment "why"'
    ) in lines
    # the approval timeout (1440 min) is the wait's length
    assert any(line.startswith("  AwaitApproval [#") and "23h00m left of 24h00m" in line for line in lines)


def test_given_a_lambda_failure_when_viewed_then_one_line_with_its_type_and_message_and_no_stack_trace() -> None:
    cause = json.dumps(
        {
            "errorMessage": "endpoint 'fraud-detector' is Updating",
            "errorType": "EndpointBusy",
            "stackTrace": ['  File "/var/task/app.py", line 12, in handler\n'],
        }
    )
    history = [
        entered("Snapshot", T0, state()),
        {
            "type": "LambdaFunctionFailed",
            "timestamp": T0,
            "lambdaFunctionFailedEventDetails": {"error": "EndpointBusy", "cause": cause},
        },
    ]
    lines = FollowView(execution="t", status="FAILED", progress=ExecutionProgress.from_history(history), now=T0).lines()
    assert "  failed in Snapshot: EndpointBusy: endpoint 'fraud-detector' is Updating" in lines
    assert not any("File" in line or "stackTrace" in line for line in lines)


def test_cause_line_reads_plain_causes_and_fail_states() -> None:
    assert cause_line("RestoreFailed", "the endpoint could not be restored\nmore detail") == (
        "RestoreFailed: the endpoint could not be restored"
    )
    assert cause_line("States.Timeout", None) == "States.Timeout"
    assert cause_line("Aborted", '{"not": "lambda"}') == "Aborted"


def test_given_a_task_error_that_a_retry_got_past_when_viewed_then_it_is_not_shown_as_the_failure() -> None:
    history = [
        entered("StartShadow", T0, state()),
        {
            "type": "TaskFailed",
            "timestamp": T0,
            "taskFailedEventDetails": {"error": "EndpointConfigNotVisible", "cause": "not visible yet"},
        },
        {"type": "TaskSucceeded", "timestamp": T0 + timedelta(seconds=5), "taskSucceededEventDetails": {}},
        exited("StartShadow", T0 + timedelta(seconds=5), state()),
        entered("ShadowWait", T0 + timedelta(seconds=5), state(), kind="Wait"),
    ]
    progress = ExecutionProgress.from_history(history)
    assert progress.failure is None
    lines = FollowView(execution="t", status="RUNNING", progress=progress, now=T0).lines()
    assert not any("EndpointConfigNotVisible" in line for line in lines)


def test_given_an_error_still_standing_while_running_when_viewed_then_it_is_the_last_error() -> None:
    history = [
        entered("Restore", T0, state()),
        {"type": "TaskFailed", "timestamp": T0, "taskFailedEventDetails": {"error": "EndpointBusy", "cause": "busy"}},
    ]
    lines = FollowView(
        execution="t", status="RUNNING", progress=ExecutionProgress.from_history(history), now=T0
    ).lines()
    assert "  last error in Restore: EndpointBusy: busy" in lines


def test_given_an_aborted_execution_when_viewed_then_the_abort_cause_is_the_line() -> None:
    history = [
        entered("Bake", T0, state(), kind="Wait"),
        {
            "type": "ExecutionAborted",
            "timestamp": T0,
            "executionAbortedEventDetails": {"error": "Aborted", "cause": "wrong candidate"},
        },
    ]
    lines = FollowView(
        execution="t", status="ABORTED", progress=ExecutionProgress.from_history(history), now=T0
    ).lines()
    assert "  aborted in Bake: Aborted: wrong candidate" in lines
