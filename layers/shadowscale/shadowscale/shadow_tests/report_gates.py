"""How a gate's estimate and interval read, the same in the HTML report, SNS and `shadowscale shadow follow`:
"0.981 [0.972, 0.988] 95 % Wilson"."""

from __future__ import annotations

from shadowscale.shadow_tests.models import GateResult


def number(value: float | None) -> str:
    if value is None:
        return ""
    # Counts in full (10,930, not 1.093e+04); ratios and rates to four significant digits.
    return f"{value:,.0f}" if value.is_integer() else f"{value:.4g}"


def interval_text(gate: GateResult) -> str:
    """The estimate with its interval, confidence and method; an unbounded side reads as -inf / inf."""
    estimate = number(gate.observed)
    if gate.confidence is None:  # a count, or a window average with no interval
        return estimate
    lower = "-inf" if gate.lower is None else number(gate.lower)
    upper = "inf" if gate.upper is None else number(gate.upper)
    return f"{estimate} [{lower}, {upper}] {gate.confidence * 100:g} % {gate.method or ''}".rstrip()
