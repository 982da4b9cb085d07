"""SageMaker Deployment Guardrails, as UpdateEndpoint with a `DeploymentConfig` runs them, on the local
cloud's clock. Used by sagemaker_gaps (moto 5.2.5 has no UpdateEndpoint at all).

What AWS documents (Developer Guide, "Deployment guardrails" and its pages on blue/green all-at-once, canary
and linear traffic shifting, rolling deployments, auto-rollback and exclusions; botocore's
DeploymentConfig, TrafficRoutingConfig, RollingUpdatePolicy, AutoRollbackConfig shapes):
- the green fleet is provisioned, then traffic shifts to it all at once, in a canary and the rest, or in
  linear steps; each step is followed by a baking period of `WaitIntervalInSeconds`, and all traffic on
  green by a final baking period; the blue fleet is kept `TerminationWaitInSeconds` more;
- a rolling deployment replaces `MaximumBatchSize` at a time, each batch baked `WaitIntervalInSeconds`;
- if any `AutoRollbackConfiguration` alarm is in ALARM during a baking period, all traffic rolls back to the
  blue fleet (status `RollingBack`, then `InService` on the old config);
- a deployment that outlasts `MaximumExecutionTimeoutInSeconds` times out (it is rolled back here too);
- the new config must have the old config's variant names; a canary is at most 50 % of the new fleet, a
  linear step 10-50 %, a rolling batch 5-50 %; Inf1 instances fall back to all at once with no final bake.

What AWS leaves open, as switches (both tested): whether DescribeEndpoint shows a `FailureReason` after a
successful automatic rollback (`rollback_failure_reason`: "shown" names the alarms, "absent"), whether
the final baking period lasts `WaitIntervalInSeconds` or nothing (`final_bake`), and whether an
`AutoRollbackConfiguration` alarm that does not exist is refused at once (`missing_alarms`). Alarms are looked at when
the endpoint is described (the lifecycle polls it every 30 s), not continuously: an alarm that goes to
ALARM and back between two looks is missed here, where AWS would roll back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

RollbackFailureReason = Literal["shown", "absent"]
FinalBake = Literal["wait-interval", "none"]
MissingAlarms = Literal["refused", "ignored"]


class GuardrailsRefused(ValueError):
    """A DeploymentConfig SageMaker refuses (a ValidationException); the message is SageMaker's kind."""


@dataclass(frozen=True)
class Phase:
    """One stretch of the deployment: `green_percent` of traffic on the new fleet until `until`."""

    until: datetime
    green_percent: float
    baking: bool  # alarms are watched (a baking period)


@dataclass
class GuardedDeployment:
    endpoint_arn: str
    config: str
    started: datetime
    phases: tuple[Phase, ...]
    alarms: tuple[str, ...]
    deadline: datetime  # MaximumExecutionTimeoutInSeconds after the start
    rollback_seconds: float
    roll_back: Callable[[str], None]  # puts the old config back, with the failure reason to show (or "")
    rollback_failure_reason: RollbackFailureReason = "shown"
    rolling_back_until: datetime | None = None
    finished: bool = False
    reason: str = ""

    def status(self, now: datetime, alarm_state: Callable[[str], str | None]) -> str | None:
        """The endpoint's status now (None once it is over and InService)."""
        if self.finished:
            return None
        if self.rolling_back_until is not None:
            if now >= self.rolling_back_until:
                self.finished = True
                self.roll_back(self.reason if self.rollback_failure_reason == "shown" else "")
                return None
            return "RollingBack"
        phase = self.phase_at(now)
        if phase is not None and phase.baking:
            fired = [name for name in self.alarms if alarm_state(name) == "ALARM"]
            if fired:
                return self._start_rollback(now, f"Alarm(s) {', '.join(fired)} in ALARM state; rolled back")
        if now >= self.deadline and phase is not None:
            return self._start_rollback(now, "Deployment exceeded MaximumExecutionTimeoutInSeconds; rolled back")
        if phase is None:
            self.finished = True
            return None
        return "Updating"

    def phase_at(self, now: datetime) -> Phase | None:
        return next((phase for phase in self.phases if now < phase.until), None)

    def green_percent(self, now: datetime) -> float:
        if self.rolling_back_until is not None:
            return 0.0
        phase = self.phase_at(now)
        return phase.green_percent if phase is not None else 100.0

    def _start_rollback(self, now: datetime, reason: str) -> str:
        self.reason = reason
        self.rolling_back_until = now + timedelta(seconds=self.rollback_seconds)
        return "RollingBack"


def _size_percent(size: dict[str, Any], instances: int) -> float:
    value = float(size["Value"])
    return value if size["Type"] == "CAPACITY_PERCENT" else 100.0 * value / max(instances, 1)


def _check_size(name: str, size: dict[str, Any], instances: int, low: float, high: float) -> float:
    percent = _size_percent(size, instances)
    if not low <= percent <= high:
        raise GuardrailsRefused(
            f"{name} {size['Value']} ({size['Type']}) is {percent:g} % of the variant's {instances} instance(s); "
            f"it must be {low:g}-{high:g} %."
        )
    return percent


