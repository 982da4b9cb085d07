"""Entry points of the shadow-test functions: a state-machine task, and the cleanup after an execution
that stopped without restoring (abort, timeout, a failed restore)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from shadowscale.domain.shadow_lifecycle import ShadowLifecycle
from shadowscale.errors import InvalidEvent
from shadowscale.models.shadow_test import MachineState
from shadowscale.observability import logger, metrics

TaskName = Literal[
    "validate",
    "dry_run",
    "lock",
    "snapshot",
    "prepare",
    "start_shadow",
    "check_ready",
    "evaluate",
    "set_sampling",
    "decide",
    "request_approval",
    "promote",
    "restore",
    "finalize",
    "report",
]


class ExecutionContext(BaseModel):
    """`$$.Execution.Id` and `$$.Execution.StartTime` from the state machine's context object."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    arn: str = Field(alias="Id")
    start_time: datetime = Field(alias="StartTime")


class TaskRequest(BaseModel):
    """What every task state sends: its name, the machine's state, the execution (and a task token)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    task: TaskName
    state: dict[str, JsonValue]
    execution: ExecutionContext
    token: str | None = None


class ExecutionStatusChange(BaseModel):
    """The `detail` of EventBridge's "Step Functions Execution Status Change"."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    status: Literal["FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED", "RUNNING", "PENDING_REDRIVE"]
    input: str | None = None


def _dump(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


class ShadowTestEntryPoints:
    def __init__(self, lifecycle: ShadowLifecycle, recovery_budget_seconds: float) -> None:
        self._lifecycle = lifecycle
        self._recovery_budget_seconds = recovery_budget_seconds

    def task(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run one task and return the machine's state with the task's result under its key."""
        try:
            request = TaskRequest.model_validate(event)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidEvent(f"not a shadow-test task request: {error['loc']}: {error['msg']}") from exc
        lifecycle = self._lifecycle
        logger.append_keys(task=request.task, execution=request.execution.arn)
        metrics.add_metric(name="ShadowTestTask", unit="Count", value=1)
        if request.task == "validate":
            plan = lifecycle.validate(request.state, execution_arn=request.execution.arn)
            return {"plan": _dump(plan)}  # the raw input stays behind: everything else reads the plan
        if request.task == "report" and not isinstance(request.state.get("plan"), dict):
            # The input never validated: report it, next to what was sent, without a plan.
            failure = request.state.get("failure")
            state = MachineState(failure=failure if isinstance(failure, dict) else None)
            ref = lifecycle.report(state, request.state, execution_arn=request.execution.arn)
            return {**request.state, "report": _dump(ref)}
        state = MachineState.model_validate(request.state)
        if state.plan is None:
            raise InvalidEvent(f"task {request.task}: the state has no plan")
        key, result = self._run(request, state)
        return {**request.state, key: result}

    def _run(self, request: TaskRequest, state: MachineState) -> tuple[str, JsonValue]:
        lifecycle, plan, snapshot = self._lifecycle, state.plan, state.snapshot
        assert plan is not None
        match request.task:
            case "dry_run":
                return "report", _dump(lifecycle.dry_run(plan))
            case "lock":
                lifecycle.lock(plan)
                return "lock", {"owner": plan.owner}
            case "snapshot":
                return "snapshot", _dump(lifecycle.snapshot(plan))
            case "prepare":
                lifecycle.prepare(plan, _required(snapshot, "snapshot"))
                return "prepared", {"shadowConfig": plan.shadow_config_name}
            case "start_shadow":
                return "ready", _dump(lifecycle.start_shadow(plan))
            case "check_ready":
                return "ready", _dump(lifecycle.check_ready(plan, _required(state.ready, "ready")))
            case "evaluate":
                return "progress", _dump(lifecycle.evaluate(plan, _required(snapshot, "snapshot"), state.progress))
            case "set_sampling":
                progress = _required(state.progress, "progress")
                return "ready", _dump(lifecycle.set_sampling(plan, _required(snapshot, "snapshot"), progress))
            case "decide":
                return "decision", _dump(lifecycle.decide(plan, _required(state.progress, "progress")))
            case "request_approval":
                lifecycle.request_approval(state, _required(request.token, "token"))
                return "approvalRequested", True
            case "promote":
                return "ready", _dump(lifecycle.promote(plan, _required(snapshot, "snapshot")))
            case "restore":
                return "ready", _dump(lifecycle.restore(plan, snapshot, state.ready))
            case "finalize":
                return "finalized", _dump(lifecycle.finalize(plan, snapshot))
            case "report":
                return "report", _dump(lifecycle.report(state))
        raise InvalidEvent(f"unknown task {request.task!r}")

    def cleanup(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            change = ExecutionStatusChange.model_validate(event.get("detail"))
        except ValidationError as exc:
            raise InvalidEvent(f"not a Step Functions status change: {exc.errors()[0]['loc']}") from exc
        if change.status not in {"FAILED", "TIMED_OUT", "ABORTED"}:
            return {"outcome": "ignored", "status": change.status}
        try:
            raw_input: object = json.loads(change.input or "null")
        except ValueError:
            raw_input = None
        outcome = self._lifecycle.recover(
            change.execution_arn, change.status, raw_input, budget_seconds=self._recovery_budget_seconds
        )
        logger.info(
            "shadow test cleanup",
            extra={"execution": change.execution_arn, "status": change.status, "outcome": outcome},
        )
        metrics.add_metric(name="ShadowTestCleanup", unit="Count", value=1)
        return {"outcome": outcome, "status": change.status}


def _required[T](value: T | None, name: str) -> T:
    if value is None:
        raise InvalidEvent(f"the state has no {name}")
    return value
