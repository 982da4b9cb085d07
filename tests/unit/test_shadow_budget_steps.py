"""A budget through the lifecycle's evaluate and decide steps (shadow_tests/lifecycle.py) on in-memory fakes:
the meter runs from the shadow's first evaluation, the waits stop at the budget's end, the spent budget
sends the test to its decision, and the report carries the spend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shadowscale.shadow_tests.models import EndpointSnapshot, Evaluation, MachineState, ShadowTestPlan, VariantStats

from tests.shadow_fakes import CANDIDATE, DATA_BUCKET, PRODUCTION, ShadowWorld


def shadow_on(world: ShadowWorld, **overrides: Any) -> tuple[ShadowTestPlan, EndpointSnapshot]:
    plan = world.plan(**overrides)
    world.steps.lock(plan)
    snapshot = world.steps.snapshot(plan)
    world.steps.prepare(plan, snapshot)
    ready = world.steps.start_shadow(plan)
    world.sagemaker.settle()
    world.steps.check_ready(plan, ready)
    return plan, snapshot


def healthy() -> VariantStats:
    return VariantStats.model_validate(
        {"invocations": 5000, "latencyP50Ms": 10, "latencyP90Ms": 20, "latencyP99Ms": 30}
    )


def run_until_decided(world: ShadowWorld, plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> list[Evaluation]:
    """Evaluate, wait what the evaluation says, again, as the machine's Bake loop does, until it decides."""
    evaluations = [world.steps.evaluate(plan, snapshot, None)]
    while evaluations[-1].next in ("bake", "ramp"):
        world.clock.advance(seconds=evaluations[-1].wait_seconds)
        evaluations.append(world.steps.evaluate(plan, snapshot, evaluations[-1]))
        assert len(evaluations) < 50
    return evaluations


def test_given_an_instance_hour_budget_when_the_test_runs_then_it_decides_when_spent_not_at_its_end() -> None:
    # GIVEN a 60-minute test, 10-minute evaluations, 2 shadow instances and a 0.5 instance-hour budget
    world = ShadowWorld()
    plan, snapshot = shadow_on(
        world,
        candidate={
            "modelName": "fraud-detector-v2",
            "instanceType": "ml.m5.large",
            "variantName": CANDIDATE,
            "instanceCount": 2,
        },
        evaluationPeriodMinutes=10,
        budget={"maxInstanceHours": 0.5},
    )
    world.metrics.stats = {PRODUCTION: healthy(), CANDIDATE: healthy()}
    began = world.clock.now()

    # WHEN the Bake loop runs as the machine runs it
    evaluations = run_until_decided(world, plan, snapshot)

    # THEN the waits were 10 minutes, then the 5 left of the budget: it decided 15 minutes in, not 60
    assert [evaluation.wait_seconds for evaluation in evaluations[:-1]] == [600, 300]
    assert world.clock.now() - began == timedelta(minutes=15)
    last = evaluations[-1]
    assert last.next == "decide"
    assert last.spend is not None
    assert last.spend.instance_hours == 0.5
    assert last.spend.spent == "0.500 of 0.5 instance-hours"
    # ... the meter started at the shadow's first evaluation, with the example price of ml.m5.large
    assert last.spend.since == began
    assert (last.spend.price_source, last.spend.cost_usd) == ("example-table", 0.5 * 0.115)
    # ... each evaluation projected the next one's spend
    assert evaluations[1].spend is not None
    assert evaluations[1].spend.projected_instance_hours == 0.5
    # ... and the gates decide as at the end of a bake, with the budget named
    decision = world.steps.decide(plan, last)
    assert decision.action == "promote"
    assert decision.reason == f"budget spent (0.500 of 0.5 instance-hours); all {len(last.gates)} gates passed"


def test_given_too_little_evidence_when_the_budget_is_spent_then_the_shadow_is_removed_and_the_report_says_why() -> (
    None
):
    # GIVEN a cost budget at the input's price and a shadow with too few invocations to judge
    world = ShadowWorld()
    plan, snapshot = shadow_on(
        world,
        gates={"minInvocations": 100_000},
        budget={"maxCostUsd": 0.25, "hourlyPrices": {"ml.m5.large": 1.0}},
    )
    world.metrics.stats = {PRODUCTION: healthy(), CANDIDATE: healthy()}

    # WHEN it runs until it decides
    evaluations = run_until_decided(world, plan, snapshot)
    decision = world.steps.decide(plan, evaluations[-1])

    # THEN 15 minutes at $1 an hour spent it; the inconclusive verdict removes the shadow
    assert evaluations[-1].spend is not None
    assert evaluations[-1].spend.cost_usd == 0.25
    assert (decision.verdict, decision.action) == ("insufficient-data", "remove")
    assert decision.reason.startswith("budget spent ($0.25 of $0.25); insufficient data for: min-invocations")
    # ... and the report shows the spend in its JSON and on its page
    state = MachineState(plan=plan, snapshot=snapshot, progress=evaluations[-1], decision=decision)
    world.reports.report(state)
    report = world.objects.report(plan)
    assert report.reason.startswith("budget spent")
    assert report.evaluation is not None
    assert report.evaluation.spend is not None
    dumped = report.model_dump(mode="json", by_alias=True)["evaluation"]["spend"]
    assert (dumped["costUsd"], dumped["maxCostUsd"], dumped["share"], dumped["priceSource"]) == (
        0.25,
        0.25,
        1.0,
        "input",
    )
    html = world.objects.objects[(DATA_BUCKET, f"{plan.report_prefix}/report.html")]
    assert isinstance(html, str)
    assert "<h2>Budget</h2>" in html
    assert "Budget spent: $0.25 of $0.25" in html


def test_given_no_budget_when_evaluated_then_nothing_is_metered() -> None:
    world = ShadowWorld()
    plan, snapshot = shadow_on(world)
    first = world.steps.evaluate(plan, snapshot, None)
    world.clock.advance(minutes=5)
    assert first.spend is None
    assert world.steps.evaluate(plan, snapshot, first).spend is None
