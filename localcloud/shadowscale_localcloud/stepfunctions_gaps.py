"""What moto's Step Functions interpreter lacks for the shadow test, filled in. Targets moto==5.2.5.

moto (run with `execute_state_machine`) waits in wall time: a Wait state of a one-hour bake would take an
hour, and Retry intervals sleep for real. It also never emits the EventBridge "Step Functions Execution
Status Change" events that the cleanup function listens to. Installed, this module makes:
- Wait states pass on the local cloud's clock: the clock advances by the wait, and everything due in
  that time (schedules, queue deliveries, simulated traffic) happens during it;
- Retry intervals pass on the clock without delivering anything (nothing else runs in a retry);
- every execution that ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) emits its status-change event;
- the interpreter reads the time from the clock: execution start and stop dates, history event
  timestamps, `$$.Execution.StartTime`, `$$.State.EnteredTime` and timestamp Waits are on the clock the
  metrics and the functions use (AWS has one clock: HistoryEvent's timestamp is when the event occurred),
  so a report's timeline and its charts line up;
- a test can `hold_waits()` to stop executions at their next Wait state (to act on a running test,
  e.g. abort it mid-bake) and `release_waits()` to let them go on;
- the execution quotas hold as AWS documents them (ExecutionQuotas, below).

ExecutionQuotas: what moto 5.2.5's interpreter does not enforce of Step Functions' quotas, counted as AWS
counts them (sources: shadowscale/domain/execution_history.py, which also holds the per-state event table):
- history: an execution has at most 25,000 events. moto writes, per state type, the very events AWS does
  (Task 5, `.waitForTaskToken` Task 6, each retry 3, Choice/Wait/Pass/Succeed 2, Fail 1, the execution 2:
  tests/integration/test_stepfunctions_quotas.py checks them against that table), so each event moto
  publishes counts one. When an execution holds 24,999 events and would write another, it fails instead:
  event 25,000 is ExecutionFailed with `States.Runtime` and "The execution reached the maximum number of
  history events (25000)." Child executions of a Distributed Map have histories of their own.
- payloads: a state's input after Parameters, a task's result and a state's output hold at most 262,144
  bytes, measured as compact JSON in UTF-8 (moto stops at 262,143, counts non-ASCII as \\u escapes, and
  never measures the input after Parameters); more fails the state with `States.DataLimitExceeded`.
- neither `States.DataLimitExceeded` nor `States.Runtime` is caught or retried by `States.ALL` (or
  `States.TaskFailed`); moto's catchers take both. Naming the error itself still matches, as in moto.
"""

from __future__ import annotations

import datetime as datetime_module
import importlib
import json
import threading
import types
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self, cast

import moto
from shadowscale.shadow_tests.execution_history import HISTORY_EVENT_LIMIT, HISTORY_LIMIT_CAUSE, PAYLOAD_LIMIT_BYTES

from shadowscale_localcloud.resources import ACCOUNT, REGION

TARGET_MOTO_VERSION = "5.2.5"


def _millis(moment: Any) -> int | None:  # noqa: ANN401
    if isinstance(moment, datetime):
        return int(moment.timestamp() * 1000)
    return None


def status_change_event(execution: Any, now: datetime) -> dict[str, Any]:  # noqa: ANN401
    """The event EventBridge carries when an execution ends, shaped as AWS sends it."""
    status = str(execution.status)
    output = execution.output if status == "SUCCEEDED" else None
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _millis(execution.start_date),
            "stopDate": _millis(execution.stop_date),
            "input": execution.execution_input,
            "output": output if isinstance(output, str) or output is None else json.dumps(output),
            "error": execution.error,
            "cause": execution.cause,
        },
    }


def payload_bytes(value: Any) -> int:  # noqa: ANN401  (any JSON value)
    """A payload's size as Step Functions measures it: its JSON, compact, as UTF-8 bytes."""
    from moto.stepfunctions.parser.asl.utils.encoding import _DateTimeEncoder

    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, cls=_DateTimeEncoder, separators=(",", ":"), ensure_ascii=False)
    )
    return len(text.encode("utf-8"))


