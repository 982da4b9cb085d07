"""The report page's budget section: what the shadow variant spent against the test's budget."""

from __future__ import annotations

from html import escape

from shadowscale.shadow_tests.models import Evaluation, ShadowSpend


def _cell(value: float | None, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if unit == "$" else f"{value:,.{digits}f}{unit}"


def _rows(spend: ShadowSpend) -> list[tuple[str, str, str, str]]:
    """(what, spent, budget, projected at the next evaluation) per measure."""
    rows = [
        (
            "instance-hours",
            _cell(spend.instance_hours),
            _cell(spend.max_instance_hours),
            _cell(spend.projected_instance_hours),
        ),
    ]
    if spend.cost_usd is not None or spend.max_cost_usd is not None:
        rows.append(
            (
                "cost (USD)",
                _cell(spend.cost_usd, "$"),
                _cell(spend.max_cost_usd, "$"),
                _cell(spend.projected_cost_usd, "$"),
            )
        )
    if spend.max_duration_minutes is not None:
        rows.append(("minutes running", _cell(spend.running_minutes, digits=0), str(spend.max_duration_minutes), "-"))
    return rows


def spend_section(evaluation: Evaluation | None) -> str:
    """The section, or "" for a test without a budget."""
    spend = evaluation.spend if evaluation is not None else None
    if spend is None:
        return ""
    rows = "".join(
        f"<tr><td>{escape(what)}</td><td class='num'>{escape(spent)}</td><td class='num'>{escape(cap)}</td>"
        f"<td class='num'>{escape(ahead)}</td></tr>"
        for what, spent, cap, ahead in _rows(spend)
    )
    price = (
        f"{spend.instances} x {escape(spend.instance_type)} at ${spend.hourly_price_usd:g} per instance-hour"
        f" ({'from the input' if spend.price_source == 'input' else 'example price from the package table: edit it'})"
        if spend.hourly_price_usd is not None
        else f"{spend.instances} x {escape(spend.instance_type)}, no price known"
    )
    share = f"; {spend.share:.0%} of the budget used" if spend.share is not None else ""
    ended = f"<p class='fail'>Budget spent: {escape(spend.spent)}</p>" if spend.spent else ""
    return (
        "<h2>Budget</h2>"
        f"<p class='muted'>The shadow variant's spend since it was InService: {price}{share}.</p>"
        "<table class='budget'><tr><th>measure</th><th class='num'>spent</th><th class='num'>budget</th>"
        f"<th class='num'>at the next evaluation</th></tr>{rows}</table>{ended}"
    )
