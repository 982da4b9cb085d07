"""A promotion hands the capacity policy over: what the old production variant had (bounds, cooldowns,
weight, windows, alarm reactions) now belongs to the promoted variant, in a new policy revision that says
why, and the alarms it reacts to are re-pointed to the promoted variant's dimensions.

SageMaker keeps the candidate's variant name on promotion, so without this the policy would name a
variant the endpoint no longer has and silently stop scaling it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from shadowscale.capacity.decision import DecisionReport, Outcome
from shadowscale.capacity.decision_log import log_decision
from shadowscale.capacity.policy import CapacityPolicy
from shadowscale.capacity.ports import AlarmDimensions, AlarmRepointing, PolicyRevisions
from shadowscale.shared.clock import Clock
from shadowscale.shared.endpoint import EndpointMemory
from shadowscale.shared.endpoint_lease import EndpointStateStore
from shadowscale.shared.errors import TransientAwsError
from shadowscale.shared.handover import HANDOVER_PATIENCE, PromotionAnnouncer, PromotionHandover
from shadowscale.shared.observability import logger, metrics

HANDOVER_OWNER_PREFIX = "policy-handover:"
# The longest an SQS message can be delayed; a handover sent round waits this long at most per round.
MAX_ROUND_DELAY_SECONDS = 900


@dataclass(frozen=True)
class CarriedPolicy:
    policy: CapacityPolicy
    reason: str
    notes: tuple[str, ...]


def carry_over(policy: CapacityPolicy, handover: PromotionHandover) -> CarriedPolicy | None:
    """The policy with the old production variant's entry renamed to the promoted variant (None: nothing to
    carry, because the policy does not name the old variant, e.g. a handover already made)."""
    old = policy.variant(handover.from_variant)
    if old is None:
        return None
    notes: list[str] = []
    replaced = policy.variant(handover.to_variant)
    if replaced is not None:
        dropped = [reaction.alarm_name for reaction in replaced.alarms]
        notes.append(
            f"the candidate's own entry {handover.to_variant!r} is replaced by production's"
            + (f" (its alarm reactions {', '.join(dropped)} are dropped)" if dropped else "")
        )
    renamed = old.model_copy(update={"name": handover.to_variant})
    # The promoted config keeps only the promoted variant: entries of variants it removed go too.
    gone = [
        variant.name
        for variant in policy.variants
        if handover.variants
        and variant.name not in (handover.from_variant, handover.to_variant)
        and variant.name not in handover.variants
    ]
    if gone:
        notes.append(f"entries of variants the promotion removed are dropped: {', '.join(gone)}")
    variants = tuple(
        renamed if variant.name == handover.from_variant else variant
        for variant in policy.variants
        if variant.name != handover.to_variant and variant.name not in gone
    )
    carried = policy.model_copy(update={"variants": variants})
    if handover.instances is not None and not old.min_instances <= handover.instances <= old.max_instances:
        notes.append(
            f"{handover.to_variant!r} was promoted with {handover.instances} instance(s), outside "
            f"[{old.min_instances}..{old.max_instances}]: the next heartbeat brings it within bounds"
        )
    reason = (
        f"shadow test {handover.test_id} promoted {handover.to_variant!r} over {handover.from_variant!r} at "
        f"{handover.promoted_at.isoformat()}: bounds, cooldowns, weight, windows and alarm reactions carried over"
    )
    # Validated again as a whole: the renamed entry must not clash with the rest of the policy.
    return CarriedPolicy(
        policy=CapacityPolicy.model_validate(carried.model_dump(by_alias=True)), reason=reason, notes=tuple(notes)
    )


@dataclass
class PolicyHandover:
    revisions: PolicyRevisions
    alarms: AlarmDimensions
    state: EndpointStateStore
    resend: PromotionAnnouncer
    clock: Clock
    lease_seconds: int = 60

    def on_promotion(self, handover: PromotionHandover) -> DecisionReport:
        """Under the endpoint's lease (no decision runs meanwhile): move the autopilot's memory of the old
        variant (cooldowns, windows in force, alarm states) to the promoted one, carry the policy over and
        re-point its alarms. Each step is idempotent, so a handover cut short finishes on its next delivery."""
        owner = f"{HANDOVER_OWNER_PREFIX}{handover.test_id}"
        try:
            memory = self.state.acquire(handover.endpoint, owner, self.lease_seconds, self.clock.now())
        except TransientAwsError as exc:  # a decision or a shadow test holds the endpoint: come back
            return self._send_round(handover, exc)
        moved: EndpointMemory | None = None
        try:
            moved = _memory_moved(memory, handover)
            report = self._hand_over(handover)
        except TransientAwsError as exc:
            report = self._send_round(handover, exc)
        finally:
            self.state.release(handover.endpoint, owner, moved)
        return report

    def _hand_over(self, handover: PromotionHandover) -> DecisionReport:
        stored = self.revisions.get(handover.endpoint)
        if stored is None:
            return self._report(handover, "ignored", (f"no capacity policy for endpoint {handover.endpoint!r}",))
        policy, revision = stored
        notes: list[str] = []
        carried = carry_over(policy, handover)
        if carried is not None:
            revision = self.revisions.put(
                carried.policy,
                reason=carried.reason,
                applied_by=f"shadow test {handover.test_id}",
                applied_at=self.clock.now(),
            )
            policy = carried.policy
            notes += [f"policy revision {revision}: {carried.reason}", *carried.notes]
            metrics.add_metric(name="PoliciesCarriedOver", unit=MetricUnit.Count, value=1)
        promoted = policy.variant(handover.to_variant)
        if promoted is None:
            notes.append(f"the policy names neither {handover.from_variant!r} nor {handover.to_variant!r}")
            return self._report(handover, "no-change", tuple(notes))
        outcomes: dict[str, AlarmRepointing] = {
            reaction.alarm_name: self.alarms.repoint(
                reaction.alarm_name, handover.endpoint, handover.from_variant, handover.to_variant
            )
            for reaction in promoted.alarms
        }
        notes += [_alarm_note(name, outcome, handover) for name, outcome in outcomes.items()]
        refused = [name for name, outcome in outcomes.items() if outcome in ("missing", "not-allowed")]
        if refused:
            metrics.add_metric(name="PolicyAlarmsNotRepointed", unit=MetricUnit.Count, value=len(refused))
            logger.warning(
                "alarms of the carried-over policy could not be re-pointed; re-point them yourself",
                extra={"endpoint": handover.endpoint, "alarms": refused, "test": handover.test_id},
            )
        outcome: Outcome = "applied" if carried is not None or "re-pointed" in outcomes.values() else "no-change"
        return self._report(handover, outcome, tuple(notes))

    def _send_round(self, handover: PromotionHandover, exc: TransientAwsError) -> DecisionReport:
        """Sent round again rather than failed: the queue's redrive would dead-letter it within the hour."""
        now = self.clock.now()
        if now - handover.promoted_at > HANDOVER_PATIENCE:
            raise exc  # the queue's redrive policy dead-letters it, with this error in the function's log
        delay = min(MAX_ROUND_DELAY_SECONDS, 30 * 2 ** min(handover.attempt, 5))
        self.resend.announce(handover.again(), delay_seconds=delay)
        logger.warning(
            "policy handover will be tried again",
            extra={"endpoint": handover.endpoint, "error": str(exc), "attempt": handover.attempt + 1, "delay": delay},
        )
        return self._report(handover, "deferred", (f"{type(exc).__name__}: {exc}; trying again in {delay} s",))

    def _report(self, handover: PromotionHandover, outcome: Outcome, notes: tuple[str, ...]) -> DecisionReport:
        return log_decision(
            DecisionReport(endpoint=handover.endpoint, source_event=handover.event_id, outcome=outcome, notes=notes)
        )


def _memory_moved(memory: EndpointMemory, handover: PromotionHandover) -> EndpointMemory | None:
    """The memory with the old variant's entry under the promoted variant's name (None: nothing to move)."""
    old = memory.variants.get(handover.from_variant)
    if old is None or handover.to_variant in memory.variants:
        return None
    variants = {name: seen for name, seen in memory.variants.items() if name != handover.from_variant}
    return memory.model_copy(update={"variants": {**variants, handover.to_variant: old}})


def _alarm_note(name: str, outcome: AlarmRepointing, handover: PromotionHandover) -> str:
    return {
        "re-pointed": f"alarm {name!r} now watches {handover.to_variant!r}",
        "already": f"alarm {name!r} already watches {handover.to_variant!r}",
        "not-this-variant": f"alarm {name!r} does not watch {handover.from_variant!r}: left as it is",
        "missing": f"alarm {name!r} does not exist",
        "not-allowed": f"alarm {name!r} may not be changed by shadowscale (its name is outside the stack's "
        "alarm permissions): re-point it yourself",
    }[outcome]
