"""A simulated SageMaker real-time endpoint: model servers, traffic, CloudWatch metrics, data capture.

moto stores endpoints; nothing serves requests. `SimulatedEndpoint` does, one time step at a time (60 s
by default), reading the endpoint as our code left it (the gap-filled DescribeEndpoint and
DescribeEndpointConfig: production variants with their instance counts and weights, shadow variants,
data capture):
- traffic: a `TrafficPattern` (flat, diurnal, spikes; requests/s; deterministic for its seed) is split
  across the production variants by weight; each shadow variant receives a copy of a share of the
  production requests (its weight over the production weight, at most all of them; or all of them:
  how the weight maps to the share is undocumented, so `shadow_copies` switches between the two);
- every variant, production or shadow, runs a `ModelServer`: a seeded linear model over a CSV feature
  vector, deterministic for its input (a candidate may differ in known ways: score drift, label flips,
  latency, error rates) unless it is given an `invocation_flip_rate`: then it is non-deterministic, as a
  model on GPUs or one that samples is, and answers the same input differently from one invocation to the
  next (each invocation's flip is drawn from a hash of the variant and the invocation's event id, so a
  copy of the model behind another variant flips other invocations: the noise a calibration measures),
  whose latency grows with the load per instance (M/M/1 queueing as utilisation
  approaches capacity; beyond capacity the excess fails with 5XX);
- metrics: what SageMaker publishes per variant, dimensions EndpointName + VariantName, through moto's
  PutMetricData implementation (AWS/SageMaker: Invocations, InvocationsPerInstance, ModelLatency and
  OverheadLatency as Values/Counts in microseconds, Invocation4XXErrors, Invocation5XXErrors,
  InvocationModelErrors with Sum = count and Average = rate; /aws/sagemaker/Endpoints:
  CPUUtilization, MemoryUtilization, DiskUtilization, and GPUUtilization and GPUMemoryUtilization on GPU
  instance types); no requests, no invocation metrics, as in SageMaker;
- data capture, when the endpoint's capture is started: sampled requests become capture records in S3
  through moto's PutObject implementation (so bucket notifications fire), one file per variant per
  minute under `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl`, delivered late.

For speed a step is computed in aggregate; only captured requests exist one by one, at most
`CaptureSimulation.limit_per_step` per production variant per step, and moto is called in-process
rather than through HTTP serialisation. While the endpoint is `Updating`, its variants serve as they
did when it was last `InService`: new instances take load once the update ends.

    simulation = SimulatedEndpoint("fraud-detector", TrafficPattern.flat(20)).start_at(now)
    simulation.run_until(now + timedelta(hours=1))  # inside mock_aws(); LocalCloud.simulate() does this on its clock
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

from shadowscale_localcloud.resources import ACCOUNT, REGION

# Latency distribution per step: one value per quantile band (at its midpoint), counted by band width.
# Finer in the tail, and p50/p75/p90/p95/p99 are band midpoints, so those percentiles do not jump
# between bands as request counts vary.
QUANTILE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.45, 0.55, 0.7, 0.8, 0.875, 0.925, 0.94, 0.96, 0.985, 0.995, 1.0)
MAX_QUEUEING_UTILISATION = 0.97  # beyond it latency stops growing and the excess load fails instead
SAGEMAKER = "AWS/SageMaker"
ENDPOINT_INSTANCES = "/aws/sagemaker/Endpoints"


def _unit_hash(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts`: the same input always gets the same treatment."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def _seeded(*parts: object) -> random.Random:
    """A generator fixed by `parts` (string seeds are hashed stably, unlike hash())."""
    return random.Random("\x1f".join(map(str, parts)))  # noqa: S311  (a simulation, not security)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _floor(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


# --- models ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearModel:
    """score = sigmoid(w·x + b) over a CSV feature vector, w and b drawn from `seed`; label = score ≥ 0.5."""

    seed: int = 7
    features: int = 8

    @cached_property
    def coefficients(self) -> tuple[tuple[float, ...], float]:
        rng = _seeded("linear-model", self.seed)
        return tuple(rng.uniform(-2.0, 2.0) for _ in range(self.features)), rng.uniform(-0.5, 0.5)

    def score(self, features: Sequence[float]) -> float:
        weights, bias = self.coefficients
        if len(features) != len(weights):
            raise ValueError(f"expected {len(weights)} features, got {len(features)}")
        logit = bias + sum(weight * value for weight, value in zip(weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-logit))


@dataclass(frozen=True)
class ModelServer:
    """One variant's model container. A candidate is `dataclasses.replace(production, label_flip_rate=0.05)`:
    same model, one known difference."""

    model: LinearModel = field(default_factory=LinearModel)
    score_drift: float = 0.0  # at most this much added to or taken from each score (fixed per input)
    label_flip_rate: float = 0.0  # this share of inputs (fixed per input) gets the other label
    # This share of invocations (drawn per invocation, not per input) gets the other label: non-determinism.
    invocation_flip_rate: float = 0.0
    output_content_type: str = "text/csv"  # "text/csv" → "0.734512,1"; "application/json" → {"score","label"}
    base_latency_ms: float = 20.0  # ModelLatency of a request that does not queue
    latency_spread: float = 0.25  # service time varies ±25 % around the base
    capacity_rps_per_instance: float = 40.0  # requests/s one instance serves when fully utilised
    overhead_latency_ms: float = 1.5
    client_error_rate: float = 0.0  # Invocation4XXErrors
    server_error_rate: float = 0.0  # Invocation5XXErrors
    model_error_rate: float = 0.0  # other failures (timeouts, malformed responses): InvocationModelErrors only
    vcpus_per_instance: int = 2  # CPUUtilization reaches 100 % per vCPU
    memory_utilization: float = 35.0

    def predict(self, body: str, invocation: str = "") -> tuple[float, int]:
        """(score, label) for `body`; `invocation` names this invocation (only a non-deterministic server reads
        it: the same body under another invocation may get the other label)."""
        score = self.model.score([float(value) for value in body.split(",")])
        if self.score_drift:
            score = min(1.0, max(0.0, score + self.score_drift * (2 * _unit_hash("drift", body) - 1)))
        label = int(score >= 0.5)
        if self.label_flip_rate and _unit_hash("flip", body) < self.label_flip_rate:
            label = 1 - label
        if self.invocation_flip_rate and _unit_hash("invocation-flip", invocation, body) < self.invocation_flip_rate:
            label = 1 - label
        return score, label

    def respond(self, body: str, invocation: str = "") -> str:
        score, label = self.predict(body, invocation)
        if self.output_content_type == "application/json":
            return json.dumps({"score": round(score, 6), "label": label}, separators=(",", ":"))
        return f"{score:.6f},{label}"

    def model_latency_ms(self, quantile: float, utilisation: float) -> float:
        """The latency at `quantile` of the distribution when each instance runs at `utilisation`:
        service time around the base latency plus M/M/1 queueing (a request waits with probability rho,
        then exponentially with mean base/(1-rho)), so p90 climbs steeply as rho approaches 1."""
        service = self.base_latency_ms * (1 + self.latency_spread * (2 * quantile - 1))
        rho = min(utilisation, MAX_QUEUEING_UTILISATION)
        if rho <= 0 or quantile <= 1 - rho:
            return service
        return service + self.base_latency_ms / (1 - rho) * math.log(rho / (1 - quantile))

    def overhead_latency_at(self, quantile: float) -> float:
        return self.overhead_latency_ms * (0.75 + 0.5 * quantile)


# --- traffic --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spike:
    """`extra_rps` more requests/s from `start` for `seconds`, ramping up and down over `ramp_seconds`."""

    start: datetime
    seconds: float
    extra_rps: float
    ramp_seconds: float = 60.0

    def rate_at(self, moment: datetime) -> float:
        into = (moment - self.start).total_seconds()
        if into <= 0 or into >= self.seconds:
            return 0.0
        if self.ramp_seconds <= 0:
            return self.extra_rps
        return self.extra_rps * min(1.0, into / self.ramp_seconds, (self.seconds - into) / self.ramp_seconds)


@dataclass(frozen=True)
class TrafficPattern:
    """Requests per second over time; the count in a step varies by ±`noise`, fixed by `seed`."""

    base_rps: float
    peak_rps: float | None = None  # diurnal: the rate at `peak_hour`; base_rps is then the trough
    peak_hour: float = 14.0
    timezone: str = "UTC"
    sharpness: float = 1.0  # diurnal: higher → a shorter busy day and quieter evenings
    spikes: tuple[Spike, ...] = ()
    noise: float = 0.05
    seed: int = 1

    @classmethod
    def flat(cls, rps: float, *, noise: float = 0.05, seed: int = 1) -> Self:
        return cls(base_rps=rps, noise=noise, seed=seed)

    @classmethod
    def diurnal(
        cls,
        trough_rps: float,
        peak_rps: float,
        *,
        peak_hour: float = 14.0,
        timezone: str = "UTC",
        sharpness: float = 1.0,
        noise: float = 0.05,
        seed: int = 1,
    ) -> Self:
        return cls(trough_rps, peak_rps, peak_hour, timezone, sharpness, (), noise, seed)

    @classmethod
    def spike(
        cls,
        base_rps: float,
        peak_rps: float,
        *,
        start: datetime,
        minutes: float,
        ramp_seconds: float = 60.0,
        noise: float = 0.05,
        seed: int = 1,
    ) -> Self:
        return cls(
            base_rps, spikes=(Spike(start, minutes * 60, peak_rps - base_rps, ramp_seconds),), noise=noise, seed=seed
        )

    def with_spike(self, start: datetime, minutes: float, extra_rps: float, ramp_seconds: float = 60.0) -> Self:
        return type(self)(
            self.base_rps,
            self.peak_rps,
            self.peak_hour,
            self.timezone,
            self.sharpness,
            (*self.spikes, Spike(start, minutes * 60, extra_rps, ramp_seconds)),
            self.noise,
            self.seed,
        )

    def rate_at(self, moment: datetime) -> float:
        rate = self.base_rps
        if self.peak_rps is not None:
            local = moment.astimezone(_zone(self.timezone))
            hour = local.hour + local.minute / 60 + local.second / 3600
            shape = ((1 + math.cos(2 * math.pi * (hour - self.peak_hour) / 24)) / 2) ** self.sharpness
            rate += (self.peak_rps - self.base_rps) * shape
        return rate + sum(spike.rate_at(moment) for spike in self.spikes)

    def requests_between(self, start: datetime, seconds: float) -> int:
        rng = _seeded("traffic", self.seed, start.timestamp())
        expected = self.rate_at(start + timedelta(seconds=seconds / 2)) * seconds
        if self.noise:
            expected *= 1 + self.noise * rng.uniform(-1.0, 1.0)
        whole = int(expected)
        return whole + (1 if rng.random() < expected - whole else 0)


# --- what the endpoint is set to --------------------------------------------------------------------


@dataclass(frozen=True)
class ServingVariant:
    name: str
    instances: int
    weight: float
    instance_type: str = ""  # from the endpoint config; GPU metrics only for GPU instance families


# The accelerated families (ml.g*, ml.p*) publish GPUUtilization and GPUMemoryUtilization; CPU ones do not.
GPU_INSTANCE_FAMILIES = ("ml.g", "ml.p")


@dataclass(frozen=True)
class CaptureConfig:
    """The endpoint's DataCaptureConfig as it applies to requests now."""

    sampling_percentage: float
    bucket: str
    prefix: str
    capture_input: bool
    capture_output: bool
    csv_content_types: tuple[str, ...]
    json_content_types: tuple[str, ...]

    def encoding(self, content_type: str) -> str:
        """SageMaker's rule: listed content types are kept as text, anything else is base64-encoded."""
        if content_type in self.csv_content_types:
            return "CSV"
        if content_type in self.json_content_types:
            return "JSON"
        return "BASE64"


