"""Pure decisions of a shadow test: the configs it creates, the gates, the ramp, the verdict.

No boto3 here: the task steps (lifecycle.py) feed these functions what the adapters read. The configs are
EndpointConfig models; the `*_request` functions give the CreateEndpointConfig requests they become, which
is what the dry-run report shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import JsonValue

from shadowscale.shadow_tests import budgets, noise_calibration, statistics
from shadowscale.shadow_tests.endpoint_models import DescribedEndpoint, EndpointConfig, LiveCapture
from shadowscale.shadow_tests.models import (
    AgreementStats,
    Decision,
    DecisionMode,
    EndpointSnapshot,
    Evaluation,
    GateResult,
    Gates,
    MinuteLatencies,
    NextStep,
    NoiseFloor,
    ShadowTestInput,
    ShadowTestPlan,
    VariantStats,
    Verdict,
)
from shadowscale.shadow_tests.statistics import Interval, judge
from shadowscale.shadow_tests.time_limits import seconds_until
from shadowscale.shared.diff_contract import CAPTURE_ROOT, DiffConfig

# Variant properties an endpoint config entry may carry that we copy as they are.
_VARIANT_KEYS = (
    "VariantName",
    "ModelName",
    "InitialInstanceCount",
    "InstanceType",
    "InitialVariantWeight",
    "AcceleratorType",
    "CoreDumpConfig",
    "ServerlessConfig",
    "VolumeSizeInGB",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
    "EnableSSMAccess",
    "ManagedInstanceScaling",
    "RoutingConfig",
    "InferenceAmiVersion",
)


def shadow_weight(production_weight: float, percent: float) -> float:
    """SageMaker copies to a shadow variant the share of requests its weight is of production's."""
    return round(max(production_weight, 1e-6) * percent / 100.0, 6)


def _production_entry(snapshot: EndpointSnapshot) -> dict[str, JsonValue]:
    """The production variant as it runs now (the autopilot may have moved it off the config's count)."""
    variant = {key: value for key, value in snapshot.production_variant.items() if key in _VARIANT_KEYS}
    name = snapshot.production_variant_name
    if name in snapshot.current_instances and "ServerlessConfig" not in variant:
        variant["InitialInstanceCount"] = snapshot.current_instances[name]
    if name in snapshot.current_weights:
        variant["InitialVariantWeight"] = snapshot.current_weights[name]
    return variant


def diff_config(plan: ShadowTestPlan, snapshot: EndpointSnapshot, data_bucket: str) -> DiffConfig | None:
    """How the response-diff pipeline compares this test's answers; None when its capture goes elsewhere
    than the stack's bucket (the pipeline is notified only of capture/<test>/ there)."""
    if plan.capture_s3_uri != f"s3://{data_bucket}/{CAPTURE_ROOT}/{plan.test_id}":
        return None
    return DiffConfig.for_test(
        plan.test_id,
        plan.endpoint,
        snapshot.production_variant_name,
        plan.request.candidate.variant_name,
        plan.request.comparison,
    )


def noise_diff_config(plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> DiffConfig:
    """How the diff pipeline compares the A/A phase: as the candidate's answers, under the phase's own id (so
    its capture prefix and summary are its own) and the copy's variant name."""
    return DiffConfig.for_test(
        plan.noise_test_id,
        plan.endpoint,
        snapshot.production_variant_name,
        plan.noise_variant_name,
        plan.request.comparison,
    )


def capture_config(
    plan: ShadowTestPlan, snapshot: EndpointSnapshot, destination: str | None = None
) -> dict[str, JsonValue]:
    """Data capture of requests and responses, for production and shadow alike, into the test's prefix (or
    `destination`: the A/A phase's)."""
    capture = plan.request.data_capture
    config: dict[str, JsonValue] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": capture.sampling_percent,
        "DestinationS3Uri": destination or plan.capture_s3_uri,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv", "text/plain"],
            "JsonContentTypes": ["application/json", "application/jsonlines"],
        },
    }
    kms = capture.kms_key_id or (str(snapshot.data_capture.get("KmsKeyId")) if snapshot.data_capture else None)
    if kms and kms != "None":
        config["KmsKeyId"] = kms
    return config


