"""Step Functions execution history, counted as AWS counts it: the events each state writes, and the limits.

Quotas ("Quotas related to state machine executions", "... task executions", Step Functions developer guide):
a Standard execution's history holds at most 25,000 events; the execution fails when it reaches that
(`States.Runtime`, "The execution reached the maximum number of history events (25000).", written as event
25,000 itself). A task's, state's or execution's input or output holds at most 262,144 bytes of UTF-8 JSON
(`States.DataLimitExceeded`, which `States.ALL` does not catch: "Handling errors in Step Functions
workflows").

The events one visit of a state writes (HistoryEvent types in the GetExecutionHistory API reference; the
sequences are the ones an execution's history shows, and tests/integration/test_stepfunctions_quotas.py
checks that the local cloud writes exactly these):

| visit                           | events                                                                   |
|---------------------------------|--------------------------------------------------------------------------|
| the execution (2)               | ExecutionStarted ... ExecutionSucceeded / Failed / Aborted / TimedOut    |
| Task: lambda:invoke, sns:... (5)| TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded (or          |
|                                 | TaskFailed, TaskTimedOut), TaskStateExited                               |
| Task .waitForTaskToken (6)      | TaskStateEntered, TaskScheduled, TaskStarted, TaskSubmitted,             |
|                                 | TaskSucceeded (or TaskTimedOut), TaskStateExited                         |
| each retry of a Task (3)        | TaskScheduled, TaskStarted, TaskFailed (the state is not entered again)  |
| Choice, Wait, Pass, Succeed (2) | <Type>StateEntered, <Type>StateExited                                    |
| Fail (1)                        | FailStateEntered (then ExecutionFailed)                                  |

A caught failure still exits its state (TaskFailed, then TaskStateExited), so it costs what a success does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HISTORY_EVENT_LIMIT = 25_000
PAYLOAD_LIMIT_BYTES = 262_144
HISTORY_LIMIT_CAUSE = f"The execution reached the maximum number of history events ({HISTORY_EVENT_LIMIT})."

EXECUTION_EVENTS = ("ExecutionStarted", "ExecutionSucceeded")
TASK_EVENTS = ("TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited")
CALLBACK_TASK_EVENTS = (
    "TaskStateEntered",
    "TaskScheduled",
    "TaskStarted",
    "TaskSubmitted",
    "TaskSucceeded",
    "TaskStateExited",
)
RETRY_EVENTS = ("TaskScheduled", "TaskStarted", "TaskFailed")
STATE_EVENTS: Mapping[str, tuple[str, ...]] = {
    "Choice": ("ChoiceStateEntered", "ChoiceStateExited"),
    "Wait": ("WaitStateEntered", "WaitStateExited"),
    "Pass": ("PassStateEntered", "PassStateExited"),
    "Succeed": ("SucceedStateEntered", "SucceedStateExited"),
    "Fail": ("FailStateEntered",),
}


def events_of_state(state: Mapping[str, Any]) -> tuple[str, ...]:
    """The events one visit of this ASL state writes when it succeeds (or is caught) at the first attempt."""
    kind = state["Type"]
    if kind == "Task":
        return CALLBACK_TASK_EVENTS if str(state.get("Resource", "")).endswith(".waitForTaskToken") else TASK_EVENTS
    if kind not in STATE_EVENTS:
        raise ValueError(f"no event count for a {kind} state (Map and Parallel are not modelled)")
    return STATE_EVENTS[kind]


def retry_events_of_state(state: Mapping[str, Any]) -> int:
    """The events a visit adds when it spends every retry of every retrier (3 per retry)."""
    return len(RETRY_EVENTS) * sum(int(retrier.get("MaxAttempts", 3)) for retrier in state.get("Retry", ()))