@dataclass(frozen=True)
class ServingState:
    production: tuple[ServingVariant, ...]
    shadows: tuple[ServingVariant, ...]
    capture: CaptureConfig | None


def read_serving_state(backend: Any, endpoint_name: str) -> tuple[str, ServingState] | None:  # noqa: ANN401
    """(status, state) from the gap-filled DescribeEndpoint and DescribeEndpointConfig; None if no endpoint."""
    from moto.sagemaker.exceptions import ValidationError

    try:
        described = backend.describe_endpoint(endpoint_name)
    except ValidationError:
        return None

    try:  # DescribeEndpoint's variant summaries carry no instance type; the config's variants do
        config = backend.describe_endpoint_config(described["EndpointConfigName"])
    except ValidationError:  # the config may be deleted while the endpoint runs on
        config = {}
    instance_types = {
        entry["VariantName"]: str(entry.get("InstanceType") or "")
        for entry in [*(config.get("ProductionVariants") or []), *(config.get("ShadowProductionVariants") or [])]
    }

    def variants(entries: list[dict[str, Any]]) -> tuple[ServingVariant, ...]:
        return tuple(
            ServingVariant(
                entry["VariantName"],
                int(entry.get("CurrentInstanceCount") or 0),
                float(entry["CurrentWeight"]) if entry.get("CurrentWeight") is not None else 1.0,
                instance_types.get(entry["VariantName"], ""),
            )
            for entry in entries
        )

    summary = described.get("DataCaptureConfig") or {}
    capture = None
    if summary.get("EnableCapture") and summary.get("CaptureStatus") == "Started":
        configured = config.get("DataCaptureConfig") or {}
        modes = {option.get("CaptureMode") for option in configured.get("CaptureOptions") or []} or {"Input", "Output"}
        if "InputAndOutput" in modes:  # CaptureOption's third mode (CloudFormation's allowed values)
            modes |= {"Input", "Output"}
        headers = configured.get("CaptureContentTypeHeader") or {}
        bucket, _, prefix = summary["DestinationS3Uri"].removeprefix("s3://").partition("/")
        capture = CaptureConfig(
            sampling_percentage=float(summary.get("CurrentSamplingPercentage", 100)),
            bucket=bucket,
            prefix=prefix.strip("/"),
            capture_input="Input" in modes,
            capture_output="Output" in modes,
            csv_content_types=tuple(headers.get("CsvContentTypes") or ()),
            json_content_types=tuple(headers.get("JsonContentTypes") or ()),
        )
    state = ServingState(
        production=variants(described.get("ProductionVariants") or []),
        shadows=variants(described.get("ShadowProductionVariants") or []),
        capture=capture,
    )
    return str(described["EndpointStatus"]), state


