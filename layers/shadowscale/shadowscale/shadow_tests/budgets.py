"""A shadow test's budget: what the shadow variant has spent, what it will have spent at the next evaluation,
and whether a cap has run out. Pure: the lifecycle's evaluate step feeds it the clock and the shadow's count.

Spend is counted from the first evaluation, the moment the shadow variant is InService, as instance-hours
(each interval between evaluations at the count that ran in it) and, with an hourly price, dollars. The
minutes SageMaker takes to create the shadow, and a ramp config's second fleet while it updates, are not
counted: SageMaker's bill is the authority, this is the test's own meter for stopping on time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from shadowscale.shadow_tests.models import Budget, Evaluation, ShadowSpend, ShadowTestInput
from shadowscale.shadow_tests.prices import EXAMPLE_HOURLY_PRICES_USD

PriceSource = Literal["input", "example-table"]
# Below this, what is left of a budget is spent: a Wait runs in whole seconds.
SPENT_WITHIN_SECONDS = 1.0


def hourly_price(budget: Budget | None, instance_type: str) -> tuple[float, PriceSource] | None:
    """The input's price for `instance_type`, else the example table's, else None."""
    if budget is not None and instance_type in budget.hourly_prices:
        return budget.hourly_prices[instance_type], "input"
    if instance_type in EXAMPLE_HOURLY_PRICES_USD:
        return EXAMPLE_HOURLY_PRICES_USD[instance_type], "example-table"
    return None


def budget_problem(request: ShadowTestInput) -> str | None:
    """Why a budget cannot be kept as written, for the input's validation; None if it can (or there is none)."""
    budget = request.budget
    if budget is None:
        return None
    instance_type = request.candidate.instance_type
    if budget.max_cost_usd is not None and hourly_price(budget, instance_type) is None:
        return (
            f"budget.hourlyPrices: maxCostUsd needs the hourly price of {instance_type}, which the price table"
            f' does not have: give it, e.g. "hourlyPrices": {{"{instance_type}": <USD per instance-hour>}}'
        )
    if budget.max_duration_minutes is not None and budget.max_duration_minutes >= request.duration_minutes:
        return (
            f"budget.maxDurationMinutes {budget.max_duration_minutes} is not shorter than durationMinutes"
            f" {request.duration_minutes}: it could never end the test"
        )
    return None


def accrue(
    request: ShadowTestInput,
    previous: ShadowSpend | None,
    *,
    now: datetime,
    instances: int,
    instance_type: str | None = None,
) -> ShadowSpend | None:
    """The spend at `now`: the previous spend plus the interval since it at the count that ran in it.
    `instances` is the count from now on, of `instance_type` (the candidate's unless given: a calibration's
    copy runs production's). None without a budget; the first call (no previous) starts at 0."""
    budget = request.budget
    if budget is None:
        return None
    instance_type = instance_type or request.candidate.instance_type
    if previous is None:
        since, hours = now, 0.0
    else:
        since = previous.since
        elapsed = max(0.0, (now - previous.at).total_seconds())
        hours = previous.instance_hours + previous.instances * elapsed / 3600
    price = hourly_price(budget, instance_type)
    spend = ShadowSpend(
        since=since,
        at=now,
        instance_type=instance_type,
        instances=instances,
        instance_hours=hours,
        hourly_price_usd=price[0] if price else None,
        price_source=price[1] if price else None,
        cost_usd=hours * price[0] if price else None,
        max_instance_hours=budget.max_instance_hours,
        max_cost_usd=budget.max_cost_usd,
        max_duration_minutes=budget.max_duration_minutes,
    )
    return _judged(spend)


def _left_by_cap(spend: ShadowSpend) -> dict[str, float]:
    """Seconds until each cap runs out at the current count, by the cap's name."""
    left: dict[str, float] = {}
    per_second = spend.instances / 3600
    if spend.max_instance_hours is not None:
        left["instance-hours"] = (spend.max_instance_hours - spend.instance_hours) / per_second
    if spend.max_cost_usd is not None and spend.cost_usd is not None and spend.hourly_price_usd is not None:
        left["cost"] = (spend.max_cost_usd - spend.cost_usd) / (per_second * spend.hourly_price_usd)
    if spend.max_duration_minutes is not None:
        left["duration"] = spend.max_duration_minutes * 60 - (spend.at - spend.since).total_seconds()
    return left


def seconds_left(spend: ShadowSpend | None) -> float | None:
    """Seconds until the first cap runs out (0 once one has); None without a budget."""
    if spend is None:
        return None
    left = _left_by_cap(spend)
    return max(0.0, min(left.values())) if left else None


def _judged(spend: ShadowSpend) -> ShadowSpend:
    """The spend with its share of the caps and, if one ran out, which and by how much."""
    shares = [
        used / cap
        for used, cap in (
            (spend.instance_hours, spend.max_instance_hours),
            (spend.cost_usd, spend.max_cost_usd),
            (spend.running_minutes, spend.max_duration_minutes),
        )
        if used is not None and cap is not None
    ]
    out = sorted(name for name, left in _left_by_cap(spend).items() if left < SPENT_WITHIN_SECONDS)
    return spend.model_copy(
        update={
            "share": round(max(shares), 6) if shares else None,
            "spent": "; ".join(_spent_words(spend, name) for name in out) or None,
        }
    )


def _spent_words(spend: ShadowSpend, cap: str) -> str:
    if cap == "instance-hours":
        return f"{spend.instance_hours:.3f} of {spend.max_instance_hours:g} instance-hours"
    if cap == "cost":
        return f"${spend.cost_usd or 0:.2f} of ${spend.max_cost_usd:.2f}"
    return f"{spend.running_minutes:.0f} of {spend.max_duration_minutes} minutes running"


def projected(spend: ShadowSpend | None, wait_seconds: int) -> ShadowSpend | None:
    """The spend with what it will be at the next evaluation, `wait_seconds` from now, at today's count."""
    if spend is None:
        return None
    hours = spend.instance_hours + spend.instances * wait_seconds / 3600
    return spend.model_copy(
        update={
            "projected_instance_hours": hours,
            "projected_cost_usd": hours * spend.hourly_price_usd if spend.hourly_price_usd is not None else None,
        }
    )


def decision_note(evaluation: Evaluation) -> str:
    """What a decision's reason starts with when the budget ended the test; "" otherwise."""
    spend = evaluation.spend
    return f"budget spent ({spend.spent}); " if spend is not None and spend.spent else ""


def spend_lines(evaluation: Evaluation | None) -> list[str]:
    """What the shadow spent against its budget, in one line for `shadowscale shadow follow` (none without
    a budget)."""
    spend = evaluation.spend if evaluation is not None else None
    if spend is None:
        return []
    parts = [f"{spend.instance_hours:.3f}" + (f"/{spend.max_instance_hours:g}" if spend.max_instance_hours else "")]
    parts[0] += " instance-hours"
    if spend.cost_usd is not None:
        cap = f"/${spend.max_cost_usd:.2f}" if spend.max_cost_usd else ""
        parts.append(f"${spend.cost_usd:.2f}{cap} at ${spend.hourly_price_usd:g}/h ({spend.price_source})")
    if spend.max_duration_minutes:
        parts.append(f"{spend.running_minutes:.0f}/{spend.max_duration_minutes} min")
    share = f", {spend.share:.0%} of budget" if spend.share is not None else ""
    ended = f"; SPENT: {spend.spent}" if spend.spent else ""
    return [f"spend: {', '.join(parts)}{share}{ended}"]
