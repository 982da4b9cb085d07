"""The recovery execution's first step, after a shadow test's execution ended without restoring (an abort,
a timeout, a failed restore): find what it left behind, claim it, and hand back the machine state the
recovery state machine (statemachine/shadow_test_recovery.asl.json) restores, finalizes and reports from,
with the same steps as the test's own machine.

Durable by construction: the recovery is an execution of its own (retries and waits of hours, no Lambda
that sleeps), idempotent (a duplicate event finds the claim), and resumable (a recovery that gave up is
replaced by the next one, which starts again from the endpoint as it is).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from shadowscale.shadow_tests.bucket_layout import notified_key, report_key
from shadowscale.shadow_tests.endpoint_hold import WriterHold
from shadowscale.shadow_tests.models import (
    MachineState,
    Recovery,
    RecoveryAction,
    RecoveryRequest,
    ShadowTestPlan,
    lease_owner,
    parse_shadow_test_input,
)
from shadowscale.shadow_tests.ports import ExecutionFacts, ObjectStore, ShadowTestRecords, StoredShadowTest, Timeline
from shadowscale.shadow_tests.time_limits import RECOVERY_LEASE_SECONDS
from shadowscale.shared.clock import Clock
from shadowscale.shared.errors import InvalidShadowTestInput, RecoveryRefused
from shadowscale.shared.observability import logger
from shadowscale.shared.validation import SAGEMAKER_NAME


@dataclass(frozen=True)
class _Ended:
    """The execution being recovered, as far as the request and Step Functions tell."""

    request: RecoveryRequest
    facts: ExecutionFacts | None
    recovered_by: str

    @cached_property
    def raw_input(self) -> object:
        document = self.request.input if self.request.input is not None else (self.facts.input if self.facts else None)
        try:
            return json.loads(document) if document else None
        except ValueError:
            return None

    @property
    def ended_as(self) -> str:
        return self.facts.status if self.facts is not None else self.request.status

    @property
    def endpoint(self) -> str | None:
        """The endpoint its input names, if that is a valid endpoint name."""
        raw = self.raw_input
        endpoint = raw.get("endpointName") if isinstance(raw, dict) else None
        return endpoint if isinstance(endpoint, str) and re.fullmatch(SAGEMAKER_NAME, endpoint) else None

    @property
    def owner(self) -> str:
        return lease_owner(self.request.execution_arn)

    @property
    def failure(self) -> dict[str, Any]:
        """The failure recorded for an execution that ended without one of its own (outcomes.ENDED_EARLY)."""
        return {
            "Error": f"Execution{self.ended_as.title().replace('_', '')}",
            "Cause": f"the execution ended {self.ended_as} before it restored the endpoint",
        }

    def outcome(self, action: RecoveryAction, reason: str, state: MachineState | None = None) -> MachineState:
        recovery = Recovery(
            execution_arn=self.request.execution_arn,
            ended_as=self.ended_as,
            action=action,
            reason=reason,
            recovered_by=self.recovered_by,
        )
        logger.info("shadow test recovery", extra={"execution": self.request.execution_arn, "action": action})
        return (state or MachineState()).model_copy(update={"recovery": recovery})


@dataclass
class ShadowTestRecovery:
    timeline: Timeline
    records: ShadowTestRecords
    objects: ObjectStore
    hold: WriterHold
    clock: Clock
    data_bucket: str
    default_topic_arn: str

    def begin(self, request: RecoveryRequest, *, recovery_arn: str) -> MachineState:
        """What the ended execution left behind, claimed: restore it, report it, or nothing."""
        facts = self.timeline.describe(request.execution_arn)
        if facts is not None and facts.status == "RUNNING":
            raise RecoveryRefused(f"{request.execution_arn} is still running: stop it first, then recover")
        ended = _Ended(request, facts, recovery_arn)
        endpoint = ended.endpoint
        if endpoint is None:
            return ended.outcome("nothing", "the execution names no valid endpoint: nothing was touched")
        last = self.timeline.last_state(request.execution_arn)
        stored = self.records.load(endpoint)
        if stored.owner == ended.owner:
            return self._still_owned(ended, endpoint, stored, last)
        return self._released(ended, stored, last)

    def _still_owned(
        self, ended: _Ended, endpoint: str, stored: StoredShadowTest, last: MachineState | None
    ) -> MachineState:
        """The test still owns its endpoint: claim the recovery of it, then restore from its record."""
        recovery_arn = ended.recovered_by
        replacing = stored.recovered_by if stored.recovered_by not in (None, recovery_arn) else None
        if replacing is not None:
            other = self.timeline.describe(replacing)
            if other is not None and other.status == "RUNNING":
                return ended.outcome("nothing", f"{replacing} is recovering this test already")
        claimed = self.records.claim_recovery(
            endpoint,
            ended.owner,
            recovery_arn,
            replacing=replacing,
            lease_seconds=RECOVERY_LEASE_SECONDS,
            now=self.clock.now(),
        )
        if not claimed:
            return ended.outcome("nothing", "another recovery claimed this test first")
        failure = (last.failure if last is not None else None) or ended.failure
        if stored.record is None:  # locked, then stopped before the snapshot: nothing was changed
            self.records.release(endpoint, ended.owner)
            self.hold.let_go(endpoint, ended.owner)  # and the writer hold Lock took, if it still has it
            plan = self._plan_of(ended)
            if plan is None:
                return ended.outcome("nothing", "released the lease; nothing else was changed")
            state = MachineState(plan=plan, failure=failure)
            return ended.outcome("report", "stopped before the snapshot: lease released", state)
        # What the execution knew (progress, decision, approval) goes into the report; where the endpoint
        # is heading is read again from the endpoint.
        state = (last or MachineState()).model_copy(
            update={"plan": stored.record.plan, "snapshot": stored.record.snapshot, "failure": failure, "ready": None}
        )
        return ended.outcome("restore", f"the execution ended {ended.ended_as} holding the endpoint", state)

    def _released(self, ended: _Ended, stored: StoredShadowTest, last: MachineState | None) -> MachineState:
        """The test let go of its endpoint (or never had it): finish what it left undone."""
        plan = last.plan if last is not None and last.plan is not None else self._plan_of(ended)
        if plan is None:
            return ended.outcome("nothing", "the execution never had a plan: nothing was touched")
        reported = self.objects.exists(plan.reports_bucket, f"{report_key(plan.report_prefix)}.json")
        notified = self.objects.exists(plan.reports_bucket, notified_key(plan.report_prefix))
        if reported and notified:
            return ended.outcome("nothing", "the execution restored the endpoint, reported and notified")
        if stored.owner is None and last is not None and last.finalized is None and last.snapshot is not None:
            # Stopped inside Finalize, after it let go of the endpoint: finish it (every step is idempotent).
            state = last.model_copy(update={"failure": last.failure or ended.failure, "ready": None})
            return ended.outcome("restore", f"the execution ended {ended.ended_as} while it finalized", state)
        # The test's own last state says how it ended; an execution stopped before it had one gets the end.
        known = (last or MachineState(failure=ended.failure)).model_copy(update={"plan": plan})
        if reported:
            return ended.outcome("report", "the execution reported but could not notify", known)
        return ended.outcome("report", "the execution's report was not written", known)

    def _plan_of(self, ended: _Ended) -> ShadowTestPlan | None:
        """The plan the execution made (its names are fixed by the ARN), for a report of a test that ended early."""
        try:
            request = parse_shadow_test_input(ended.raw_input)
        except InvalidShadowTestInput:
            return None
        return ShadowTestPlan.create(
            request,
            execution_arn=ended.request.execution_arn,
            started_at=ended.facts.started_at if ended.facts is not None else self.clock.now(),
            data_bucket=self.data_bucket,
            default_topic_arn=self.default_topic_arn,
        )