# --- one step ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantStep:
    """What one variant did in one step; the same numbers went to CloudWatch."""

    at: datetime  # the step's start
    variant: str
    shadow: bool
    instances: int
    requests: int
    utilisation: float  # offered load per instance over its capacity
    client_errors: int
    server_errors: int
    model_errors: int  # InvocationModelErrors: every request without a 2XX (4XX, 5XX, timeouts)
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None

    @property
    def succeeded(self) -> int:
        return self.requests - self.model_errors


@dataclass(frozen=True)
class CaptureSimulation:
    """How capture files are written: SageMaker's behaviour where it is known, a choice where it is not."""

    file_seconds: int = 60  # one file per variant for each this many seconds of requests
    delivery_delay_seconds: int = 120  # a file appears this long after its last second
    limit_per_step: int = 25  # captured requests per production variant per step, at most (for speed)
    inference_id_share: float = 1.0  # share of requests whose client set an InferenceId
    shadow_shares_event_id: bool = False  # not documented: whether a shadow record repeats its twin's eventId
    input_content_type: str = "text/csv"


@dataclass(frozen=True)
class _Request:
    at: datetime
    body: str
    inference_id: str | None
    event_id: str


def _by_share(total: int, shares: Sequence[float]) -> list[int]:
    """`total` split in proportion to `shares`, whole numbers by largest remainder."""
    whole = sum(shares)
    if total <= 0 or whole <= 0:
        return [0] * len(shares)
    exact = [total * share / whole for share in shares]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