class HistoryLimitReached(Exception):  # moto turns it into the execution's failure, as AWS's States.Runtime
    """The execution would write its 25,000th event other than its last."""


# The events an execution may still write as its last (the 25,000th is then the failure itself).
_ENDINGS = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
# The errors `States.ALL` and `States.TaskFailed` do not match ("Handling errors in Step Functions workflows").
_UNCATCHABLE = ("States.DataLimitExceeded", "States.Runtime")


@dataclass
class ExecutionQuotas:
    """The history and payload quotas of Standard executions, installed into moto's interpreter."""

    history_limit: int = HISTORY_EVENT_LIMIT
    payload_limit: int = PAYLOAD_LIMIT_BYTES
    _events: weakref.WeakKeyDictionary[Any, int] = field(default_factory=weakref.WeakKeyDictionary)
    _cut: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _originals: dict[str, Any] = field(default_factory=dict)

    def events(self, manager: Any) -> int:  # noqa: ANN401
        """Events counted so far in the history of the execution `manager` (moto's EventManager) records."""
        return self._events.get(manager, 0)

    def install(self) -> Self:
        if self._originals:
            return self
        from moto.stepfunctions.parser import quotas as moto_quotas
        from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
        from moto.stepfunctions.parser.asl.component.program.program import Program
        from moto.stepfunctions.parser.asl.component.state import state as state_module
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task, state_task_lambda
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

        quota_modules = (moto_quotas, state_module, state_task_lambda, state_task_service)
        self._originals = {
            "add_event": EventManager.add_event,
            "program_body": Program._eval_body,
            "error_equals": error_equals_decl.ErrorEqualsDecl._eval_body,
            "parameters": state_task.StateTask._eval_parameters,
            "quota_modules": [(module, module.is_within_size_quota) for module in quota_modules],
        }
        limits = self
        original_add = self._originals["add_event"]
        original_body = self._originals["program_body"]
        original_equals = self._originals["error_equals"]
        original_parameters = self._originals["parameters"]

        def add_event(
            manager: object,
            context: object,
            event_type: object,
            event_details: object = None,
            timestamp: object = None,
            update_source_event_id: bool = True,
        ) -> int:
            name = str(getattr(event_type, "value", event_type))  # a str-valued Enum
            with limits._lock:
                count = limits._events.get(manager, 0)
                if name not in _ENDINGS and count >= limits.history_limit - 1:
                    limits._cut.add(manager)
                    raise HistoryLimitReached(HISTORY_LIMIT_CAUSE)
                limits._events[manager] = count + 1
            if name == "ExecutionFailed" and manager in limits._cut:
                event_details = {"executionFailedEventDetails": limits._history_failure()}
            return int(original_add(manager, context, event_type, event_details, timestamp, update_source_event_id))

        def program_body(program: Any, env: Any) -> None:  # noqa: ANN401
            original_body(program, env)
            if env.event_manager in limits._cut:  # the execution's own error, as DescribeExecution shows it
                env.set_error(limits._history_failure())

        def error_equals(declaration: Any, env: Any) -> None:  # noqa: ANN401
            error = env.stack[-1]
            named = getattr(error, "error_name", None)
            if named in _UNCATCHABLE and not any(
                getattr(n, "error_name", None) == named for n in declaration.error_names
            ):
                env.stack.pop()
                env.stack.append(False)
                return
            original_equals(declaration, env)

        def parameters(task: Any, env: Any) -> Any:  # noqa: ANN401
            evaluated = original_parameters(task, env)
            size = payload_bytes(evaluated)
            if size > limits.payload_limit:
                raise limits._data_limit(env, task.name, size)
            return evaluated

        setattr(EventManager, "add_event", add_event)  # noqa: B010
        setattr(Program, "_eval_body", program_body)  # noqa: B010
        setattr(error_equals_decl.ErrorEqualsDecl, "_eval_body", error_equals)  # noqa: B010
        setattr(state_task.StateTask, "_eval_parameters", parameters)  # noqa: B010
        for module, _ in self._originals["quota_modules"]:
            setattr(module, "is_within_size_quota", lambda value: payload_bytes(value) <= limits.payload_limit)  # noqa: B010
        return self

    def uninstall(self) -> None:
        if not self._originals:
            return
        from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
        from moto.stepfunctions.parser.asl.component.program.program import Program
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

        setattr(EventManager, "add_event", self._originals["add_event"])  # noqa: B010
        setattr(Program, "_eval_body", self._originals["program_body"])  # noqa: B010
        setattr(error_equals_decl.ErrorEqualsDecl, "_eval_body", self._originals["error_equals"])  # noqa: B010
        setattr(state_task.StateTask, "_eval_parameters", self._originals["parameters"])  # noqa: B010
        for module, original in self._originals["quota_modules"]:
            setattr(module, "is_within_size_quota", original)  # noqa: B010
        self._originals = {}

    @staticmethod
    def _history_failure() -> Any:  # noqa: ANN401
        from moto.stepfunctions.parser.api import ExecutionFailedEventDetails

        return ExecutionFailedEventDetails(error="States.Runtime", cause=HISTORY_LIMIT_CAUSE)

    def _data_limit(self, env: Any, state: str, size: int) -> Exception:  # noqa: ANN401
        from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
            FailureEventException,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType,
        )

        kind = StatesErrorNameType.StatesStatesDataLimitExceeded
        cause = (
            f"The input of state '{state}' after Parameters is {size} bytes, over the {self.payload_limit}-byte"
            " payload quota."
        )
        return FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=kind),
                event_type=HistoryEventType.TaskFailed,
                # moto's EventDetails TypedDict is total; its own code passes one key, as here.
                event_details=cast(
                    Any, {"taskFailedEventDetails": TaskFailedEventDetails(error=kind.to_name(), cause=cause)}
                ),
            )
        )