def shadow_config(plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> EndpointConfig:
    """Production variant as it is + the candidate as a shadow + data capture for both."""
    production = _production_entry(snapshot)
    candidate = plan.request.candidate
    first_step = plan.request.steps[0]
    return EndpointConfig(
        name=plan.shadow_config_name,
        production_variants=(production,),
        shadow_variants=(
            {
                "VariantName": candidate.variant_name,
                "ModelName": plan.candidate_model_name,
                "InstanceType": candidate.instance_type,
                "InitialInstanceCount": candidate.instance_count,
                "InitialVariantWeight": shadow_weight(_weight(production), first_step.percent),
            },
        ),
        data_capture=capture_config(plan, snapshot),
        kms_key_id=snapshot.kms_key_id,
        tags={"shadowscale:test": plan.test_id, "shadowscale:temporary": "true"},
    )


def noise_config(plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> EndpointConfig:
    """The A/A phase: production as it is + a copy of the production model (its ModelName and instance type,
    the candidate's count) as the shadow + data capture into the phase's own prefix."""
    assert plan.noise_config_name is not None, "a calibrated test names its noise config"
    production = _production_entry(snapshot)
    return EndpointConfig(
        name=plan.noise_config_name,
        production_variants=(production,),
        shadow_variants=(
            {
                "VariantName": plan.noise_variant_name,
                "ModelName": production["ModelName"],
                "InstanceType": production.get("InstanceType", plan.request.candidate.instance_type),
                "InitialInstanceCount": plan.request.candidate.instance_count,
                "InitialVariantWeight": shadow_weight(_weight(production), plan.request.calibration_percent),
            },
        ),
        data_capture=capture_config(plan, snapshot, plan.noise_capture_s3_uri),
        kms_key_id=snapshot.kms_key_id,
        tags={"shadowscale:test": plan.test_id, "shadowscale:temporary": "true"},
    )


def ramp_config(
    plan: ShadowTestPlan, snapshot: EndpointSnapshot, step_index: int, production_instances: int | None
) -> EndpointConfig:
    """The shadow config with step `step_index`'s sampling, at the production variant's live count."""
    config = shadow_config(plan, snapshot)
    production = dict(config.production_variants[0])
    if production_instances is not None and "ServerlessConfig" not in production:
        production["InitialInstanceCount"] = production_instances
    shadow = dict(config.shadow_variants[0])
    shadow["InitialVariantWeight"] = shadow_weight(_weight(production), plan.request.steps[step_index].percent)
    return config.model_copy(
        update={
            "name": plan.ramp_config_name(step_index),
            "production_variants": (production,),
            "shadow_variants": (shadow,),
        }
    )


def mismatches(config: EndpointConfig, endpoint: DescribedEndpoint) -> list[str]:
    """What the live endpoint does not have of what its config asks for: production and shadow variants, and
    data capture (on/off, destination, sampling)."""
    found: list[str] = []
    for label, wanted_names, live_names in (
        ("production variants", config.production_variant_names, endpoint.variant_names),
        ("shadow variants", config.shadow_variant_names, tuple(live.name for live in endpoint.shadow_variants)),
    ):
        wanted, live = sorted(wanted_names), sorted(live_names)
        if wanted != live:
            found.append(f"{label}: asked for {wanted}, live {live}")
    return found + _capture_mismatches(config, endpoint.data_capture or LiveCapture())


def _capture_mismatches(config: EndpointConfig, live: LiveCapture) -> list[str]:
    wanted_on = config.capture_enabled
    if wanted_on != live.enabled:
        return [f"data capture: asked {'on' if wanted_on else 'off'}, live {'on' if live.enabled else 'off'}"]
    if not wanted_on:
        return []
    found: list[str] = []
    wanted_uri, live_uri = config.capture_destination.rstrip("/"), live.destination.rstrip("/")
    if wanted_uri != live_uri:
        found.append(f"data capture destination: asked {wanted_uri}, live {live_uri}")
    wanted_share, live_share = config.capture_sampling_percent, live.sampling_percent
    if wanted_share is not None and live_share is not None and wanted_share != live_share:
        found.append(f"data capture sampling: asked {wanted_share} %, live {live_share} %")
    return found


def promoted_config(
    plan: ShadowTestPlan, snapshot: EndpointSnapshot, production_instances: int | None = None
) -> EndpointConfig:
    """The former shadow becomes the only production variant; capture goes back to what it was.

    Its count: the one the test asks for, else production's as it is now (the autopilot may have scaled it
    out during the test), else production's at the snapshot."""
    candidate = plan.request.candidate
    instances = (
        plan.request.promote_instance_count
        or production_instances
        or snapshot.current_instances.get(snapshot.production_variant_name, candidate.instance_count)
    )
    return EndpointConfig(
        name=plan.promoted_config_name,
        production_variants=(
            {
                "VariantName": promoted_variant_name(plan, snapshot),
                "ModelName": plan.candidate_model_name,
                "InstanceType": candidate.instance_type,
                "InitialInstanceCount": instances,
                "InitialVariantWeight": 1.0,
            },
        ),
        data_capture=_original_capture(snapshot.data_capture) if snapshot.data_capture else None,
        kms_key_id=snapshot.kms_key_id,
        tags={"shadowscale:test": plan.test_id, "shadowscale:promoted": "true"},
    )


def promoted_variant_name(plan: ShadowTestPlan, snapshot: EndpointSnapshot) -> str:
    """The promoted variant's name: the candidate's, except in a guarded promotion, where SageMaker requires
    the new config to keep the old one's variant name (Deployment Guardrails, Exclusions)."""
    if plan.request.promotion.guardrails is not None:
        return snapshot.production_variant_name
    return plan.request.candidate.variant_name


def _original_capture(data_capture: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """The snapshot's DataCaptureConfig as CreateEndpointConfig takes it (the rest is read-only)."""
    return {key: value for key, value in data_capture.items() if key in _CAPTURE_KEYS}


_CAPTURE_KEYS = (
    "EnableCapture",
    "InitialSamplingPercentage",
    "DestinationS3Uri",
    "KmsKeyId",
    "CaptureOptions",
    "CaptureContentTypeHeader",
)


def original_config(snapshot: EndpointSnapshot) -> EndpointConfig:
    """The endpoint's own config, under its own name, as the snapshot recorded it: for a restore that finds
    it deleted while the test ran, and to check the endpoint once it is back."""
    return EndpointConfig(
        name=snapshot.config_name,
        production_variants=tuple(
            {key: value for key, value in variant.items() if key in _VARIANT_KEYS}
            for variant in snapshot.production_variants
        ),
        data_capture=_original_capture(snapshot.data_capture) if snapshot.data_capture else None,
        kms_key_id=snapshot.kms_key_id,
        tags={"shadowscale:restored-from-snapshot": snapshot.taken_at.isoformat()},
    )


def _weight(variant: dict[str, JsonValue]) -> float:
    weight = variant.get("InitialVariantWeight", 1.0)
    return float(weight) if isinstance(weight, int | float) else 1.0


def production_weight(snapshot: EndpointSnapshot) -> float:
    return _weight(_production_entry(snapshot))


# --- gates --------------------------------------------------------------------------------------
#
# Every gate decides from an interval (shadow_tests/statistics.py), not from its point estimate: pass when
# the whole interval is on the good side of the threshold, fail when it is wholly on the bad side, and
# "insufficient-data" when it straddles the threshold (no evidence either way yet).


def _confidences(request: ShadowTestInput) -> tuple[float, float]:
    """(the final decision's confidence, each early look's): with early stopping on, the error allowed is
    split in two (Bonferroni), and the early half again between the ramp's steps, each of which restarts its
    sequence of looks; so the test as a whole decides wrongly with at most 1 - confidence."""
    alpha = 1 - request.gates.confidence
    if not request.gates.early_stop.enabled:
        return request.gates.confidence, request.gates.confidence
    return 1 - alpha / 2, 1 - alpha / 2 / len(request.steps)


def _interval_gate(
    name: str,
    threshold: float | None,
    interval: Interval | None,
    *,
    detail: str = "",
    missing: str = "no datapoints",
    digits: int = 4,
    at_least: bool = False,
) -> GateResult | None:
    """One gate: not configured (None), no data, or its interval against its ceiling (floor if `at_least`)."""
    if threshold is None:
        return None
    if interval is None or math.isnan(interval.estimate):
        return GateResult(name=name, status="insufficient-data", threshold=threshold, detail=missing)
    judgement = judge(interval, threshold, at_least=at_least)
    if judgement == "inconclusive":
        detail = f"{detail}; the interval straddles the threshold: not enough evidence yet".lstrip("; ")
    return GateResult(
        name=name,
        status="insufficient-data" if judgement == "inconclusive" else judgement,
        observed=round(interval.estimate, digits),
        threshold=threshold,
        detail=detail,
        lower=statistics.finite_or_none(interval.lower, digits),
        upper=statistics.finite_or_none(interval.upper, digits),
        confidence=interval.confidence,
        method=interval.method,
    )


def _point_gate(
    name: str, threshold: float | None, observed: float | None, *, detail: str, missing: str, digits: int
) -> GateResult | None:
    """A ceiling on one window average, which CloudWatch gives without the samples an interval needs."""
    if threshold is None:
        return None
    if observed is None:
        return GateResult(name=name, status="insufficient-data", threshold=threshold, detail=missing)
    return GateResult(
        name=name,
        status="pass" if observed <= threshold else "fail",
        observed=round(observed, digits),
        threshold=threshold,
        detail=detail,
        method="point (a window average: no interval)",
    )


def _ratio_gate(
    name: str,
    minutes: tuple[tuple[float, float], ...],
    window: tuple[float | None, float | None],
    limit: float | None,
    *,
    confidence: float,
    sequential: bool,
    noise: NoiseFloor | None = None,
) -> GateResult | None:
    usable = [(shadow, production) for shadow, production in minutes if shadow > 0 and production > 0]
    if not usable:
        return _interval_gate(name, limit, None, missing="no per-minute latency datapoints of both variants")
    relative_to = ""
    if noise is not None:
        floor = noise.latency_at(name.split("-")[1])
        if floor is None or floor.median is None or floor.median <= 0:
            return _interval_gate(name, limit, None, missing="the A/A phase measured no latency ratio to judge against")
        usable = list(noise_calibration.relative_minutes(tuple(usable), floor.median))
        relative_to = f", each divided by the A/A median ratio {floor.median:.3f}"
    interval = (statistics.ratio_median_sequence if sequential else statistics.ratio_median_interval)(
        usable, confidence
    )
    shadow, production = window
    overall = "" if shadow is None or production is None else f"; window shadow {shadow:.1f} ms / production"
    overall += "" if shadow is None or production is None else f" {production:.1f} ms"
    detail = f"median of {len(usable)} per-minute shadow/production ratios{relative_to}{overall}"
    return _interval_gate(name, limit, interval, detail=detail)


def _count(value: float, ceiling: float) -> int:
    return max(0, min(round(value), round(ceiling)))


def _delta_gate(
    name: str,
    shadow: VariantStats,
    production: VariantStats,
    attribute: str,
    limit: float | None,
    *,
    confidence: float,
    sequential: bool,
) -> GateResult | None:
    shadow_rate = shadow.rate(getattr(shadow, attribute))
    production_rate = production.rate(getattr(production, attribute))
    if shadow_rate is None or production_rate is None:
        return _interval_gate(name, limit, None, missing="no invocations")
    counts = (
        _count(getattr(shadow, attribute), shadow.invocations),
        round(shadow.invocations),
        _count(getattr(production, attribute), production.invocations),
        round(production.invocations),
    )
    interval = (statistics.difference_sequence if sequential else statistics.newcombe_difference)(*counts, confidence)
    detail = f"shadow {shadow_rate:.4%} vs production {production_rate:.4%}"
    return _interval_gate(name, limit, interval, detail=detail, digits=6)


def _overhead_gate(shadow: VariantStats, production: VariantStats, limit: float | None) -> GateResult | None:
    delta, detail = None, ""
    if shadow.overhead_ms is not None and production.overhead_ms is not None:
        delta = shadow.overhead_ms - production.overhead_ms
        detail = f"shadow {shadow.overhead_ms:.2f} ms vs production {production.overhead_ms:.2f} ms"
    return _point_gate(
        "overhead-latency-delta", limit, delta, detail=detail, missing="no overhead datapoints", digits=3
    )


def _ceiling_gate(name: str, observed: float | None, limit: float | None, unit: str) -> GateResult | None:
    detail = "" if observed is None else f"{observed:.2f}{unit}"
    return _point_gate(name, limit, observed, detail=detail, missing="no datapoints", digits=4)


def _agreement_gate(
    name: str,
    agreement: AgreementStats | None,
    rate: float | None,
    minimum: float | None,
    what: str,
    *,
    confidence: float,
    sequential: bool,
) -> GateResult | None:
    if agreement is None or rate is None or agreement.paired <= 0:
        return _interval_gate(name, minimum, None, missing=f"no {what} yet", at_least=True)
    # The summary gives rates over its pairs; the counts behind them are whole numbers.
    successes = _count(rate * agreement.paired, agreement.paired)
    interval = (statistics.bernoulli_sequence if sequential else statistics.wilson)(
        successes, agreement.paired, confidence
    )
    detail = f"{successes:,} of {agreement.paired:,} {what}"
    return _interval_gate(name, minimum, interval, detail=detail, digits=6, at_least=True)


def _excess_gate(
    name: str,
    agreement: AgreementStats | None,
    attribute: str,
    minimum: float | None,
    noise: NoiseFloor,
    *,
    confidence: float,
    sequential: bool,
) -> GateResult | None:
    """The calibrated agreement gate: the candidate's disagreement in excess of the A/A noise floor's, at most
    1 - minimum (noise_calibration.py)."""
    if minimum is None:
        return None
    tolerance = round(1 - minimum, 9)
    rate = getattr(agreement, attribute) if agreement else None
    floor = noise_calibration.noise_mismatches(noise, attribute)
    if floor is None or noise.paired < noise.min_pairs:
        missing = f"the A/A phase diffed {noise.paired:,} pairs; calibration.minPairs is {noise.min_pairs:,}"
        return _interval_gate(name, tolerance, None, missing=missing)
    mismatches = noise_calibration.mismatches(rate, agreement.paired) if agreement else None
    if agreement is None or mismatches is None or agreement.paired <= 0:
        return _interval_gate(name, tolerance, None, missing="no candidate pairs diffed yet")
    interval = noise_calibration.excess_disagreement(
        mismatches, agreement.paired, floor, noise.paired, confidence, sequential=sequential
    )
    detail = (
        f"candidate disagreed on {mismatches:,} of {agreement.paired:,} pairs"
        f" ({mismatches / agreement.paired:.3%}), the A/A noise on {floor:,} of {noise.paired:,}"
        f" ({floor / noise.paired:.3%}); excess allowed {tolerance:.3%}"
    )
    return _interval_gate(name, tolerance, interval, detail=detail, digits=6)


def _count_gates(gates: Gates, shadow: VariantStats, agreement: AgreementStats | None) -> list[GateResult | None]:
    results: list[GateResult | None] = [
        GateResult(
            name="min-invocations",
            status="pass" if shadow.invocations >= gates.min_invocations else "insufficient-data",
            observed=shadow.invocations,
            threshold=gates.min_invocations,
            detail="shadow invocations in the window",
        )
    ]
    if gates.min_paired_responses > 0:
        paired = agreement.paired if agreement else 0
        if agreement is None:
            detail = "request pairs diffed: no diff summary yet"
        else:
            # The gate's count is the summary's at evaluation; a report written later may count more pairs.
            as_of = agreement.summary_updated_at.isoformat() if agreement.summary_updated_at else "unknown time"
            detail = f"request pairs in the diff summary of {as_of} ({'final' if agreement.final else 'provisional'})"
        results.append(
            GateResult(
                name="min-paired-responses",
                status="pass" if paired >= gates.min_paired_responses else "insufficient-data",
                observed=paired,
                threshold=gates.min_paired_responses,
                detail=detail,
            )
        )
    return results


def evaluate_gates(
    request: ShadowTestInput,
    production: VariantStats,
    shadow: VariantStats,
    agreement: AgreementStats | None,
    latencies: MinuteLatencies | None = None,
    *,
    sequential: bool = False,
    noise: NoiseFloor | None = None,
) -> tuple[tuple[GateResult, ...], Verdict]:
    """Every configured gate over the window. `sequential`: with the always-valid intervals of the early looks
    (confidence sequences) instead of the fixed-sample intervals of the final decision. `noise`: a calibrated
    test's A/A floor, which the agreement and latency gates are then judged relative to."""
    gates = request.gates
    final, early = _confidences(request)
    confidence = early if sequential else final
    minutes = latencies or MinuteLatencies()
    results = _count_gates(gates, shadow, agreement)
    results += [
        _ratio_gate(
            f"latency-{percentile}-ratio",
            getattr(minutes, percentile),
            (getattr(shadow, f"latency_{percentile}_ms"), getattr(production, f"latency_{percentile}_ms")),
            getattr(gates.latency, f"{percentile}_ratio"),
            confidence=confidence,
            sequential=sequential,
            noise=noise,
        )
        for percentile in ("p50", "p90", "p99")
    ]
    results.append(_overhead_gate(shadow, production, gates.overhead_latency_max_delta_ms))
    results += [
        _delta_gate(name, shadow, production, attribute, limit, confidence=confidence, sequential=sequential)
        for name, attribute, limit in (
            ("4xx-rate-delta", "errors_4xx", gates.error_rates.max_4xx_delta),
            ("5xx-rate-delta", "errors_5xx", gates.error_rates.max_5xx_delta),
            ("model-error-rate-delta", "model_errors", gates.error_rates.max_model_error_delta),
        )
    ]
    results += [
        _ceiling_gate("shadow-cpu", shadow.cpu_percent, gates.utilization.max_cpu_percent, " %"),
        _ceiling_gate("shadow-memory", shadow.memory_percent, gates.utilization.max_memory_percent, " %"),
    ]
    if noise is not None:
        results += [
            _excess_gate(name, agreement, attribute, minimum, noise, confidence=confidence, sequential=sequential)
            for name, attribute, minimum in (
                ("exact-match-excess", "exact_match_rate", gates.agreement.min_exact_match_rate),
                ("within-tolerance-excess", "within_tolerance_rate", gates.agreement.min_within_tolerance_rate),
            )
        ]
    results += [
        _agreement_gate(
            name,
            agreement,
            getattr(agreement, attribute) if agreement else None,
            minimum,
            what,
            confidence=confidence,
            sequential=sequential,
        )
        for name, attribute, minimum, what in (
            ("exact-match-rate", "exact_match_rate", gates.agreement.min_exact_match_rate, "pairs identical"),
            (
                "within-tolerance-rate",
                "within_tolerance_rate",
                gates.agreement.min_within_tolerance_rate,
                "pairs within tolerance",
            ),
        )
        if noise is None
    ]
    decided = tuple(result for result in results if result is not None)
    if shadow.invocations < gates.min_invocations:
        # A handful of requests says nothing about latency percentiles or error rates: judge later.
        too_few = f"fewer than {gates.min_invocations} shadow invocations"
        decided = tuple(
            gate.model_copy(update={"status": "insufficient-data", "detail": f"{too_few}; {gate.detail}"})
            if gate.status == "fail" and gate.name in _STATISTICAL
            else gate
            for gate in decided
        )
    return decided, verdict_of(decided)


_STATISTICAL = frozenset(
    {
        "latency-p50-ratio",
        "latency-p90-ratio",
        "latency-p99-ratio",
        "overhead-latency-delta",
        "4xx-rate-delta",
        "5xx-rate-delta",
        "model-error-rate-delta",
        "shadow-cpu",
        "shadow-memory",
    }
)


def verdict_of(gates: tuple[GateResult, ...]) -> Verdict:
    if any(gate.status == "fail" for gate in gates):
        return "fail"
    if any(gate.status == "insufficient-data" for gate in gates):
        return "insufficient-data"
    return "pass"


@dataclass(frozen=True)
class EarlyDecision:
    """The always-valid gates decided before the test's end: its gates, verdict and the report's reason."""

    gates: tuple[GateResult, ...]
    verdict: Verdict
    reason: str


def early_decision(
    request: ShadowTestInput,
    production: VariantStats,
    shadow: VariantStats,
    agreement: AgreementStats | None,
    latencies: MinuteLatencies | None,
    *,
    step_index: int,
    noise: NoiseFloor | None = None,
) -> EarlyDecision | None:
    """Whether this look may end the test now: the confidence sequences of every gate fail one gate (with
    earlyStop.onFailure) or pass them all (with earlyStop.onPass). Looking at every evaluation does not raise
    the chance of a wrong decision: each sequence holds the truth at all looks at once."""
    stop = request.gates.early_stop
    if not stop.enabled:
        return None
    gates, verdict = evaluate_gates(request, production, shadow, agreement, latencies, sequential=True, noise=noise)
    confidence = _confidences(request)[1]
    where = f"step {step_index + 1} of {len(request.steps)}"
    if verdict == "fail" and stop.on_failure:
        failing = ", ".join(gate.name for gate in gates if gate.status == "fail")
        reason = f"stopped early at {where}: always-valid {confidence:.2%} intervals fail {failing}"
    elif verdict == "pass" and stop.on_pass:
        reason = f"stopped early at {where}: always-valid {confidence:.2%} intervals pass all {len(gates)} gates"
    else:
        return None
    return EarlyDecision(gates=gates, verdict=verdict, reason=reason)


def hard_limit_breach(request: ShadowTestInput, production: VariantStats, shadow: VariantStats) -> str | None:
    """Checked on the last evaluation period only: a breach anywhere in the test ends it."""
    limits = request.hard_limits
    if limits.max_shadow_error_rate is not None:
        rate = shadow.rate(shadow.errors_5xx + shadow.model_errors)
        if rate is not None and rate > limits.max_shadow_error_rate:
            return f"shadow error rate {rate:.2%} above the hard limit {limits.max_shadow_error_rate:.2%}"
    if limits.max_latency_p99_ratio is not None and shadow.latency_p99_ms and production.latency_p99_ms:
        ratio = shadow.latency_p99_ms / production.latency_p99_ms
        if ratio > limits.max_latency_p99_ratio:
            return f"shadow p99 latency {ratio:.2f}x production, above the hard limit {limits.max_latency_p99_ratio}x"
    return None


# --- progress -----------------------------------------------------------------------------------


def next_step(
    request: ShadowTestInput,
    *,
    step_index: int,
    step_started_at: datetime,
    test_started_at: datetime,
    now: datetime,
    breached: bool,
    budget_left_seconds: float | None = None,
    stopped_early: bool = False,
) -> tuple[NextStep, int, int]:
    """(what comes next, the step index it runs in, seconds until the next evaluation); `stopped_early`: the
    always-valid intervals decided (early_decision), so the test goes to its decision now."""
    period = request.evaluation_period_minutes * 60
    if breached:
        return "abort", step_index, 0
    if stopped_early:
        return "decide", step_index, 0
    test_end = test_started_at + timedelta(minutes=request.duration_minutes)
    if now >= test_end:
        return "decide", step_index, 0
    if budget_left_seconds is not None:  # a spent budget ends the test as its end would; no wait overruns it
        if budget_left_seconds < budgets.SPENT_WITHIN_SECONDS:
            return "decide", step_index, 0
        test_end = min(test_end, now + timedelta(seconds=budget_left_seconds))
    steps = request.steps
    step_end = step_started_at + timedelta(minutes=steps[step_index].bake_minutes)
    if now >= step_end:
        if step_index + 1 < len(steps):
            following_end = now + timedelta(minutes=steps[step_index + 1].bake_minutes)
            return "ramp", step_index + 1, seconds_until(now, min(following_end, test_end), period)
        return "decide", step_index, 0
    return "bake", step_index, seconds_until(now, min(step_end, test_end), period)


def decide(request: ShadowTestInput, evaluation: Evaluation) -> Decision:
    if evaluation.hard_limit_breached:
        return Decision(verdict="fail", action="remove", reason=f"hard limit: {evaluation.hard_limit_breached}")
    if evaluation.phase == "noise":
        # Ended (a spent budget) before the candidate ever ran: its gates measured the copy, not the candidate.
        reason = budgets.decision_note(evaluation) + "ended during the noise calibration: the candidate never ran"
        return Decision(verdict="insufficient-data", action="remove", reason=reason)
    failing = [gate.name for gate in evaluation.gates if gate.status == "fail"]
    missing = [gate.name for gate in evaluation.gates if gate.status == "insufficient-data"]
    if evaluation.verdict == "pass":
        reason = f"all {len(evaluation.gates)} gates passed"
    elif evaluation.verdict == "fail":
        reason = f"failed gates: {', '.join(failing)}"
    else:
        reason = f"insufficient data for: {', '.join(missing)}"
    if evaluation.early_stop:
        reason = f"{evaluation.early_stop}; {reason}"
    reason = budgets.decision_note(evaluation) + reason
    if request.decision_mode is DecisionMode.REPORT_ONLY:
        return Decision(verdict=evaluation.verdict, action="remove", reason=f"report-only mode; {reason}")
    if request.decision_mode is DecisionMode.APPROVE:
        return Decision(verdict=evaluation.verdict, action="await-approval", reason=reason)
    return Decision(
        verdict=evaluation.verdict, action="promote" if evaluation.verdict == "pass" else "remove", reason=reason
    )