_BAND_WIDTHS = [high - low for low, high in itertools.pairwise(QUANTILE_EDGES)]
_BAND_QUANTILES = [(low + high) / 2 for low, high in itertools.pairwise(QUANTILE_EDGES)]


def _percentile(values: Sequence[float], counts: Sequence[int], percentile: float) -> float | None:
    """Nearest rank over values with counts, as CloudWatch's percentile of the published Values/Counts."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(percentile / 100 * total))
    seen = 0
    for value, count in sorted(zip(values, counts, strict=True)):
        seen += count
        if seen >= rank:
            return value
    return max(values)


@dataclass
class SimulatedEndpoint:
    """One endpoint's traffic, step by step: `start_at()`, then `run_until()` (the local cloud's clock
    calls it); `history` holds what every variant did in every step."""

    name: str
    traffic: TrafficPattern
    models: dict[str, ModelServer] = field(default_factory=dict)  # variant name → its model server
    default_model: ModelServer = field(default_factory=ModelServer)  # for variants `models` does not name
    step_seconds: int = 60
    capture: CaptureSimulation = field(default_factory=CaptureSimulation)
    seed: int = 1
    # Not documented for config-based shadow variants: how a shadow's weight maps to the share of requests
    # SageMaker copies to it. "weight-ratio": its weight over production's (what shadowscale's ramp
    # assumes); "all": every request, whatever the weight. The product must be right under both.
    shadow_copies: Literal["weight-ratio", "all"] = "weight-ratio"
    account: str = ACCOUNT
    region: str = REGION
    history: list[VariantStep] = field(default_factory=list)
    capture_files: list[str] = field(default_factory=list)  # s3://bucket/key, in delivery order
    capture_failures: list[str] = field(default_factory=list)  # files S3 refused (e.g. no such bucket)
    _next_step: datetime | None = None
    _serving: ServingState | None = None
    _pending: dict[tuple[str, datetime, str, str], list[tuple[datetime, str]]] = field(default_factory=dict)

    # --- driving it -----------------------------------------------------------------------------

    def start_at(self, moment: datetime) -> Self:
        """Steps start on the step grid at or before `moment` (minute boundaries for 60 s steps)."""
        self._next_step = _floor(moment, self.step_seconds)
        return self

    def serve(self, variant: str, model: ModelServer) -> None:
        """Put another model server behind a variant from the next step on (a new build, a fix)."""
        self.models[variant] = model

    def model_for(self, variant: str) -> ModelServer:
        return self.models.get(variant, self.default_model)

    def next_due(self) -> datetime | None:
        """When this endpoint next has something to do: the end of its next step or a capture delivery."""
        candidates = [self._file_due(window) for (_, window, _, _) in self._pending]
        if self._next_step is not None:
            candidates.append(self._next_step + timedelta(seconds=self.step_seconds))
        return min(candidates) if candidates else None

    def run_until(self, moment: datetime) -> None:
        """Run every step that ends, and deliver every capture file that is due, at or before `moment`."""
        while (due := self.next_due()) is not None and due <= moment:
            step_end = self._next_step + timedelta(seconds=self.step_seconds) if self._next_step else None
            if step_end is not None and step_end <= due:
                self.step()
            else:
                self._deliver_files(due)

    def latest(self, variant: str) -> VariantStep | None:
        return next((step for step in reversed(self.history) if step.variant == variant), None)

    # --- one step ----------------------------------------------------------------------------------

    def step(self) -> list[VariantStep]:
        if self._next_step is None:
            raise RuntimeError("call start_at() first")
        start = self._next_step
        self._next_step = start + timedelta(seconds=self.step_seconds)
        state = self.serving_state()
        if state is None or not state.production:
            return []
        rng = _seeded("endpoint", self.seed, self.name, start.timestamp())
        total = self.traffic.requests_between(start, self.step_seconds)
        shares = _by_share(total, [variant.weight for variant in state.production])
        production_weight = sum(variant.weight for variant in state.production)
        steps: list[VariantStep] = []
        invocation_metrics: list[dict[str, Any]] = []
        instance_metrics: list[dict[str, Any]] = []
        captured: list[_Request] = []
        for variant, requests in zip(state.production, shares, strict=True):
            step = self._serve(variant, requests, start, rng, invocation_metrics, instance_metrics, shadow=False)
            steps.append(step)
            if state.capture is not None:
                captured.extend(self._capture_production(state.capture, variant, step, start, rng))
        for shadow in state.shadows:
            share = min(1.0, shadow.weight / production_weight) if production_weight > 0 else 0.0
            if self.shadow_copies == "all":
                share = 1.0
            mirrored = rng.binomialvariate(total, share) if total else 0
            step = self._serve(shadow, mirrored, start, rng, invocation_metrics, instance_metrics, shadow=True)
            steps.append(step)
            if state.capture is not None:
                self._capture_shadow(state.capture, shadow, step, share, captured)
        self.publish(SAGEMAKER, invocation_metrics)
        self.publish(ENDPOINT_INSTANCES, instance_metrics)
        self.history.extend(steps)
        return steps

    def serving_state(self) -> ServingState | None:
        """The endpoint as it serves now: as described while InService, else as when it last was."""
        from moto.sagemaker.models import sagemaker_backends

        read = read_serving_state(sagemaker_backends[self.account][self.region], self.name)
        if read is None:
            self._serving = None
            return None
        status, state = read
        if status == "InService" or self._serving is None:
            self._serving = state
        return self._serving

    def _serve(
        self,
        variant: ServingVariant,
        requests: int,
        start: datetime,
        rng: random.Random,
        invocation_metrics: list[dict[str, Any]],
        instance_metrics: list[dict[str, Any]],
        *,
        shadow: bool,
    ) -> VariantStep:
        server = self.model_for(variant.name)
        capacity = variant.instances * server.capacity_rps_per_instance
        offered = requests / self.step_seconds
        utilisation = offered / capacity if capacity > 0 else (math.inf if requests else 0.0)
        overloaded = 0 if utilisation <= 1 else rng.binomialvariate(requests, 1 - 1 / utilisation)
        served = requests - overloaded
        client_errors = rng.binomialvariate(served, server.client_error_rate) if served else 0
        server_errors = rng.binomialvariate(served - client_errors, server.server_error_rate) if served else 0
        remaining = served - client_errors - server_errors
        other_errors = rng.binomialvariate(remaining, server.model_error_rate) if remaining else 0
        succeeded = remaining - other_errors
        counts = _by_share(succeeded, _BAND_WIDTHS)
        latencies_us = [round(server.model_latency_ms(q, utilisation) * 1000, 1) for q in _BAND_QUANTILES]
        overheads_us = [round(server.overhead_latency_at(q) * 1000, 1) for q in _BAND_QUANTILES]
        step = VariantStep(
            at=start,
            variant=variant.name,
            shadow=shadow,
            instances=variant.instances,
            requests=requests,
            utilisation=utilisation,
            client_errors=client_errors,
            server_errors=server_errors + overloaded,
            model_errors=client_errors + server_errors + overloaded + other_errors,
            latency_p50_ms=_in_ms(_percentile(latencies_us, counts, 50)),
            latency_p90_ms=_in_ms(_percentile(latencies_us, counts, 90)),
            latency_p99_ms=_in_ms(_percentile(latencies_us, counts, 99)),
        )
        timestamp = start.astimezone(UTC).replace(tzinfo=None)  # moto keeps metric timestamps as naive UTC
        dimensions = [{"Name": "EndpointName", "Value": self.name}, {"Name": "VariantName", "Value": variant.name}]

        def datum(name: str, unit: str, **value: Any) -> dict[str, Any]:  # noqa: ANN401
            return {"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Unit": unit, **value}

        if requests:

            def error_rate(errors: int) -> dict[str, float]:
                # One 0-or-1 sample per request, as SageMaker counts errors: Sum is the count, Average the rate.
                return {
                    "SampleCount": float(requests),
                    "Sum": float(errors),
                    "Minimum": 0.0 if errors < requests else 1.0,
                    "Maximum": 1.0 if errors else 0.0,
                }

            invocation_metrics += [
                datum("Invocations", "None", Value=float(requests)),
                datum("InvocationsPerInstance", "None", Value=requests / max(1, variant.instances)),
                datum("Invocation4XXErrors", "None", StatisticValues=error_rate(step.client_errors)),
                datum("Invocation5XXErrors", "None", StatisticValues=error_rate(step.server_errors)),
                datum("InvocationModelErrors", "None", StatisticValues=error_rate(step.model_errors)),
            ]
        if succeeded:
            kept = [i for i, count in enumerate(counts) if count]
            invocation_metrics += [
                datum(
                    "ModelLatency",
                    "Microseconds",
                    Values=[latencies_us[i] for i in kept],
                    Counts=[float(counts[i]) for i in kept],
                ),
                datum(
                    "OverheadLatency",
                    "Microseconds",
                    Values=[overheads_us[i] for i in kept],
                    Counts=[float(counts[i]) for i in kept],
                ),
            ]
        if variant.instances:
            busy = min(utilisation, 1.0)
            instance_metrics += [
                datum("CPUUtilization", "Percent", Value=server.vcpus_per_instance * (2.0 + 93.0 * busy)),
                datum("MemoryUtilization", "Percent", Value=server.memory_utilization + 10.0 * busy),
                # 0-100 % of the instance's disk used by its containers (SageMaker's CloudWatch metrics page):
                # the model's artefacts, plus a little scratch space under load.
                datum("DiskUtilization", "Percent", Value=min(100.0, 18.0 + 4.0 * busy)),
            ]
            if variant.instance_type.startswith(GPU_INSTANCE_FAMILIES):  # one GPU per instance: 0-100 %
                instance_metrics += [
                    datum("GPUUtilization", "Percent", Value=5.0 + 90.0 * busy),
                    datum("GPUMemoryUtilization", "Percent", Value=35.0 + 15.0 * busy),
                ]
        return step

    def publish(self, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        if metric_data:
            cloudwatch_backends[self.account][self.region].put_metric_data(namespace, metric_data)

    # --- data capture --------------------------------------------------------------------------------

    def _capture_production(
        self, capture: CaptureConfig, variant: ServingVariant, step: VariantStep, start: datetime, rng: random.Random
    ) -> list[_Request]:
        sampled = rng.binomialvariate(step.succeeded, capture.sampling_percentage / 100) if step.succeeded else 0
        server = self.model_for(variant.name)
        requests = []
        for _ in range(min(sampled, self.capture.limit_per_step)):
            offset_ms = rng.randrange(self.step_seconds * 1000)
            body = ",".join(f"{rng.uniform(-1.0, 1.0):.4f}" for _ in range(server.model.features))
            event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            inference_id = (
                f"req-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
                if rng.random() < self.capture.inference_id_share
                else None
            )
            requests.append(_Request(start + timedelta(milliseconds=offset_ms), body, inference_id, event_id))
        requests.sort(key=lambda request: request.at)
        for request in requests:
            line = self._record(capture, server, request, request.at, variant.name)
            self._keep_record(capture, variant.name, request.at, line)
        return requests

    def _capture_shadow(
        self, capture: CaptureConfig, shadow: ServingVariant, step: VariantStep, share: float, twins: list[_Request]
    ) -> None:
        server = self.model_for(shadow.name)
        failure_share = step.model_errors / step.requests if step.requests else 0.0
        for request in twins:
            if _unit_hash("mirror", shadow.name, request.event_id) >= share:
                continue  # this production request was not copied to the shadow
            if _unit_hash("shadow-fails", shadow.name, request.event_id) < failure_share:
                continue  # the shadow failed it: nothing to capture
            # The shadow answers after its own model latency, so a pair may straddle a file or an hour.
            answered = request.at + timedelta(milliseconds=round(server.model_latency_ms(0.5, step.utilisation)))
            event_id = (
                request.event_id if self.capture.shadow_shares_event_id else _derived_uuid("shadow", request.event_id)
            )
            twin = _Request(answered, request.body, request.inference_id, event_id)
            self._keep_record(
                capture, shadow.name, answered, self._record(capture, server, twin, answered, shadow.name)
            )

    def _record(
        self, capture: CaptureConfig, server: ModelServer, request: _Request, at: datetime, variant: str
    ) -> str:
        """One line in SageMaker's capture format."""
        return capture_line(
            capture,
            CapturedExchange(
                input_content_type=self.capture.input_content_type,
                input_body=request.body.encode(),
                output_content_type=server.output_content_type,
                output_body=server.respond(request.body, f"{variant}/{request.event_id}").encode(),
                event_id=request.event_id,
                inference_id=request.inference_id,
            ),
            at,
        )

    def keep_invocation_record(self, capture: CaptureConfig, variant: str, at: datetime, line: str) -> None:
        """A record of a request a client sent (InvokeEndpoint): into the same files as the simulated ones."""
        self._keep_record(capture, variant, at, line)

    def _keep_record(self, capture: CaptureConfig, variant: str, at: datetime, line: str) -> None:
        window = _floor(at, self.capture.file_seconds)
        self._pending.setdefault((variant, window, capture.bucket, capture.prefix), []).append((at, line))

    def _file_due(self, window: datetime) -> datetime:
        return window + timedelta(seconds=self.capture.file_seconds + self.capture.delivery_delay_seconds)

    def _deliver_files(self, due: datetime) -> None:
        from moto.s3.exceptions import S3ClientError
        from moto.s3.models import s3_backends

        backend = s3_backends[self.account]["aws"]
        for key in sorted((key for key in self._pending if self._file_due(key[1]) <= due), key=lambda k: (k[1], k[0])):
            # A write can run a function that advances the clock and delivers files itself (re-entrantly).
            pending = self._pending.pop(key, None)
            if pending is None:
                continue
            variant, window, bucket, prefix = key
            records = sorted(pending)
            first = records[0][0].astimezone(UTC)
            file_id = _derived_uuid("file", self.seed, self.name, variant, window)
            name = f"{first:%M-%S}-{first.microsecond // 1000:03d}-{file_id}.jsonl"
            object_key = "/".join(part for part in (prefix, self.name, variant, f"{first:%Y/%m/%d/%H}", name) if part)
            body = "".join(line + "\n" for _, line in records).encode()
            try:
                backend.put_object(bucket, object_key, body)
            except S3ClientError as exc:  # SageMaker drops capture it cannot write; say so rather than stop the clock
                self.capture_failures.append(f"s3://{bucket}/{object_key}: {type(exc).__name__}")
                continue
            self.capture_files.append(f"s3://{bucket}/{object_key}")