# moto's Step Functions modules that read `datetime.datetime.now()`, each given a `datetime` whose now is the clock's.
_CLOCK_READERS = (
    "moto.stepfunctions.parser.models",
    "moto.stepfunctions.parser.backend.execution",
    "moto.stepfunctions.parser.asl.eval.event.event_manager",
    "moto.stepfunctions.parser.asl.component.state.state",
    "moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl",
)


def _datetime_on(now: Callable[[], datetime]) -> types.ModuleType:
    """A stand-in for the `datetime` module whose `datetime.now()` is `now()`; everything else is the real one."""

    class ClockDatetime(datetime):
        @classmethod
        def now(cls, tz: datetime_module.tzinfo | None = None) -> ClockDatetime:
            current = now().astimezone(tz or UTC)
            stamp = cls.fromtimestamp(current.timestamp(), tz=current.tzinfo)
            return stamp if tz is not None else stamp.replace(tzinfo=None)  # naive, as the real now() (UTC here)

    stand_in = types.ModuleType("datetime")
    stand_in.__dict__.update(vars(datetime_module))
    stand_in.datetime = ClockDatetime  # type: ignore[attr-defined]
    return stand_in


@dataclass
class StepFunctionsOnTheClock:
    advance: Callable[[float], None]  # move the clock and run what is due meanwhile
    sleep: Callable[[float], None]  # move the clock only
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    publish: Callable[[dict[str, Any]], None] | None = None  # deliver an EventBridge event
    ended: list[dict[str, Any]] = field(default_factory=list)
    _originals: dict[str, Any] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)  # whoever else moves the clock shares it
    _open: threading.Event = field(default_factory=threading.Event)
    _passes: int = 0
    waiting: int = 0  # executions stopped at a held Wait state
    holds: int = 0  # Wait states held so far: a test waits for it to grow (`waiting` may drop and rise unseen)
    quotas: ExecutionQuotas = field(default_factory=ExecutionQuotas)

    def hold_waits(self) -> None:
        self._open.clear()

    def release_waits(self) -> None:
        self._open.set()

    def let_one_pass(self) -> None:
        """While held, let the next Wait state (only) go on."""
        with self.lock:
            self._passes += 1

    def _may_pass(self) -> bool:
        if self._open.is_set():
            return True
        with self.lock:
            if self._passes > 0:
                self._passes -= 1
                return True
        return False

    def install(self) -> Self:
        if moto.__version__ != TARGET_MOTO_VERSION:
            raise RuntimeError(f"StepFunctionsOnTheClock targets moto {TARGET_MOTO_VERSION}, found {moto.__version__}")
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
        from moto.stepfunctions.parser.backend import execution as execution_module

        gaps = self
        self._open.set()
        original_wait = wait_function.WaitFunction._wait_interval
        original_terminated = execution_module.BaseExecutionWorkerCommunication.terminated
        self._originals = {
            "wait": original_wait,
            "terminated": original_terminated,
            "retrier_time": getattr(retrier_decl, "time"),  # noqa: B009  (a module global, not exported)
        }

        def wait_interval(function: Any, env: Any, wait_seconds: int) -> None:  # noqa: ANN401
            if not gaps._may_pass():
                with gaps.lock:
                    gaps.holds += 1
                gaps.waiting += 1
                while not gaps._may_pass():
                    if not env.is_running():  # stopped while held: the execution ends here
                        break
                    gaps._open.wait(0.005)
                gaps.waiting -= 1
            if wait_seconds > 0 and env.is_running():
                gaps.advance(float(wait_seconds))

        def terminated(communication: Any) -> None:  # noqa: ANN401
            original_terminated(communication)
            event = status_change_event(communication.execution, gaps.now())
            if gaps.publish is not None:
                with gaps.lock:
                    gaps.publish(event)
            gaps.ended.append(event)  # after delivery: whoever waits for the end sees its effects

        # The retrier reads `time.sleep` from its module: give it a `time` whose sleep is the clock's.
        clock_time = types.SimpleNamespace(sleep=lambda seconds: gaps.sleep(float(seconds)))
        clock_datetime = _datetime_on(lambda: gaps.now())
        readers = [importlib.import_module(name) for name in _CLOCK_READERS]
        self._originals["datetime_readers"] = [(module, getattr(module, "datetime")) for module in readers]  # noqa: B009
        for module in readers:
            setattr(module, "datetime", clock_datetime)  # noqa: B010
        # StopExecution's stop date comes from moto's own utcnow (naive UTC), read in the base models module.
        from moto.stepfunctions import models as base_models

        self._originals["stop_clock"] = getattr(base_models, "utcnow")  # noqa: B009  (imported, not exported)
        setattr(base_models, "utcnow", lambda: gaps.now().astimezone(UTC).replace(tzinfo=None))  # noqa: B010
        setattr(wait_function.WaitFunction, "_wait_interval", wait_interval)  # noqa: B010
        setattr(execution_module.BaseExecutionWorkerCommunication, "terminated", terminated)  # noqa: B010
        setattr(retrier_decl, "time", clock_time)  # noqa: B010
        self.quotas.install()
        return self

    def uninstall(self) -> None:
        self.quotas.uninstall()
        if not self._originals:
            return
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
        from moto.stepfunctions.parser.backend import execution as execution_module

        setattr(wait_function.WaitFunction, "_wait_interval", self._originals["wait"])  # noqa: B010
        setattr(execution_module.BaseExecutionWorkerCommunication, "terminated", self._originals["terminated"])  # noqa: B010
        setattr(retrier_decl, "time", self._originals["retrier_time"])  # noqa: B010
        for module, original in self._originals["datetime_readers"]:
            setattr(module, "datetime", original)  # noqa: B010
        from moto.stepfunctions import models as base_models

        setattr(base_models, "utcnow", self._originals["stop_clock"])  # noqa: B010
        self._originals = {}
