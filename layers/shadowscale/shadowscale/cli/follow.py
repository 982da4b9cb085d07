"""`shadowscale shadow follow`: one view of a running shadow test, read from its execution history.

The view is rebuilt from the whole history each time (it is small: a test's budget is checked at input), so
it shows the same thing however often it is drawn: the state the test is in, step N of M and its sampling,
the time left in the bake, each gate's latest value against its threshold, a bar while a Wait runs, the exact
approve/reject commands at AwaitApproval, and a failure as one line with its cause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from shadowscale.shadow_tests import report_noise
from shadowscale.shadow_tests.budgets import spend_lines
from shadowscale.shadow_tests.models import Evaluation, ShadowTestPlan
from shadowscale.shadow_tests.report_gates import interval_text

# The history events whose details carry error and cause (botocore's stepfunctions model).
FAILURE_EVENTS = (
    "TaskFailed",
    "TaskTimedOut",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "ExecutionFailed",
    "ExecutionTimedOut",
    "ExecutionAborted",
)
BAR_WIDTH = 24


def cause_line(error: str | None, cause: str | None) -> str:
    """Step Functions' error and cause as one line: a Lambda's JSON cause gives its type and message,
    never its stack trace."""
    error, cause = error or "", (cause or "").strip()
    try:
        parsed = json.loads(cause) if cause.startswith("{") else None
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        kind = str(parsed.get("errorType") or error)
        message = str(parsed.get("errorMessage") or parsed.get("Message") or parsed.get("message") or "")
        return f"{kind}: {message}" if message else kind
    first = cause.splitlines()[0] if cause else ""
    return f"{error}: {first}" if first else error or "failed"


def _details(event: dict[str, Any]) -> dict[str, Any]:
    return next((value for key, value in event.items() if key.endswith("EventDetails")), {})


def _document(text: object) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@dataclass
class ExecutionProgress:
    """What the history says so far."""

    state: str | None = None
    state_since: datetime | None = None
    state_input: dict[str, Any] = field(default_factory=dict)
    plan: ShadowTestPlan | None = None
    evaluation: Evaluation | None = None
    failure: str | None = None
    failed_in: str | None = None
    visits: dict[str, int] = field(default_factory=dict)  # state name → times entered, in first-entry order

    @classmethod
    def from_history(cls, events: list[dict[str, Any]]) -> ExecutionProgress:
        progress = cls()
        for event in events:
            progress._take(event)
        return progress

    def _take(self, event: dict[str, Any]) -> None:
        kind, details = event["type"], _details(event)
        if kind.endswith("StateEntered"):
            self.state, self.state_since = details.get("name"), event["timestamp"]
            if self.state and not kind.startswith(("Choice", "Pass")):
                self.visits[self.state] = self.visits.get(self.state, 0) + 1
            self.state_input = _document(details.get("input"))
            self._read_state(self.state_input)
        elif kind.endswith("StateExited"):
            self._read_state(_document(details.get("output")))
        elif kind.endswith("Succeeded") and self.failed_in == self.state:
            self.failure = self.failed_in = None  # a Retry got past it: not the test's failure
        elif kind in FAILURE_EVENTS:
            self.failure = cause_line(details.get("error"), details.get("cause"))
            self.failed_in = self.state

    def _read_state(self, document: dict[str, Any]) -> None:
        try:
            if isinstance(document.get("plan"), dict):
                self.plan = ShadowTestPlan.model_validate(document["plan"])
            if isinstance(document.get("progress"), dict):
                self.evaluation = Evaluation.model_validate(document["progress"])
        except ValidationError:
            pass  # an older or partial state: show what else is known


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def bar(done: float, total: float) -> str:
    share = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = round(share * BAR_WIDTH)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@dataclass(frozen=True)
class FollowView:
    execution: str  # the name used on the command line
    status: str
    progress: ExecutionProgress
    now: datetime
    command_options: str = ""  # --stack-name/--endpoint-url as given, so printed commands work as they are

    def lines(self) -> list[str]:
        progress = self.progress
        where = f"  {progress.state}" if progress.state and self.status == "RUNNING" else ""
        since = f" since {progress.state_since:%H:%M:%S}" if where and progress.state_since else ""
        lines = [f"{self.execution}: {self.status}{where}{since}"]
        if progress.visits:
            path = ", ".join(f"{name} x{count}" if count > 1 else name for name, count in progress.visits.items())
            lines.append(f"  states: {path}")
        lines += self._step_lines()
        lines += self._wait_lines()
        lines += self._gate_lines()
        lines += [f"  {line}" for line in report_noise.lines(progress.evaluation)]
        lines += [f"  {line}" for line in spend_lines(progress.evaluation)]
        if self.status == "RUNNING" and progress.state == "AwaitApproval":
            lines += self._approval_lines()
        if progress.failure and self.status != "SUCCEEDED":
            ended = "last error" if self.status == "RUNNING" else self.status.lower().replace("_", " ")
            lines.append(f"  {ended} in {progress.failed_in or 'the execution'}: {progress.failure}")
        return lines

    def _step_lines(self) -> list[str]:
        plan, evaluation = self.progress.plan, self.progress.evaluation
        if plan is None:
            return []
        steps = plan.request.steps
        index = evaluation.step_index if evaluation else 0
        step = steps[min(index, len(steps) - 1)]
        line = f"  step {index + 1} of {len(steps)}: sampling {step.percent:g}%, bake {step.bake_minutes} min"
        if evaluation is not None:
            ends = evaluation.step_started_at + timedelta(minutes=step.bake_minutes)
            line += f", {_duration((ends - evaluation.at).total_seconds())} left at the last evaluation"
        return [line]

    def _wait_lines(self) -> list[str]:
        progress = self.progress
        if self.status != "RUNNING" or progress.state_since is None or not progress.state:
            return []
        seconds = progress.state_input.get("progress", {}).get("waitSeconds") if progress.state == "Bake" else None
        if progress.state == "AwaitApproval" and progress.plan is not None:
            seconds = progress.plan.approval_timeout_seconds
        if not isinstance(seconds, int | float) or seconds <= 0:
            return []
        elapsed = (self.now - progress.state_since).total_seconds()
        return [
            f"  {progress.state} {bar(elapsed, seconds)} {_duration(seconds - elapsed)} left of {_duration(seconds)}"
        ]

    def _gate_lines(self) -> list[str]:
        evaluation = self.progress.evaluation
        if evaluation is None:
            return []
        lines = [f"  gates at {evaluation.at:%H:%M:%S} (verdict so far: {evaluation.verdict}):"]
        for gate in evaluation.gates:
            if gate.status == "not-configured":
                continue
            lines.append(
                f"    {gate.status:<17} {gate.name:<28} {interval_text(gate) or '-':>10} vs {_number(gate.threshold)}"
            )
        if evaluation.hard_limit_breached:
            lines.append(f"    hard limit breached: {evaluation.hard_limit_breached}")
        if evaluation.early_stop:
            lines.append(f"    {evaluation.early_stop}")
        return lines

    def _approval_lines(self) -> list[str]:
        options = f" {self.command_options}" if self.command_options else ""
        return [
            "  waiting for a person; decide with one of:",
            f'    shadowscale shadow approve {self.execution}{options} --comment "why"',
            f'    shadowscale shadow reject {self.execution}{options} --comment "why"',
        ]
