"""How many history events a shadow test may write, at worst, and whether that fits Step Functions' 25,000.

The count follows the state machine's structure (statemachine/shadow_test.asl.json) and the events each
state writes (execution_history.py). The Lambda functions do not have the ASL file, so SHADOW_TEST_MACHINE
holds what the count needs from it: each state's events and retry events, and the polling loops (a Wait,
a Task, a Choice back to the Wait) with their intervals. `ShadowTestMachine.from_definition()` reads the
same from the ASL, and tests/unit/test_history_budget.py checks the two agree: change the ASL, and that
test shows what to change here.

The worst case, for one input, is the longest path through the machine:
  the execution's own 2 events, Validate .. StartShadow once each;
  InService polls (ShadowWait loop) for up to inServiceTimeoutMinutes, at its Wait interval (+1 poll);
  every evaluation (Bake loop): per ramp step, ceil(bakeMinutes / evaluationPeriodMinutes) + 1, the whole
  test being one step of durationMinutes without a ramp;
  with calibration, the A/A bake counts as one more step before the first (its switch to the candidate is
  a Ramp by config);
  each later ramp step: Ramp, the Choice after it, and, when SageMaker refuses a weight in place, InService
  polls again and one more evaluation;
  Decide, Action?; with decisionMode approve, AwaitApproval and Approved?;
  Promote and its InService polls for up to inServiceTimeoutMinutes, which time out: RecordFailure and the
  Restore loop for as long as the restore is patient (6 h); then Finalize, Report, Notify, Done? and the
  end state;
  plus every Task state spending all its retries once (3 events a retry), plus SAFETY_MARGIN of the whole
  for retries beyond that and for timing (a poll can run past its interval).
It must stay below 25,000: the 25,000th event is the execution's failure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shadowscale.shadow_tests.execution_history import (
    EXECUTION_EVENTS,
    HISTORY_EVENT_LIMIT,
    events_of_state,
    retry_events_of_state,
)
from shadowscale.shadow_tests.time_limits import RESTORE_PATIENCE

if TYPE_CHECKING:
    from shadowscale.shadow_tests.models import ShadowTestInput


SAFETY_MARGIN = 0.10
# The most events an accepted test may plan for: the 25,000th is the failure itself.
EVENT_BUDGET = HISTORY_EVENT_LIMIT - 1

PROLOGUE = ("Validate", "DryRun?", "Lock", "Snapshot", "PrepareShadow", "StartShadow")
DECIDE = ("Decide", "Action?")
APPROVAL = ("AwaitApproval", "Approved?")
EPILOGUE = ("Finalize", "Report", "Notify", "Notified", "Done?")
ENDS = ("Succeeded", "Failed", "RestoreFailed")
SHADOW_POLL, EVALUATION, PROMOTE_POLL, RESTORE_POLL = "ShadowWait", "Bake", "PromoteWait", "RestoreWait"
RAMP, PROMOTE, RECORD_FAILURE = "Ramp", "Promote", "RecordFailure"
# ShadowTestInput's bounds, for the advice on what to change.
MAX_EVALUATION_PERIOD, MIN_DURATION = 60, 5


@dataclass(frozen=True)
class Visit:
    """One visit of a state: the events it writes, and what spending every retry adds."""

    events: int
    retry_events: int = 0


@dataclass(frozen=True)
class PollingLoop:
    """Wait -> Task -> Choice -> back to the Wait. `wait_seconds` None: the Wait reads its seconds from the
    state (the Bake loop, one evaluation period)."""

    wait: str
    task: str
    choice: str
    wait_seconds: int | None


@dataclass(frozen=True)
class ShadowTestMachine:
    visits: Mapping[str, Visit]
    loops: Mapping[str, PollingLoop]  # by their Wait state
    after_ramp: str  # the state Ramp goes to
    after_ramp_polls: bool  # whether that state can send the test back to the InService polls

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> ShadowTestMachine:
        states: Mapping[str, Mapping[str, Any]] = definition["States"]
        visits = {
            name: Visit(len(events_of_state(state)), retry_events_of_state(state)) for name, state in states.items()
        }
        loops = {}
        for name, state in states.items():
            if state["Type"] != "Wait":
                continue
            task = str(state["Next"])
            choice = str(states[task].get("Next", ""))
            polling = states[task]["Type"] == "Task" and states.get(choice, {}).get("Type") == "Choice"
            if polling and name in _targets(states[choice]):
                seconds = state.get("Seconds")
                loops[name] = PollingLoop(name, task, choice, int(seconds) if seconds is not None else None)
        after_ramp = str(states[RAMP]["Next"])
        polls = states[after_ramp]["Type"] == "Choice" and SHADOW_POLL in _targets(states[after_ramp])
        return cls(visits=visits, loops=loops, after_ramp=after_ramp, after_ramp_polls=polls)

    def loop_events(self, wait: str) -> int:
        loop = self.loops[wait]
        return sum(self.visits[state].events for state in (loop.wait, loop.task, loop.choice))

    def polls(self, wait: str, patience: timedelta) -> int:
        seconds = self.loops[wait].wait_seconds
        assert seconds, f"{wait} waits as long as its input says"
        return math.ceil(patience.total_seconds() / seconds) + 1


def _targets(choice: Mapping[str, Any]) -> set[str]:
    return {str(rule["Next"]) for rule in choice.get("Choices", ())} | {str(choice.get("Default", ""))}


@dataclass(frozen=True)
class HistoryEstimate:
    evaluations: int
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def structural(self) -> int:
        return sum(self.parts.values())

    @property
    def events(self) -> int:
        """The worst case with the safety margin: what must stay within EVENT_BUDGET."""
        return math.ceil(self.structural * (1 + SAFETY_MARGIN))

    @property
    def fits(self) -> bool:
        return self.events <= EVENT_BUDGET


def worst_case_history(
    *,
    step_minutes: tuple[int, ...],
    evaluation_period_minutes: int,
    in_service_timeout_minutes: int,
    approval: bool,
    restore_patience: timedelta,
    machine: ShadowTestMachine | None = None,
    promotion_seconds: int = 0,
) -> HistoryEstimate:
    """The most history events a shadow test with these settings can write (see the module's docstring)."""
    machine = machine or SHADOW_TEST_MACHINE
    visits = machine.visits
    in_service = timedelta(minutes=in_service_timeout_minutes)
    evaluation = machine.loop_events(EVALUATION)
    shadow_polls = machine.polls(SHADOW_POLL, in_service) * machine.loop_events(SHADOW_POLL)
    evaluations = sum(math.ceil(minutes / evaluation_period_minutes) + 1 for minutes in step_minutes)
    ramps = len(step_minutes) - 1
    ramp = visits[RAMP].events + visits[machine.after_ramp].events
    if machine.after_ramp_polls:
        ramp += shadow_polls + evaluation
    path = [*PROLOGUE, *DECIDE, *(APPROVAL if approval else ()), PROMOTE, RECORD_FAILURE, *EPILOGUE]
    looping = [machine.loops[wait].task for wait in (SHADOW_POLL, EVALUATION, PROMOTE_POLL, RESTORE_POLL)]
    parts = {
        "execution": len(EXECUTION_EVENTS),
        "once": sum(visits[state].events for state in path) + max(visits[end].events for end in ENDS),
        "shadow InService polls": shadow_polls,
        "evaluations": evaluations * evaluation,
        "ramp steps": ramps * ramp,
        # A guarded promotion's traffic shifting and bakes come on top (promotion_guardrails.deployment_seconds).
        "promote InService polls": machine.polls(PROMOTE_POLL, in_service + timedelta(seconds=promotion_seconds))
        * machine.loop_events(PROMOTE_POLL),
        "restore polls": machine.polls(RESTORE_POLL, restore_patience) * machine.loop_events(RESTORE_POLL),
        "retries": sum(visits[state].retry_events for state in {*path, *looping, *((RAMP,) if ramps else ())}),
    }
    return HistoryEstimate(evaluations=evaluations, parts=parts)


# What worst_case_history needs of statemachine/shadow_test.asl.json (checked against it by a unit test).
SHADOW_TEST_MACHINE = ShadowTestMachine(
    visits={
        "Validate": Visit(5, 18),
        "ReportInvalidInput": Visit(5, 30),
        "InvalidInput": Visit(1),
        "DryRun?": Visit(2),
        "DryRun": Visit(5, 30),
        "Lock": Visit(5, 30),
        "ReportLocked": Visit(5, 30),
        "Snapshot": Visit(5, 30),
        "PrepareShadow": Visit(5, 30),
        "StartShadow": Visit(5, 30),
        "ShadowWait": Visit(2),
        "ShadowCheck": Visit(5, 30),
        "ShadowReady?": Visit(2),
        "Bake": Visit(2),
        "Evaluate": Visit(5, 30),
        "Progress?": Visit(2),
        "Ramp": Visit(5, 30),
        "Sampled?": Visit(2),
        "Decide": Visit(5, 30),
        "Action?": Visit(2),
        "AwaitApproval": Visit(6, 30),
        "Approved?": Visit(2),
        "Promote": Visit(5, 30),
        "PromoteWait": Visit(2),
        "PromoteCheck": Visit(5, 30),
        "PromoteReady?": Visit(2),
        "RecordFailure": Visit(2),
        "Restore": Visit(5, 90),
        "Restored?": Visit(2),
        "RestoreWait": Visit(2),
        "Finalize": Visit(5, 90),
        "Report": Visit(5, 90),
        "Notify": Visit(5, 90),
        "Done?": Visit(2),
        "Succeeded": Visit(2),
        "Failed": Visit(1),
        "RestoreFailed": Visit(1),
        "NotifyUnreported": Visit(5, 90),
        "ReportNotWritten": Visit(1),
        "NotificationNotSent": Visit(1),
        "Notified": Visit(5, 90),
    },
    loops={
        "ShadowWait": PollingLoop("ShadowWait", "ShadowCheck", "ShadowReady?", 30),
        "Bake": PollingLoop("Bake", "Evaluate", "Progress?", None),
        "PromoteWait": PollingLoop("PromoteWait", "PromoteCheck", "PromoteReady?", 30),
        "RestoreWait": PollingLoop("RestoreWait", "Restore", "Restored?", 30),
    },
    after_ramp="Sampled?",
    after_ramp_polls=True,
)


def _estimate(request: ShadowTestInput, **changes: int) -> HistoryEstimate:
    from shadowscale.shadow_tests.models import DecisionMode
    from shadowscale.shadow_tests.promotion_guardrails import deployment_seconds

    period = changes.get("evaluation_period_minutes", request.evaluation_period_minutes)
    duration = changes.get("duration_minutes", request.duration_minutes)
    steps = tuple(step.bake_minutes for step in request.sampling.ramp) if request.sampling.ramp else (duration,)
    if request.calibration is not None:
        # The A/A bake counts as a step before the first: its evaluations, then a switch like a ramp by config.
        steps = (request.calibration.bake_minutes, *steps)
    return worst_case_history(
        step_minutes=steps,
        evaluation_period_minutes=period,
        in_service_timeout_minutes=request.in_service_timeout_minutes,
        approval=request.decision_mode is DecisionMode.APPROVE,
        restore_patience=RESTORE_PATIENCE,
        promotion_seconds=deployment_seconds(request.promotion.guardrails),
    )


def history_problem(request: ShadowTestInput) -> str | None:
    """Why this test could outgrow its execution history, naming the fields to change; None if it fits."""
    estimate = _estimate(request)
    if estimate.fits:
        return None
    period = request.evaluation_period_minutes
    advice = []
    longer = next(
        (
            p
            for p in range(period + 1, MAX_EVALUATION_PERIOD + 1)
            if _estimate(request, evaluation_period_minutes=p).fits
        ),
        None,
    )
    if longer is not None:
        advice.append(f"raise evaluationPeriodMinutes to at least {longer}")
    if request.sampling.ramp is None:
        shortest, longest = MIN_DURATION, request.duration_minutes
        if _estimate(request, duration_minutes=shortest).fits:
            while shortest < longest - 1:  # the longest duration that fits, by bisection
                middle = (shortest + longest) // 2
                shortest, longest = (
                    (middle, longest) if _estimate(request, duration_minutes=middle).fits else (shortest, middle)
                )
            advice.append(f"shorten durationMinutes to at most {shortest}")
    else:
        advice.append("shorten the ramp (sampling.ramp[].bakeMinutes) or use fewer steps")
    advice.append("lower inServiceTimeoutMinutes")
    change = "; or ".join(advice)
    return (
        f"this test could write up to {estimate.events} Step Functions history events at worst"
        f" ({estimate.evaluations} evaluations every {period} min, InService waits of up to"
        f" {request.in_service_timeout_minutes} min, a restore, retries, +{SAFETY_MARGIN:.0%}): over the execution"
        f" history limit (an execution fails at its {HISTORY_EVENT_LIMIT:,}th event). {change[0].upper()}{change[1:]}"
    )
