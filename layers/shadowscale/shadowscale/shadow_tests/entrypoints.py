"""Entry point of the shadow-test tasks function: one task of the shadow-test state machine or of the
recovery state machine (which restores after an execution that stopped without restoring: abort,
timeout, a failed restore)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ConnectionError, HTTPClientError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from shadowscale.shadow_tests.lifecycle import ShadowLifecycle
from shadowscale.shadow_tests.models import MachineState, RecoveryRequest
from shadowscale.shared.errors import AwsServiceUnavailable, InvalidEvent
from shadowscale.shared.observability import logger, metrics
from shadowscale.shared.validation import field_problems

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
    "notified",
    "recover",
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


def _dump(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


class ShadowTestEntryPoints:
    def __init__(self, lifecycle: ShadowLifecycle) -> None:
        self._lifecycle = lifecycle

    def task(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run one task and return the machine's state with the task's result under its key."""
        try:
            request = TaskRequest.model_validate(event)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidEvent(f"not a shadow-test task request: {error['loc']}: {error['msg']}") from exc
        try:
            return self._task(request)
        except (ConnectionError, HTTPClientError) as exc:
            # The SDK's own retries ran out on the network: as retryable as a 5xx.
            raise AwsServiceUnavailable(f"task {request.task}: {type(exc).__name__}: {exc}") from exc

    def _task(self, request: TaskRequest) -> dict[str, Any]:
        lifecycle = self._lifecycle
        logger.append_keys(task=request.task, execution=request.execution.arn)
        metrics.add_metric(name="ShadowTestTask", unit="Count", value=1)
        if request.task == "recover":
            try:
                recovery = RecoveryRequest.model_validate(request.state.get("recovery"))
            except ValidationError as exc:
                raise InvalidEvent(f"not a recovery request: {field_problems(exc)}") from exc
            started = lifecycle.begin_recovery(recovery, recovery_arn=request.execution.arn)
            dumped: dict[str, Any] = started.model_dump(mode="json", by_alias=True, exclude_none=True)
            return dumped
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
            case "notified":
                lifecycle.mark_notified(plan, request.execution.arn)
                return "notified", True
        raise InvalidEvent(f"unknown task {request.task!r}")


def _required[T](value: T | None, name: str) -> T:
    if value is None:
        raise InvalidEvent(f"the state has no {name}")
    return value
