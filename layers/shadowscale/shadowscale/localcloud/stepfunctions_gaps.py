"""What moto's Step Functions interpreter lacks for the shadow test, filled in. Targets moto==5.2.5.

moto (run with `execute_state_machine`) waits in wall time: a Wait state of a one-hour bake would take an
hour, and Retry intervals sleep for real. It also never emits the EventBridge "Step Functions Execution
Status Change" events that the cleanup function listens to. Installed, this module makes:
- Wait states pass on the local cloud's clock: the clock advances by the wait, and everything due in
  that time (schedules, queue deliveries, simulated traffic) happens during it;
- Retry intervals pass on the clock without delivering anything (nothing else runs in a retry);
- every execution that ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) emits its status-change event;
- a test can `hold_waits()` to stop executions at their next Wait state (to act on a running test,
  e.g. abort it mid-bake) and `release_waits()` to let them go on.
"""

from __future__ import annotations

import json
import threading
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import moto

from shadowscale.localcloud.resources import ACCOUNT, REGION

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
        setattr(wait_function.WaitFunction, "_wait_interval", wait_interval)  # noqa: B010
        setattr(execution_module.BaseExecutionWorkerCommunication, "terminated", terminated)  # noqa: B010
        setattr(retrier_decl, "time", clock_time)  # noqa: B010
        return self

    def uninstall(self) -> None:
        if not self._originals:
            return
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
        from moto.stepfunctions.parser.backend import execution as execution_module

        setattr(wait_function.WaitFunction, "_wait_interval", self._originals["wait"])  # noqa: B010
        setattr(execution_module.BaseExecutionWorkerCommunication, "terminated", self._originals["terminated"])  # noqa: B010
        setattr(retrier_decl, "time", self._originals["retrier_time"])  # noqa: B010
        self._originals = {}
