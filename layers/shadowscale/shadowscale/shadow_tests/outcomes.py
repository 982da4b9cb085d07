"""How a shadow test ended, read from the machine's state: the outcome its report and notification lead with."""

from __future__ import annotations

from shadowscale.shadow_tests.models import MachineState, Outcome, Verdict

# The failure a recovery records for an execution that ended without restoring (see recovery.py).
ENDED_EARLY: dict[str, Outcome] = {"ExecutionAborted": "aborted", "ExecutionTimedOut": "timed-out"}


def outcome_of(state: MachineState) -> tuple[Outcome, str]:
    """(outcome, reason) of a test whose state the machine carried this far."""
    if state.finalized is not None and state.finalized.promoted:
        return "promoted", _promoted_because(state)
    if state.failure:
        return _failed_because(state)
    return _removed_because(state)


def verdict_of(state: MachineState) -> Verdict | None:
    """The decision's verdict, else the last evaluation's."""
    if state.decision is not None:
        return state.decision.verdict
    return state.progress.verdict if state.progress is not None else None


def _promoted_because(state: MachineState) -> str:
    by = f" (approved by {state.approval.by})" if state.approval and state.approval.approved else ""
    recovered = (
        f" (completed by the recovery after the execution ended {state.recovery.ended_as})"
        if state.recovery is not None and state.recovery.action == "restore"
        else ""
    )
    return (state.decision.reason if state.decision else "promoted") + by + recovered


def _failed_because(state: MachineState) -> tuple[Outcome, str]:
    error = state.failure_error
    if error in ("EndpointLocked", "EndpointHeld"):
        return "locked", state.failure_cause
    if error in ENDED_EARLY:
        return ENDED_EARLY[error], state.failure_cause
    if error == "PromotionRolledBack":  # promotion_guardrails.py: SageMaker undid it on an alarm
        return "rolled-back", state.failure_cause
    return "failed", f"{error}: {state.failure_cause}"


def _removed_because(state: MachineState) -> tuple[Outcome, str]:
    if state.approval_timeout:
        return "rejected", "no approval before the approval timeout"
    if state.approval and not state.approval.approved:
        return "rejected", f"rejected by {state.approval.by}: {state.approval.comment or 'no comment'}"
    if state.decision and state.decision.reason.startswith("report-only"):
        return "report-only", state.decision.reason
    return "removed", state.decision.reason if state.decision else "removed"
