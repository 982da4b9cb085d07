"""The fault matrix's cases, generated from the baseline (baseline.py), not written one by one.

Generating list: every call site the baseline recorded, i.e. (service, operation, state machine, state),
of the stack's own callers, in each scenario (a healthy candidate that promotes, a slow one that is
removed). Lambda's own Invoke (the state machine's `lambda:invoke` integration) is a site for aborts
only: the brief's services are SageMaker, Application Auto Scaling, DynamoDB, S3, SNS, SQS, Step
Functions and CloudWatch.

Reductions (what is not the full cross product, and why):
- A site in a state the two scenarios share before the decision (Validate … Decide) runs in the
  promote scenario only: up to the decision both scenarios make the same calls, and a fault there leads
  to the same restore path whichever way the gates would have gone.
- Transient kinds (throttle, 5xx, the service's own retryable error where it has one) run at every site:
  each is 2 consecutive failed calls (each call one that exhausted botocore's retries).
- Outages (5 min, 90 min, 6 h of the clock, 503 ServiceUnavailable on every call of the operation)
  run for every operation, armed at its first call (promote first, then the calls only the remove
  scenario makes); the 6-hour one again at the operation's first call after the decision in each
  scenario (the restore / promotion / finalize path), where that is another site. (An outage armed
  early covers the operation's later calls too: it fails every call until it ends.)
- Stalls (3 h in Updating, then a rollback) and quick rollbacks (one update's time, then rolled back)
  at each UpdateEndpoint call of each scenario.
- Aborts (StopExecution) at every state the shadow test passes through: its Wait states through
  `step_to`, every Task state right after its first call returned (the work done, the state not left).
- Single cases: the original config deleted while baking (each scenario), two executions on one
  endpoint (the second started while the first bakes; both started at once), two execution names that
  sanitise alike (concurrently and one after the other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shadowscale_localcloud.faults import FaultKind, kinds_for

from tests.integration.fault_matrix.harness import SCENARIOS, ScenarioName

MATRIX_SERVICES = frozenset(
    {"sagemaker", "application-autoscaling", "dynamodb", "s3", "sns", "sqs", "stepfunctions", "cloudwatch"}
)
DECISION_STATE = "Decide"

CaseKind = Literal["fault", "stall", "abort", "tidy-up", "concurrent", "look-alike"]


@dataclass(frozen=True)
class MatrixCase:
    kind: CaseKind
    scenario: ScenarioName
    service: str = ""
    operation: str = ""
    state: str | None = None
    machine: str | None = None  # the state machine whose state it is (None: outside any execution)
    fault: FaultKind | None = None
    nth: int = 1
    variant: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def case_id(self) -> str:
        where = self.state or "outside"
        if self.machine and not self.machine.endswith("shadow-test"):
            where = f"{self.machine.rsplit('-', 1)[-1]}.{where}"  # e.g. recovery.Restore
        if self.kind == "fault":
            return f"{self.scenario}-{self.service}.{self.operation}@{where}-{self.fault}"
        if self.kind == "stall":
            return f"{self.scenario}-UpdateEndpoint#{self.nth}@{where}-{self.variant}"
        if self.kind == "abort":
            return f"{self.scenario}-abort@{where}"
        return f"{self.scenario}-{self.kind}-{self.variant}" if self.variant else f"{self.scenario}-{self.kind}"


def _pre_decision(baseline: dict[str, Any]) -> set[str]:
    states: list[str] = baseline["promote"]["states"]
    return set(states[: states.index(DECISION_STATE) + 1]) if DECISION_STATE in states else set()


def generate(baseline: dict[str, Any]) -> list[MatrixCase]:
    shared = _pre_decision(baseline)
    cases: list[MatrixCase] = []
    outaged: set[tuple[str, str]] = set()  # operations whose short outages have a case already
    for scenario in SCENARIOS:
        recorded = baseline[scenario]
        sites = list(
            {
                (s["service"], s["operation"], s["state_machine"], s["state"]): s
                for s in recorded["sites"]
                if s["service"] in MATRIX_SERVICES
            }.values()
        )  # one site per state, whoever calls there
        first_after: set[tuple[str, str]] = set()
        for site in sites:
            service, operation, state, machine = (
                site["service"],
                site["operation"],
                site["state"],
                site["state_machine"],
            )
            before_decision = machine is not None and machine.endswith("shadow-test") and state in shared
            if scenario != "promote" and before_decision:
                continue
            key = (service, operation)
            kinds = kinds_for(service, operation)
            chosen: list[FaultKind] = [kind for kind in kinds if not kind.startswith("outage")]
            if key not in outaged:  # the operation's first call: every outage
                chosen += [kind for kind in kinds if kind.startswith("outage")]
                outaged.add(key)
            elif not before_decision and key not in first_after:
                chosen.append("outage-6h")  # its first call after the decision, in this scenario: the long one
            if not before_decision:
                first_after.add(key)
            cases += [
                MatrixCase("fault", scenario, service, operation, state, machine=machine, fault=kind) for kind in chosen
            ]
        for nth, state in enumerate(recorded["updates"], start=1):
            cases += [
                MatrixCase("stall", scenario, "sagemaker", "UpdateEndpoint", state, nth=nth, variant=variant)
                for variant in ("stall-3h", "rollback")
            ]
        for state in recorded["states"]:
            if scenario != "promote" and state in shared:
                continue
            if state in recorded["waitStates"]:
                cases.append(MatrixCase("abort", scenario, state=state, variant="wait"))
            elif state in recorded["taskStates"]:
                task_sites = [s for s in recorded["sites"] if s["state"] == state]
                if task_sites:
                    first = task_sites[0]
                    cases.append(
                        MatrixCase("abort", scenario, first["service"], first["operation"], state, variant="task")
                    )
        cases.append(MatrixCase("tidy-up", scenario, state="Bake"))
    cases += [
        MatrixCase("concurrent", "remove", state="Bake", variant="while-baking"),
        MatrixCase("concurrent", "promote", variant="at-once"),
        MatrixCase("look-alike", "remove", state="Bake", variant="while-baking"),
        MatrixCase("look-alike", "remove", variant="one-after-the-other"),
    ]
    return cases