@dataclass(frozen=True)
class CapturedExchange:
    """One request and its answer as data capture sees them."""

    input_content_type: str
    input_body: bytes
    output_content_type: str
    output_body: bytes
    event_id: str
    inference_id: str | None


def capture_line(capture: CaptureConfig, exchange: CapturedExchange, at: datetime) -> str:
    """One line in SageMaker's capture format, with the halves the capture options ask for."""
    capture_data: dict[str, Any] = {}
    if capture.capture_input:
        capture_data["endpointInput"] = _payload(capture, exchange.input_content_type, exchange.input_body, "INPUT")
    if capture.capture_output:
        capture_data["endpointOutput"] = _payload(capture, exchange.output_content_type, exchange.output_body, "OUTPUT")
    metadata = {"eventId": exchange.event_id}
    if exchange.inference_id is not None:
        metadata["inferenceId"] = exchange.inference_id
    metadata["inferenceTime"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {"captureData": capture_data, "eventMetadata": metadata, "eventVersion": "0"}
    return json.dumps(record, separators=(",", ":"))


def _payload(capture: CaptureConfig, content_type: str, body: bytes, mode: str) -> dict[str, str]:
    encoding = capture.encoding(content_type)
    if encoding != "BASE64":
        try:
            return {"observedContentType": content_type, "mode": mode, "data": body.decode(), "encoding": encoding}
        except UnicodeDecodeError:  # a listed text type whose bytes are not text: kept intact as base64
            encoding = "BASE64"
    data = base64.b64encode(body).decode()
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def _derived_uuid(*parts: object) -> str:
    """A version-4 UUID fixed by `parts`: reruns write the same ids and keys."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _in_ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else microseconds / 1000
