"""Where a shadow test leaves its traces: reports and diff summaries in S3, notices on SNS, its
timeline in the Step Functions execution history."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shadowscale.shadow_tests.models import MachineState, TimelineEntry
from shadowscale.shadow_tests.ports import ExecutionFacts
from shadowscale.shared.aws_errors import error_code, raise_domain_error

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


# History event types worth a line in the report's timeline.
_TIMELINE_EVENTS = {
    "ExecutionStarted": "started",
    "TaskStateEntered": "entered",
    "WaitStateEntered": "waiting",
    "ChoiceStateEntered": None,
    "PassStateEntered": None,
    "TaskFailed": "failed",
    "LambdaFunctionFailed": "failed",
    "ExecutionSucceeded": "succeeded",
    "ExecutionFailed": "failed",
    "ExecutionAborted": "aborted",
    "ExecutionTimedOut": "timed out",
}


class ExecutionTimeline:
    def __init__(self, client: SFNClient) -> None:
        self._client = client

    def timeline(self, execution_arn: str, limit: int = 400) -> tuple[TimelineEntry, ...]:
        """States entered and failures, oldest first; repeated bake loops are collapsed to keep it readable."""
        entries: list[TimelineEntry] = []
        try:
            pages = self._client.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
            for page in pages:
                for event in page.get("events", []):
                    kind = event["type"]
                    label = _TIMELINE_EVENTS.get(kind)
                    if label is None:
                        continue
                    details: Mapping[str, Any] = event.get("stateEnteredEventDetails") or {}
                    state = str(details.get("name", kind))
                    if entries and entries[-1].state == state and label == "entered":
                        continue
                    entries.append(TimelineEntry(at=event["timestamp"], state=state, event=label))
        except ClientError as exc:
            if error_code(exc) in {"ExecutionDoesNotExist", "AccessDeniedException"}:
                return ()
            raise_domain_error(exc, f"GetExecutionHistory {execution_arn}")
        if len(entries) > limit:
            entries = entries[: limit // 2] + entries[-limit // 2 :]
        return tuple(entries)

    def describe(self, execution_arn: str) -> ExecutionFacts | None:
        try:
            described = self._client.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise_domain_error(exc, f"DescribeExecution {execution_arn}")
        return ExecutionFacts(
            status=described["status"],
            input=described.get("input"),
            started_at=described["startDate"],
            error=described.get("error"),
        )

    def last_state(self, execution_arn: str) -> MachineState | None:
        """The machine state the execution last entered a state with, once it had a plan. The newest event
        is found by its id, not by the page order (`reverseOrder` is not honoured everywhere)."""
        newest: tuple[int, dict[str, Any]] | None = None
        try:
            pages = self._client.get_paginator("get_execution_history").paginate(
                executionArn=execution_arn, reverseOrder=True, includeExecutionData=True
            )
            for page in pages:
                for event in page.get("events", []):
                    details: Mapping[str, Any] = event.get("stateEnteredEventDetails") or {}
                    try:
                        state = json.loads(details.get("input") or "null")
                    except ValueError:
                        continue
                    planned = isinstance(state, dict) and isinstance(state.get("plan"), dict)
                    if planned and (newest is None or int(event["id"]) > newest[0]):
                        newest = (int(event["id"]), state)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise_domain_error(exc, f"GetExecutionHistory {execution_arn}")
        return MachineState.model_validate(newest[1]) if newest is not None else None
