"""A calibrated test's noise floor and its candidate side by side, said one way everywhere: the report page,
the SNS message and `shadowscale shadow follow` (noise_calibration.py measures and judges)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from shadowscale.shadow_tests import noise_calibration
from shadowscale.shadow_tests.models import Evaluation, GateResult, NoiseFloor
from shadowscale.shadow_tests.report_gates import interval_text

# (gate, AgreementStats attribute, what is compared)
_AGREEMENT = (
    ("exact-match-excess", "exact_match_rate", "disagreement (exact)"),
    ("within-tolerance-excess", "within_tolerance_rate", "disagreement (beyond tolerance)"),
)


@dataclass(frozen=True)
class NoiseRow:
    what: str
    noise: str
    candidate: str
    judged: str  # the excess (or relative ratio) with its interval, against its limit
    status: str


def _share(mismatches: int | None, paired: int) -> str:
    if mismatches is None or paired <= 0:
        return "-"
    return f"{mismatches / paired:.3%} ({mismatches:,} of {paired:,})"


def _judged(gate: GateResult, signed: bool) -> str:
    interval = interval_text(gate) or "-"
    if signed and gate.observed is not None and gate.observed >= 0:
        interval = f"+{interval}"
    return f"{interval} vs {gate.threshold:g}" if gate.threshold is not None else interval


def rows(evaluation: Evaluation | None) -> list[NoiseRow]:
    """One row per calibrated gate of the evaluation; none for a test without calibration."""
    if evaluation is None or evaluation.noise is None:
        return []
    noise, gates = evaluation.noise, {gate.name: gate for gate in evaluation.gates}
    found: list[NoiseRow] = []
    agreement = evaluation.agreement if evaluation.phase == "candidate" else None
    paired = agreement.paired if agreement is not None else 0
    for name, rate_attribute, what in _AGREEMENT:
        gate = gates.get(name)
        if gate is None:
            continue
        rate = getattr(agreement, rate_attribute) if agreement is not None else None
        candidate = noise_calibration.mismatches(rate, paired)
        found.append(
            NoiseRow(
                what=what,
                noise=_share(noise_calibration.noise_mismatches(noise, rate_attribute), noise.paired),
                candidate=_share(candidate, paired),
                judged=_judged(gate, signed=True),
                status=gate.status,
            )
        )
    for entry in noise.latency:
        gate = gates.get(f"latency-{entry.percentile}-ratio")
        if gate is None or entry.median is None:
            continue
        spread = (
            f"[{entry.lower:.4g}, {entry.upper:.4g}]" if entry.lower is not None and entry.upper is not None else ""
        )
        found.append(
            NoiseRow(
                what=f"latency {entry.percentile} ratio (median per minute)",
                noise=f"{entry.median:.4g} {spread} over {entry.minutes} min".replace("  ", " "),
                candidate="relative to the noise",
                judged=_judged(gate, signed=False),
                status=gate.status,
            )
        )
    return found


def _phase(noise: NoiseFloor) -> str:
    return (
        f"the production model against a copy of itself (variant {noise.variant}) from"
        f" {noise.started_at:%Y-%m-%d %H:%M} to {noise.at:%H:%M} UTC: {noise.invocations:,.0f} copy invocations,"
        f" {noise.paired:,} pairs diffed"
    )


def lines(evaluation: Evaluation | None) -> list[str]:
    """Plain-text lines (for follow and the SNS message); none without calibration."""
    if evaluation is None or evaluation.noise is None:
        return []
    noise = evaluation.noise
    if evaluation.phase == "noise":
        return [f"noise (A/A) calibrating: {_phase(noise)}"]
    found = [f"noise (A/A) vs candidate: {_phase(noise)}"]
    found += [
        f"  {row.status:<17} {row.what}: noise {row.noise}; candidate {row.candidate}; judged {row.judged}"
        for row in rows(evaluation)
    ]
    return found


def noise_section(evaluation: Evaluation | None) -> str:
    """The report page's section, or "" for a test without calibration."""
    if evaluation is None or evaluation.noise is None:
        return ""
    noise = evaluation.noise
    body = "".join(
        f"<tr class='{escape(row.status)}'><td>{escape(row.what)}</td><td class='num'>{escape(row.noise)}</td>"
        f"<td class='num'>{escape(row.candidate)}</td><td class='num'>{escape(row.judged)}</td>"
        f"<td>{escape(row.status)}</td></tr>"
        for row in rows(evaluation)
    )
    return (
        "<h2>Noise calibration (A/A)</h2>"
        f"<p class='muted'>First {escape(_phase(noise))}. The candidate's disagreement is judged in excess of"
        " that noise (Newcombe interval of the difference), its latency ratios divided by the A/A median"
        " ratio.</p>"
        "<table class='noise'><tr><th>measure</th><th class='num'>noise (A/A)</th><th class='num'>candidate</th>"
        f"<th class='num'>excess or relative [interval] vs limit</th><th>status</th></tr>{body}</table>"
    )