def validate(
    deployment: dict[str, Any],
    *,
    old_variants: Sequence[str],
    new_variants: Sequence[dict[str, Any]],
    alarm_exists: Callable[[str], bool],
) -> None:
    """Refuse what SageMaker documents it refuses (raises GuardrailsRefused)."""
    blue_green, rolling = deployment.get("BlueGreenUpdatePolicy"), deployment.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise GuardrailsRefused("Only one of BlueGreenUpdatePolicy and RollingUpdatePolicy may be given.")
    names = sorted(str(variant["VariantName"]) for variant in new_variants)
    if sorted(old_variants) != names:
        raise GuardrailsRefused(
            f"A deployment with DeploymentConfig needs the new endpoint configuration to have the same variant "
            f"names as the old one: old {sorted(old_variants)}, new {names}."
        )
    _check_alarms(deployment, alarm_exists)
    _check_timeout(blue_green or {}, rolling or {})


def _check_alarms(deployment: dict[str, Any], alarm_exists: Callable[[str], bool]) -> None:
    rollback = deployment.get("AutoRollbackConfiguration")
    if rollback is None:
        return
    alarms = [str(alarm.get("AlarmName")) for alarm in rollback.get("Alarms", [])]
    if not 1 <= len(alarms) <= 10:
        raise GuardrailsRefused("AutoRollbackConfiguration.Alarms must have 1 to 10 members.")
    missing = [name for name in alarms if not alarm_exists(name)]
    if missing:
        raise GuardrailsRefused(f"The CloudWatch alarm(s) {missing} do not exist.")


def _check_timeout(blue_green: dict[str, Any], rolling: dict[str, Any]) -> None:
    """MaximumExecutionTimeoutInSeconds must be larger than the waits (BlueGreenUpdatePolicy's note)."""
    routing = blue_green.get("TrafficRoutingConfiguration") or {}
    waits = int(routing.get("WaitIntervalInSeconds") or rolling.get("WaitIntervalInSeconds") or 0)
    waits += int(blue_green.get("TerminationWaitInSeconds") or 0)
    timeout = (blue_green or rolling).get("MaximumExecutionTimeoutInSeconds")
    if timeout is not None and int(timeout) <= waits:
        raise GuardrailsRefused(
            f"MaximumExecutionTimeoutInSeconds {timeout} must be larger than the total waiting time ({waits})."
        )


def schedule(
    deployment: dict[str, Any],
    *,
    start: datetime,
    provision_seconds: float,
    instances: int,
    instance_type: str,
    final_bake: FinalBake = "wait-interval",
) -> tuple[tuple[Phase, ...], int]:
    """The deployment's phases from `start`, and its MaximumExecutionTimeoutInSeconds (SageMaker's maximum,
    28,800, when none is given: the default is undocumented)."""
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    phases: list[Phase] = []
    at = start + timedelta(seconds=provision_seconds)
    phases.append(Phase(at, 0.0, baking=False))  # the green fleet comes up
    if rolling:
        wait = int(rolling["WaitIntervalInSeconds"])
        batch = _check_size("MaximumBatchSize", rolling["MaximumBatchSize"], instances, 5, 50)
        steps = math.ceil(100.0 / batch)
        for step in range(1, steps + 1):
            at += timedelta(seconds=wait + (provision_seconds if step > 1 else 0))
            phases.append(Phase(at, min(100.0, batch * step), baking=True))
        return tuple(phases), int(rolling.get("MaximumExecutionTimeoutInSeconds") or 28_800)
    policy = blue_green or {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}
    routing = policy["TrafficRoutingConfiguration"]
    wait = int(routing.get("WaitIntervalInSeconds") or 0)
    kind = routing["Type"]
    inf1 = instance_type.startswith("ml.inf1.")
    if inf1:  # Exclusions: all at once, no final baking period
        kind, final_bake = "ALL_AT_ONCE", "none"
    shares: list[float]
    if kind == "CANARY":
        canary = _check_size("CanarySize", routing["CanarySize"], instances, 0, 50)
        shares = [canary]
    elif kind == "LINEAR":
        linear = _check_size("LinearStepSize", routing["LinearStepSize"], instances, 10, 50)
        shares = [min(100.0, linear * index) for index in range(1, math.ceil(100.0 / linear))]
    else:
        shares = []
    for share in shares:
        at += timedelta(seconds=wait)
        phases.append(Phase(at, share, baking=True))
    # Inf1 falls back to all at once with no final baking period (Exclusions).
    final = 0 if inf1 or (final_bake == "none" and shares) else wait
    at += timedelta(seconds=final)
    phases.append(Phase(at, 100.0, baking=final > 0))
    termination = int(policy.get("TerminationWaitInSeconds") or 0)
    if termination:
        at += timedelta(seconds=termination)
        phases.append(Phase(at, 100.0, baking=False))
    return tuple(phases), int(policy.get("MaximumExecutionTimeoutInSeconds") or 28_800)
