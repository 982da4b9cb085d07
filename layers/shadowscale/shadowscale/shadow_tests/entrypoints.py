"""Entry point of the shadow-test tasks function: one task of the shadow-test state machine or of the
recovery state machine (which restores after an execution that stopped without restoring: abort,
timeout, a failed restore)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ConnectionError, HTTPClientError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from shadowscale.shadow_tests.lifecycle import ShadowTestSteps
from shadowscale.shadow_tests.models import MachineState, RecoveryRequest
from shadowscale.shadow_tests.recovery import ShadowTestRecovery
from shadowscale.shadow_tests.reports import ShadowTestReports
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

    model_config = ConfigDict(populate_by_name=True, frozen=True, defer_build=True)

    arn: str = Field(alias="Id")
    start_time: datetime = Field(alias="StartTime")


class TaskRequest(BaseModel):
    """What every task state sends: its name, the machine's state, the execution (and a task token)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid", defer_build=True)

    task: TaskName
    state: dict[str, JsonValue]
    execution: ExecutionContext
    token: str | None = None


def _dump(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


class ShadowTestEntryPoints:
    """Each task to the one that does it: the steps, the report, or the recovery."""

    def __init__(self, steps: ShadowTestSteps, reports: ShadowTestReports, recovery: ShadowTestRecovery) -> None:
        self._steps = steps
        self._reports = reports
        self._recovery = recovery

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
        logger.append_keys(task=request.task, execution=request.execution.arn)
        metrics.add_metric(name="ShadowTestTask", unit="Count", value=1)
        if request.task == "recover":
            try:
                recovery = RecoveryRequest.model_validate(request.state.get("recovery"))
            except ValidationError as exc:
                raise InvalidEvent(f"not a recovery request: {field_problems(exc)}") from exc
            started = self._recovery.begin(recovery, recovery_arn=request.execution.arn)
            dumped: dict[str, Any] = started.model_dump(mode="json", by_alias=True, exclude_none=True)
            return dumped
        if request.task == "validate":
            plan = self._steps.validate(request.state, execution_arn=request.execution.arn)
            return {"plan": _dump(plan)}  # the raw input stays behind: everything else reads the plan
        if request.task == "report" and not isinstance(request.state.get("plan"), dict):
            # The input never validated: report it, next to what was sent, without a plan.
            failure = request.state.get("failure")
            state = MachineState(failure=failure if isinstance(failure, dict) else None)
            ref = self._reports.report(state, request.state, execution_arn=request.execution.arn)
            return {**request.state, "report": _dump(ref)}
        state = MachineState.model_validate(request.state)
        if state.plan is None:
            raise InvalidEvent(f"task {request.task}: the state has no plan")
        key, result = self._run(request, state)
        return {**request.state, key: result}

    def _run(self, request: TaskRequest, state: MachineState) -> tuple[str, JsonValue]:
        steps, reports, plan, snapshot = self._steps, self._reports, state.plan, state.snapshot
        assert plan is not None
        match request.task:
            case "dry_run":  # the endpoint read as the snapshot would, and not recorded: nothing is changed
                found = steps.snapshot(plan, save=False)
                return "report", _dump(reports.dry_run(plan, found, steps.guarded_promotion_plan(plan, found)))
            case "lock":
                steps.lock(plan)
                return "lock", {"owner": plan.owner}
            case "snapshot":
                return "snapshot", _dump(steps.snapshot(plan))
            case "prepare":
                steps.prepare(plan, _required(snapshot, "snapshot"))
                return "prepared", {"shadowConfig": plan.shadow_config_name}
            case "start_shadow":
                return "ready", _dump(steps.start_shadow(plan))
            case "check_ready":
                return "ready", _dump(steps.check_ready(plan, _required(state.ready, "ready")))
            case "evaluate":
                return "progress", _dump(steps.evaluate(plan, _required(snapshot, "snapshot"), state.progress))
            case "set_sampling":
                progress = _required(state.progress, "progress")
                return "ready", _dump(steps.set_sampling(plan, _required(snapshot, "snapshot"), progress))
            case "decide":
                return "decision", _dump(steps.decide(plan, _required(state.progress, "progress")))
            case "request_approval":
                reports.request_approval(state, _required(request.token, "token"))
                return "approvalRequested", True
            case "promote":
                return "ready", _dump(steps.promote(plan, _required(snapshot, "snapshot")))
            case "restore":
                return "ready", _dump(steps.restore(plan, snapshot, state.ready))
            case "finalize":
                return "finalized", _dump(steps.finalize(plan, snapshot))
            case "report":
                return "report", _dump(reports.report(state))
            case "notified":
                reports.mark_notified(plan, request.execution.arn)
                return "notified", True
        raise InvalidEvent(f"unknown task {request.task!r}")


def _required[T](value: T | None, name: str) -> T:
    if value is None:
        raise InvalidEvent(f"the state has no {name}")
    return value
