"""What moto's Step Functions interpreter lacks for the shadow test, filled in. Targets moto==5.2.5.

moto (run with `execute_state_machine`) waits in wall time: a Wait state of a one-hour bake would take an
hour, and Retry intervals sleep for real. It also never emits the EventBridge "Step Functions Execution
Status Change" events that the cleanup function listens to. Installed, this module makes:
- Wait states pass on the local cloud's clock: the clock advances by the wait, and everything due in
  that time (schedules, queue deliveries, simulated traffic) happens during it;
- Retry intervals pass on the clock without delivering anything (nothing else runs in a retry);
- every execution that ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) emits its status-change event.
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
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def install(self) -> Self:
        if moto.__version__ != TARGET_MOTO_VERSION:
            raise RuntimeError(f"StepFunctionsOnTheClock targets moto {TARGET_MOTO_VERSION}, found {moto.__version__}")
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
        from moto.stepfunctions.parser.backend import execution as execution_module

        gaps = self
        original_wait = wait_function.WaitFunction._wait_interval
        original_terminated = execution_module.BaseExecutionWorkerCommunication.terminated
        self._originals = {
            "wait": original_wait,
            "terminated": original_terminated,
            "retrier_time": getattr(retrier_decl, "time"),  # noqa: B009  (a module global, not exported)
        }

        def wait_interval(function: Any, env: Any, wait_seconds: int) -> None:  # noqa: ANN401
            if wait_seconds > 0 and env.is_running():
                with gaps._lock:
                    gaps.advance(float(wait_seconds))

        def terminated(communication: Any) -> None:  # noqa: ANN401
            original_terminated(communication)
            event = status_change_event(communication.execution, gaps.now())
            gaps.ended.append(event)
            if gaps.publish is not None:
                with gaps._lock:
                    gaps.publish(event)

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
