"""The capacity autopilot: take the endpoint's lease, decide, apply safely, remember, release.

Every entry point produces exactly one DecisionReport, logged as one structured record and counted
in EMF metrics. A change that cannot be applied now (busy endpoint, held lock, running cooldown) is
deferred through the deferral queue, never dropped; a replay that still cannot be applied raises,
so the queue retries it and finally dead-letters it.

A shadow test's exclusive hold is the exception: a test holds the endpoint while it changes it (an update
and the wait for InService, minutes to hours), longer than the queue's redrive (eight receives) lasts. So
an event that meets such a hold is decided read-only, without the lease: if the policy asks for nothing it
is a no-op ("no-change"); otherwise the event waits for the hold to end, re-checked every
`hold_recheck_seconds` as a new message (consumed each time, so it never counts towards the dead-letter
queue), and is applied by the first replay that finds the hold gone. Nothing waits on it in this
function: the queue carries it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from shadowscale.capacity.decision import Decision, DecisionReport, Outcome, VariantChange
from shadowscale.capacity.decision_log import log_decision
from shadowscale.capacity.decisions import decide_alarm, decide_schedule
from shadowscale.capacity.events import AlarmTransition, DeferredChange, ScheduleTick
from shadowscale.capacity.policy import CapacityPolicy
from shadowscale.capacity.ports import AlarmComparisons, Deferrals, EndpointControl, PolicyStore, ScalableTargets
from shadowscale.shared.clock import Clock
from shadowscale.shared.endpoint import EndpointMemory, EndpointObservation, VariantUpdate
from shadowscale.shared.endpoint_lease import EndpointStateStore
from shadowscale.shared.errors import EndpointBusy, EndpointLocked, PolicyNotFound, TransientAwsError
from shadowscale.shared.observability import logger, metrics
from shadowscale.shared.retry import RetryBudget

Decide = Callable[[CapacityPolicy, EndpointObservation, EndpointMemory, datetime], Decision]

# SQS DelaySeconds cannot exceed 15 minutes; longer waits are re-queued on arrival.
MAX_QUEUE_DELAY_SECONDS = 900
# How a shadow test names itself as the lease owner (models.shadow_test.lease_owner; a unit test keeps the
# two in step): the capacity functions do not import the shadow-test capability.
SHADOW_TEST_OWNER_PREFIX = "shadow-test:"
# A change that has waited this long for a test's hold logs each re-check at WARNING: holds last an update
# (minutes); hours mean the test is stuck in a restore, and someone should look.
HOLD_WAIT_WARNING_SECONDS = 3600


@dataclass
class Autopilot:
    policies: PolicyStore
    state: EndpointStateStore
    endpoints: EndpointControl
    scalable_targets: ScalableTargets
    deferrals: Deferrals
    clock: Clock
    retry: RetryBudget
    lease_seconds: int
    defer_delay_seconds: int
    hold_recheck_seconds: int = 30
    dry_run: bool = False
    # Where an alarm's ComparisonOperator is read (the breach's side); None: from the datapoints alone.
    comparisons: AlarmComparisons | None = None

    # --- entry points -------------------------------------------------------------------------

    def on_schedule_tick(self, tick: ScheduleTick) -> DecisionReport:
        def decide(
            policy: CapacityPolicy, seen: EndpointObservation, memory: EndpointMemory, now: datetime
        ) -> Decision:
            return decide_schedule(policy, seen, memory, now, tick.event_id)

        return self._run(tick.endpoint, tick, tick.event_id, decide)

    def on_alarm(self, transition: AlarmTransition) -> DecisionReport:
        try:
            endpoint = self.policies.endpoint_for_alarm(transition.alarm_name)
        except PolicyNotFound as exc:
            return self._report(
                DecisionReport(endpoint="-", source_event=transition.event_id, outcome="ignored", notes=(str(exc),))
            )
        if transition.state == "ALARM" and transition.comparison is None and self.comparisons is not None:
            # Read once, on arrival: a deferred replay carries it in its body.
            transition = transition.model_copy(
                update={"comparison": self.comparisons.comparison(transition.alarm_name)}
            )
        return self._run(endpoint, transition, transition.event_id, self._alarm_decider(transition))

    def on_deferred(self, change: DeferredChange) -> DecisionReport:
        """Replay a deferred event. Raises TransientAwsError if it still cannot be applied."""
        now = self.clock.now()
        if change.not_before is not None and change.not_before > now:
            # Longer than one queue delay: wait another round, as a new change (the idempotency record of
            # this delivery would otherwise swallow the next one as a duplicate).
            self.deferrals.defer(change.waiting_again(str(uuid.uuid4())), _delay_until(change.not_before, now))
            return self._report(
                DecisionReport(
                    endpoint=change.endpoint,
                    source_event=change.event_id,
                    outcome="deferred",
                    notes=("not due yet",),
                    deferred_until=change.not_before,
                )
            )
        source = change.source
        if isinstance(source, AlarmTransition):
            return self._run(change.endpoint, source, change.event_id, self._alarm_decider(source), deferred=change)

        def decide(policy: CapacityPolicy, seen: EndpointObservation, memory: EndpointMemory, at: datetime) -> Decision:
            return decide_schedule(policy, seen, memory, at, change.event_id)

        return self._run(change.endpoint, source, change.event_id, decide, deferred=change)

    # --- the one path every decision takes ----------------------------------------------------

    def _alarm_decider(self, transition: AlarmTransition) -> Decide:
        def decide(
            policy: CapacityPolicy, seen: EndpointObservation, memory: EndpointMemory, now: datetime
        ) -> Decision:
            return decide_alarm(policy, seen, memory, transition, now, transition.event_id)

        return decide

    def _run(
        self,
        endpoint: str,
        source: AlarmTransition | ScheduleTick,
        event_id: str,
        decide: Decide,
        *,
        deferred: DeferredChange | None = None,
    ) -> DecisionReport:
        try:
            policy = self.policies.policy(endpoint)
        except PolicyNotFound as exc:
            return self._report(
                DecisionReport(endpoint=endpoint, source_event=event_id, outcome="ignored", notes=(str(exc),))
            )
        dry_run = self.dry_run or policy.dry_run
        try:
            report = self.retry.run(
                lambda: self._attempt(policy, source, event_id, decide, dry_run, deferred=deferred),
                self.clock,
                on_retry=lambda attempt, exc: logger.info(
                    "retrying", extra={"endpoint": endpoint, "attempt": attempt, "error": str(exc)}
                ),
            )
        except TransientAwsError as exc:
            if deferred is not None:  # a replay: the queue redelivers it
                metrics.add_metric(name="ReplayFailed", unit=MetricUnit.Count, value=1)
                logger.warning(
                    "deferred change still cannot be applied", extra={"endpoint": endpoint, "error": str(exc)}
                )
                raise
            self._defer(endpoint, source, reason=f"{type(exc).__name__}: {exc}", delay=self.defer_delay_seconds)
            report = DecisionReport(
                endpoint=endpoint,
                source_event=event_id,
                outcome="deferred",
                notes=(f"{type(exc).__name__}: {exc}; retried within budget, deferred",),
                deferred_until=self.clock.now() + timedelta(seconds=self.defer_delay_seconds),
            )
        return self._report(report)

    def _attempt(
        self,
        policy: CapacityPolicy,
        source: AlarmTransition | ScheduleTick,
        event_id: str,
        decide: Decide,
        dry_run: bool,
        *,
        deferred: DeferredChange | None,
    ) -> DecisionReport:
        endpoint = policy.endpoint
        owner = f"autopilot:{uuid.uuid4()}"
        try:
            memory = self.state.acquire(endpoint, owner, self.lease_seconds, self.clock.now())
        except EndpointLocked as exc:
            if exc.owner.startswith(SHADOW_TEST_OWNER_PREFIX):
                return self._while_held(policy, source, event_id, decide, dry_run, exc.owner, deferred)
            raise  # retried, then deferred (or, replayed, redelivered by the queue)
        saved: EndpointMemory | None = None
        try:
            observation = self._observe(policy)
            decision = decide(policy, observation, memory, self.clock.now())
            outcome: Outcome
            changes: tuple[VariantChange, ...] = decision.effective_changes
            idle_reasons: tuple[str, ...] = ()
            if decision.superseded:
                outcome, changes = "superseded", ()
            elif decision.wait_until is not None:
                outcome = "dry-run" if dry_run else "deferred"
                if not dry_run:
                    self._defer(endpoint, source, reason="cooldown", delay=0, not_before=decision.wait_until)
                    saved = decision.memory
            elif not changes:
                # Only a no-change report explains idle variants; an applied one lists what it changed.
                outcome, saved, idle_reasons = "no-change", decision.memory, _idle_notes(decision)
            elif dry_run:
                outcome = "dry-run"
            else:
                if not observation.in_service:
                    raise EndpointBusy(f"endpoint {endpoint!r} is {observation.status}")
                changes = self._apply(endpoint, changes)
                outcome, saved = "applied", decision.memory
        finally:
            self.state.release(endpoint, owner, saved)
        return DecisionReport(
            endpoint=endpoint,
            source_event=event_id,
            outcome=outcome,
            changes=changes,
            notes=decision.notes + idle_reasons,
            deferred_until=decision.wait_until,
        )

    def _observe(self, policy: CapacityPolicy) -> EndpointObservation:
        """The endpoint as it is; a policy variant it does not have is a WARNING and a metric, every time:
        a policy that names a variant the endpoint lost (say, to a promotion) has stopped scaling it."""
        observation = self.endpoints.describe_endpoint(policy.endpoint)
        missing = [variant.name for variant in policy.variants if observation.variant(variant.name) is None]
        if missing:
            logger.warning(
                "the policy names variants the endpoint does not have: they are not scaled",
                extra={
                    "endpoint": policy.endpoint,
                    "missing_variants": missing,
                    "endpoint_variants": [variant.name for variant in observation.variants],
                },
            )
            metrics.add_metric(name="PolicyVariantsMissing", unit=MetricUnit.Count, value=len(missing))
        return observation

    def _while_held(
        self,
        policy: CapacityPolicy,
        source: AlarmTransition | ScheduleTick,
        event_id: str,
        decide: Decide,
        dry_run: bool,
        holder: str,
        deferred: DeferredChange | None,
    ) -> DecisionReport:
        """A shadow test changes the endpoint: decide read-only; nothing to do is a no-op, anything else
        waits for the hold to end (re-checked as a new message, so it never reaches the dead-letter queue).
        Nothing is remembered: the replay that finds the hold gone decides, applies and remembers."""
        endpoint = policy.endpoint
        now = self.clock.now()
        observation = self._observe(policy)
        decision = decide(policy, observation, self.state.peek(endpoint), now)
        held = f"endpoint held by shadow test {holder}"
        notes = decision.notes + _idle_notes(decision)
        if decision.superseded:
            return DecisionReport(endpoint=endpoint, source_event=event_id, outcome="superseded", notes=notes)
        changes = decision.effective_changes
        if not changes and decision.wait_until is None:
            return DecisionReport(
                endpoint=endpoint, source_event=event_id, outcome="no-change", notes=(f"{held}; nothing to do", *notes)
            )
        if dry_run:
            return DecisionReport(
                endpoint=endpoint,
                source_event=event_id,
                outcome="dry-run",
                changes=changes,
                notes=(f"{held}; would wait for it to end", *notes),
            )
        until = now + timedelta(seconds=self.hold_recheck_seconds)
        waiting = (
            deferred.waiting_again(str(uuid.uuid4()), waiting_for=holder)
            if deferred is not None
            else self._deferred_change(endpoint, source, reason=held, waiting_for=holder)
        )
        self.deferrals.defer(waiting, self.hold_recheck_seconds)
        waited = (now - waiting.deferred_at).total_seconds()
        log = logger.warning if waited >= HOLD_WAIT_WARNING_SECONDS else logger.info
        log(
            "scaling change waits for a shadow test's hold to end",
            extra={"endpoint": endpoint, "source_event": event_id, "lease_owner": holder, "waited_seconds": waited},
        )
        metrics.add_metric(name="ChangesWaitingForShadowTest", unit=MetricUnit.Count, value=1)
        return DecisionReport(
            endpoint=endpoint,
            source_event=event_id,
            outcome="deferred",
            changes=changes,
            notes=(f"{held}: waits for the hold to end, re-checked every {self.hold_recheck_seconds} s", *notes),
            deferred_until=until,
        )

    def _apply(self, endpoint: str, changes: Sequence[VariantChange]) -> tuple[VariantChange, ...]:
        """Apply with the fewest calls: one DescribeScalableTargets, then one update call."""
        resized = [change.variant for change in changes if change.changes_instances]
        registered = self.scalable_targets.registered(endpoint, resized) if resized else {}
        updates: list[VariantUpdate] = []
        applied: list[VariantChange] = []
        for change in changes:
            target = registered.get(change.variant)
            instances: int | None = change.instances_after if change.changes_instances else None
            if instances is not None and target is not None:
                # Auto scaling would undo a count outside its range: move the range's floor instead.
                self.scalable_targets.set_bounds(
                    endpoint, change.variant, change.instances_after, max(target.max_capacity, change.instances_after)
                )
                change = change.model_copy(update={"via": "scalable-target"})
                instances = None
            weight = change.weight_after if change.changes_weight else None
            if instances is not None or weight is not None:
                updates.append(VariantUpdate(variant=change.variant, instances=instances, weight=weight))
            applied.append(change)
        if updates:
            self.endpoints.update_weights_and_capacities(endpoint, updates)
        return tuple(applied)

    def _defer(
        self,
        endpoint: str,
        source: AlarmTransition | ScheduleTick,
        reason: str,
        delay: int,
        not_before: datetime | None = None,
    ) -> None:
        if not_before is not None:
            delay = _delay_until(not_before, self.clock.now())
        self.deferrals.defer(self._deferred_change(endpoint, source, reason=reason, not_before=not_before), delay)
        metrics.add_metric(name="ChangesDeferred", unit=MetricUnit.Count, value=1)

    def _deferred_change(
        self,
        endpoint: str,
        source: AlarmTransition | ScheduleTick,
        *,
        reason: str,
        not_before: datetime | None = None,
        waiting_for: str | None = None,
    ) -> DeferredChange:
        return DeferredChange(
            change_id=str(uuid.uuid4()),
            endpoint=endpoint,
            source=source,
            reason=reason,
            deferred_at=self.clock.now(),
            not_before=not_before,
            waiting_for=waiting_for,
        )

    @staticmethod
    def _report(report: DecisionReport) -> DecisionReport:
        return log_decision(report)


def _idle_notes(decision: Decision) -> tuple[str, ...]:
    """Why each variant that does not change stays, naming it ("candidate: within bounds; nothing to do")."""
    changing = decision.effective_changes
    return tuple(f"{change.variant}: {change.reason}" for change in decision.changes if change not in changing)


def _delay_until(moment: datetime, now: datetime) -> int:
    return max(0, min(MAX_QUEUE_DELAY_SECONDS, int((moment - now).total_seconds()) + 1))
