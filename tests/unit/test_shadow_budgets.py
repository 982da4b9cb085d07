"""A shadow test's budget as pure logic: the spend meter, its projection, when a cap is spent, how the spend
shortens the next wait and ends the test on the normal decision path, and how a budget is validated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shadowscale.shadow_tests import budgets, config_plans
from shadowscale.shadow_tests.models import (
    Evaluation,
    GateResult,
    ShadowSpend,
    ShadowTestInput,
    parse_shadow_test_input,
)
from shadowscale.shadow_tests.prices import EXAMPLE_HOURLY_PRICES_USD
from shadowscale.shadow_tests.report_spend import spend_section
from shadowscale.shadow_tests.time_limits import MAX_TEST_MINUTES, RESTORE_PATIENCE
from shadowscale.shared.errors import InvalidShadowTestInput

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def make_input(budget: dict[str, Any] | None, **overrides: Any) -> ShadowTestInput:
    document: dict[str, Any] = {
        "endpointName": "fraud-detector",
        "candidate": {"modelName": "fraud-v2", "instanceType": "ml.g4dn.xlarge", "instanceCount": 2},
        "sampling": {"percent": 20},
        "durationMinutes": 600,
        "evaluationPeriodMinutes": 15,
    }
    if budget is not None:
        document["budget"] = budget
    document.update(overrides)
    return parse_shadow_test_input(document)


def metered(request: ShadowTestInput, *segments: tuple[float, int]) -> ShadowSpend:
    """The spend after the shadow ran each (minutes, instances) segment in turn, from T0."""
    spend = budgets.accrue(request, None, now=T0, instances=segments[0][1] if segments else 1)
    at = T0
    for index, (minutes, _) in enumerate(segments):
        at += timedelta(minutes=minutes)
        following = segments[index + 1][1] if index + 1 < len(segments) else segments[index][1]
        spend = budgets.accrue(request, spend, now=at, instances=following)
    assert spend is not None
    return spend


# --- the meter ------------------------------------------------------------------------------------


def test_no_budget_means_no_meter() -> None:
    # GIVEN a test without a budget
    request = make_input(None)
    # WHEN the meter is asked
    spend = budgets.accrue(request, None, now=T0, instances=2)
    # THEN there is nothing to count, to cap, or to show
    assert spend is None
    assert budgets.seconds_left(spend) is None
    assert budgets.projected(spend, 60) is None


def test_the_first_evaluation_starts_the_meter_at_zero() -> None:
    # GIVEN a budget of 10 instance-hours
    request = make_input({"maxInstanceHours": 10})
    # WHEN the shadow just became InService
    spend = budgets.accrue(request, None, now=T0, instances=2)
    # THEN nothing is spent yet, and 2 instances have 5 hours before the cap
    assert spend is not None
    assert (spend.instance_hours, spend.share, spend.spent) == (0.0, 0.0, None)
    assert budgets.seconds_left(spend) == pytest.approx(5 * 3600)


def test_each_interval_is_counted_at_the_count_that_ran_in_it() -> None:
    # GIVEN a ramp whose steps ran 1, then 3, then 2 instances (30, 60 and 90 minutes)
    request = make_input({"maxInstanceHours": 100})
    # WHEN the meter accrues each interval
    spend = metered(request, (30, 1), (60, 3), (90, 2))
    # THEN the instance-hours are 0.5 + 3 + 3, and the cost is at the example table's price
    assert spend.instance_hours == pytest.approx(6.5)
    price = EXAMPLE_HOURLY_PRICES_USD["ml.g4dn.xlarge"]
    assert (spend.hourly_price_usd, spend.price_source) == (price, "example-table")
    assert spend.cost_usd == pytest.approx(6.5 * price)
    assert spend.running_minutes == pytest.approx(180)
    assert spend.share == pytest.approx(0.065)


def test_a_price_in_the_input_wins_over_the_table() -> None:
    # GIVEN an input that prices the candidate's type itself
    request = make_input({"maxCostUsd": 50, "hourlyPrices": {"ml.g4dn.xlarge": 2.5}})
    # WHEN two instances ran for two hours
    spend = metered(request, (120, 2))
    # THEN the cost is at the input's price: 4 instance-hours x $2.50
    assert (spend.hourly_price_usd, spend.price_source) == (2.5, "input")
    assert spend.cost_usd == pytest.approx(10.0)
    assert spend.share == pytest.approx(0.2)
    # ... and the $40 left last 8 more hours at $5 an hour
    assert budgets.seconds_left(spend) == pytest.approx(8 * 3600)


def test_an_unknown_type_without_a_cost_cap_is_metered_in_hours_only() -> None:
    # GIVEN an instance type the table does not price, and only an instance-hour cap
    request = make_input({"maxInstanceHours": 4}, candidate={"modelName": "m", "instanceType": "ml.p5.48xlarge"})
    # WHEN it ran an hour
    spend = metered(request, (60, 1))
    # THEN hours are counted and the cost is unknown, not guessed
    assert spend.instance_hours == pytest.approx(1.0)
    assert (spend.cost_usd, spend.hourly_price_usd, spend.price_source) == (None, None, None)


def test_a_clock_that_goes_back_adds_nothing() -> None:
    # GIVEN a spend at 08:30
    request = make_input({"maxInstanceHours": 4})
    spend = metered(request, (30, 1))
    # WHEN the next reading is earlier (a clock skew between invocations)
    earlier = budgets.accrue(request, spend, now=T0 + timedelta(minutes=10), instances=1)
    # THEN the meter never runs backwards
    assert earlier is not None
    assert earlier.instance_hours == pytest.approx(spend.instance_hours)


# --- caps, projection, "spent" ------------------------------------------------------------------


def test_the_first_cap_to_run_out_sets_the_time_left() -> None:
    # GIVEN three caps: 3 instance-hours, $10 at $2/h, 100 minutes; 2 instances
    request = make_input(
        {"maxInstanceHours": 3, "maxCostUsd": 10, "maxDurationMinutes": 100, "hourlyPrices": {"ml.g4dn.xlarge": 2}}
    )
    # WHEN they ran 30 minutes (1 instance-hour, $2)
    spend = metered(request, (30, 2))
    # THEN the hours cap is first: 2 instance-hours left at 2 an hour is 1 hour (cost: 2 h; duration: 70 min)
    assert budgets.seconds_left(spend) == pytest.approx(3600)
    assert spend.share == pytest.approx(1 / 3)
    assert spend.spent is None


def test_a_cap_reached_is_spent_and_says_which() -> None:
    # GIVEN a 1 instance-hour budget
    request = make_input({"maxInstanceHours": 1})
    # WHEN 2 instances ran 30 minutes
    spend = metered(request, (30, 2))
    # THEN the budget is spent, at 100 %
    assert spend.spent == "1.000 of 1 instance-hours"
    assert spend.share == pytest.approx(1.0)
    assert budgets.seconds_left(spend) == 0.0


def test_a_cost_cap_is_spent_before_the_hours_cap() -> None:
    # GIVEN $1 at $4 an hour and 10 instance-hours
    request = make_input({"maxCostUsd": 1, "maxInstanceHours": 10, "hourlyPrices": {"ml.g4dn.xlarge": 4}})
    # WHEN 2 instances ran 8 minutes ($1.07)
    spend = metered(request, (8, 2))
    # THEN the cost cap is the spent one, not the hours one
    assert spend.spent is not None
    assert spend.spent.startswith("$1.07 of $1.00")
    assert "instance-hours" not in spend.spent


def test_the_duration_cap_counts_minutes_running_whatever_the_count() -> None:
    request = make_input({"maxDurationMinutes": 45})
    spend = metered(request, (20, 1), (25, 5))
    assert spend.spent == "45 of 45 minutes running"


def test_the_projection_is_what_the_next_evaluation_will_find() -> None:
    # GIVEN 2 instances at $2.50 an hour, 1 instance-hour spent
    request = make_input({"maxCostUsd": 50, "hourlyPrices": {"ml.g4dn.xlarge": 2.5}})
    spend = metered(request, (30, 2))
    # WHEN the next evaluation is in 15 minutes
    ahead = budgets.projected(spend, 15 * 60)
    # THEN it will have 1.5 instance-hours and $3.75
    assert ahead is not None
    assert ahead.projected_instance_hours == pytest.approx(1.5)
    assert ahead.projected_cost_usd == pytest.approx(3.75)
    assert ahead.instance_hours == pytest.approx(1.0)  # the spend itself is unchanged


# --- the decision path ----------------------------------------------------------------------------


def test_the_wait_is_cut_to_the_budget_end_and_the_test_then_decides() -> None:
    # GIVEN a 10-hour bake with 15-minute evaluations, and 7 minutes of budget left
    request = make_input({"maxInstanceHours": 1})
    spend = metered(request, (53, 1))
    left = budgets.seconds_left(spend)
    assert left == pytest.approx(7 * 60)
    # WHEN the next step is planned
    following, _, wait = config_plans.next_step(
        request,
        step_index=0,
        step_started_at=T0,
        test_started_at=T0,
        now=T0 + timedelta(minutes=53),
        breached=False,
        budget_left_seconds=left,
    )
    # THEN it bakes only until the budget runs out, not the full period
    assert (following, wait) == ("bake", 7 * 60)
    # ... and at that evaluation the spent budget sends the test to its decision
    spent = budgets.accrue(request, spend, now=T0 + timedelta(minutes=60), instances=1)
    assert spent is not None
    assert spent.spent
    decided = config_plans.next_step(
        request,
        step_index=0,
        step_started_at=T0,
        test_started_at=T0,
        now=T0 + timedelta(minutes=60),
        breached=False,
        budget_left_seconds=budgets.seconds_left(spent),
    )
    assert decided == ("decide", 0, 0)


def test_a_ramp_step_ends_early_on_a_spent_budget_instead_of_ramping() -> None:
    # GIVEN a ramp whose first step ended just as the budget did
    request = make_input(
        {"maxInstanceHours": 1},
        sampling={"ramp": [{"percent": 10, "bakeMinutes": 30}, {"percent": 50, "bakeMinutes": 60}]},
        candidate={"modelName": "m", "instanceType": "ml.g4dn.xlarge", "instanceCount": 2},
    )
    spend = metered(request, (30, 2))
    # WHEN the next step is planned
    plan = config_plans.next_step(
        request,
        step_index=0,
        step_started_at=T0,
        test_started_at=T0,
        now=T0 + timedelta(minutes=30),
        breached=False,
        budget_left_seconds=budgets.seconds_left(spend),
    )
    # THEN the test decides rather than ramping to 50 %
    assert plan == ("decide", 0, 0)


def test_a_hard_limit_breach_still_aborts_before_the_budget() -> None:
    request = make_input({"maxInstanceHours": 1})
    plan = config_plans.next_step(
        request, step_index=0, step_started_at=T0, test_started_at=T0, now=T0, breached=True, budget_left_seconds=0
    )
    assert plan[0] == "abort"


def evaluation_with(spend: ShadowSpend | None, status: str, verdict: str) -> Evaluation:
    return Evaluation.model_validate(
        {
            "at": T0,
            "stepIndex": 0,
            "stepStartedAt": T0,
            "windowStart": T0,
            "production": {},
            "shadow": {},
            "gates": [GateResult(name="min-invocations", status=status).model_dump()],
            "verdict": verdict,
            "spend": spend.model_dump(by_alias=True) if spend else None,
            "next": "decide",
            "waitSeconds": 0,
        }
    )


@pytest.mark.parametrize(
    ("mode", "status", "verdict", "action"),
    [
        ("auto", "pass", "pass", "promote"),
        ("auto", "insufficient-data", "insufficient-data", "remove"),
        ("approve", "pass", "pass", "await-approval"),
        ("report-only", "pass", "pass", "remove"),
    ],
)
def test_a_spent_budget_is_decided_by_the_gates_and_says_so(mode: str, status: str, verdict: str, action: str) -> None:
    # GIVEN a spent budget and the gates as they stand
    request = make_input({"maxInstanceHours": 1}, decisionMode=mode)
    evaluation = evaluation_with(metered(request, (30, 2)), status, verdict)
    # WHEN the test decides
    decision = config_plans.decide(request, evaluation)
    # THEN the gates decide as at the end of a bake, and the reason names the budget
    assert decision.action == action
    assert "budget spent (1.000 of 1 instance-hours)" in decision.reason
    # ... with the report-only marker still first, so the outcome reads report-only
    assert decision.reason.startswith("report-only" if mode == "report-only" else "budget spent")


def test_a_budget_not_spent_leaves_the_reason_alone() -> None:
    request = make_input({"maxInstanceHours": 10})
    decision = config_plans.decide(request, evaluation_with(metered(request, (30, 2)), "pass", "pass"))
    assert decision.reason == "all 1 gates passed"


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "named"),
    [
        ({}, "give at least one of maxInstanceHours, maxCostUsd, maxDurationMinutes"),
        ({"maxInstanceHours": 0}, "budget.maxInstanceHours"),
        ({"maxCostUsd": -1}, "budget.maxCostUsd"),
        ({"maxInstanceHours": 1, "hourlyPrices": {"g5.xlarge": 1}}, "budget.hourlyPrices.g5.xlarge"),
        ({"maxInstanceHours": 1, "hourlyPrices": {"ml.g5.xlarge": 0}}, "budget.hourlyPrices.ml.g5.xlarge"),
        ({"maxDurationMinutes": MAX_TEST_MINUTES + 1}, "budget.maxDurationMinutes"),
        ({"maxDurationMinutes": 600}, "budget.maxDurationMinutes 600 is not shorter than durationMinutes 600"),
        ({"maxInstanceHours": 1, "surprise": True}, "budget.surprise"),
    ],
)
def test_an_invalid_budget_names_the_field(budget: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidShadowTestInput, match=named.replace(".", r"\.")):
        make_input(budget)


def test_a_cost_cap_on_an_unpriced_type_is_refused_with_what_to_add() -> None:
    # GIVEN a cost cap for a type neither the input nor the table prices
    # WHEN the input is validated
    with pytest.raises(InvalidShadowTestInput) as refused:
        make_input({"maxCostUsd": 100}, candidate={"modelName": "m", "instanceType": "ml.p5.48xlarge"})
    # THEN the message says which price is missing and how to give it
    assert "budget.hourlyPrices: maxCostUsd needs the hourly price of ml.p5.48xlarge" in str(refused.value)
    assert '"hourlyPrices": {"ml.p5.48xlarge": <USD per instance-hour>}' in str(refused.value)
    # ... and the same cap with the price given is accepted
    accepted = make_input(
        {"maxCostUsd": 100, "hourlyPrices": {"ml.p5.48xlarge": 98.32}},
        candidate={"modelName": "m", "instanceType": "ml.p5.48xlarge"},
    )
    assert accepted.budget is not None
    assert accepted.budget.hourly_prices == {"ml.p5.48xlarge": 98.32}


# --- what it shows --------------------------------------------------------------------------------


def test_follow_and_the_page_show_the_spend_and_the_cap_spent() -> None:
    # GIVEN a spent cost budget at the input's price
    request = make_input({"maxCostUsd": 1, "hourlyPrices": {"ml.g4dn.xlarge": 4}})
    evaluation = evaluation_with(budgets.projected(metered(request, (8, 2)), 0), "pass", "pass")
    # WHEN follow's line and the page's section are drawn
    [line] = budgets.spend_lines(evaluation)
    html = spend_section(evaluation)
    # THEN both show hours, dollars against the cap, the share and what ran out
    assert line == ("spend: 0.267 instance-hours, $1.07/$1.00 at $4/h (input), 107% of budget; SPENT: $1.07 of $1.00")
    assert "<h2>Budget</h2>" in html
    assert "<td class='num'>$1.07</td><td class='num'>$1.00</td>" in html
    assert "Budget spent: $1.07 of $1.00" in html
    assert "107% of the budget used" in html


def test_nothing_is_shown_without_a_budget() -> None:
    evaluation = evaluation_with(None, "pass", "pass")
    assert budgets.spend_lines(evaluation) == []
    assert spend_section(evaluation) == ""
    assert spend_section(None) == ""


def test_the_longest_test_with_its_longest_waits_ends_before_the_machines_own_timeout() -> None:
    # GIVEN the longest test (MAX_TEST_MINUTES), InService waits for shadow, ramp and promotion at their
    # 240-minute maximum, a 7-day approval and a restore's patience
    definition = json.loads((REPO / "statemachine" / "shadow_test.asl.json").read_text())
    longest = timedelta(minutes=MAX_TEST_MINUTES + 3 * 240 + 7 * 24 * 60) + RESTORE_PATIENCE
    # THEN the state machine's TimeoutSeconds leaves room for all of it: a budget never outlives the machine
    assert longest < timedelta(seconds=definition["TimeoutSeconds"])
