"""InvokeEndpoint answered by the simulated endpoint, as SageMaker Runtime answers it. Targets moto==5.2.5.

moto's InvokeEndpoint returns placeholders ("body", "content_type") for any name and counts nothing.
Installed, this module replaces it (embedded mode and the moto server alike, one response class):
- the endpoint is read as our code left it (gap-filled DescribeEndpoint/DescribeEndpointConfig); an
  unknown endpoint is ValidationError "Endpoint <name> of account <account> not found.";
- an endpoint that cannot serve (Creating, OutOfService, Deleting, Failed) is refused; which error
  SageMaker gives is undocumented, so `not_in_service` switches between ValidationError and
  ModelNotReadyException (HTTP 429). Updating endpoints serve as they did when last InService
  (UpdateEndpoint: "there is no availability loss");
- the production variant is `TargetVariant` if given, else drawn by weight; the answer comes from the
  variant's model: a user function registered for the variant's SageMaker model name
  (`module:function`, taking (body, content_type)), or else the variant's simulated `ModelServer`;
- a model failure is ModelError (HTTP 424) with OriginalStatusCode, OriginalMessage, LogStreamArn;
- every request counts in the variant's AWS/SageMaker metrics as the simulated traffic counts it;
- each shadow variant gets a copy at its sampling share (the simulated endpoint's `shadow_copies`);
- data capture, when started: sampled at the endpoint's percentage, both halves written into the same
  capture files as the simulated traffic, `InferenceId` recorded as eventMetadata.inferenceId.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Self

import moto

from shadowscale_localcloud.resources import ACCOUNT, REGION
from shadowscale_localcloud.simulated_endpoint import (
    SAGEMAKER,
    CapturedExchange,
    ModelServer,
    ServingState,
    ServingVariant,
    SimulatedEndpoint,
    TrafficPattern,
    _floor,
    _unit_hash,
    capture_line,
    read_serving_state,
)

TARGET_MOTO_VERSION = "5.2.5"
MODELS_VARIABLE = "SHADOWSCALE_LOCAL_MODELS"  # "name=module:function,name2=module:function"
# DescribeEndpoint's EndpointStatus values under which the endpoint takes requests (EndpointSummary:
# "InService: Endpoint is available to process incoming requests"; updates happen without availability loss).
SERVING_STATUSES = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
NotInService = Literal["validation-error", "model-not-ready"]


@dataclass(frozen=True)
class ModelAnswer:
    """What a user model may return for full control: a status other than 2XX becomes ModelError."""

    body: bytes
    content_type: str | None = None
    status: int = 200
    custom_attributes: str | None = None


type ModelResult = bytes | tuple[bytes, str] | ModelAnswer
type ModelFunction = Callable[[bytes, str], ModelResult]


class ModelFailure(Exception):
    """A user model raises this to answer with an error status (any other exception is a 500)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def load_model_function(spec: str) -> ModelFunction:
    """`package.module:function` → the function (imported now, so a typo fails at start)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"model function {spec!r}: expected module:function")
    function = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(function):
        raise TypeError(f"model function {spec!r}: {attribute!r} is not a function of {module_name!r}")
    loaded: ModelFunction = function
    return loaded


def parse_model_assignments(values: Iterable[str]) -> dict[str, str]:
    """`model-name=module:function` items (from --model or SHADOWSCALE_LOCAL_MODELS) → {name: spec}."""
    assigned: dict[str, str] = {}
    for value in values:
        name, _, spec = value.strip().partition("=")
        if not name or not spec:
            raise ValueError(f"model assignment {value!r}: expected model-name=module:function")
        assigned[name.strip()] = spec.strip()
    return assigned


def models_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    raw = (os.environ if environ is None else environ).get(MODELS_VARIABLE, "")
    return parse_model_assignments(item for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class InvokeRequest:
    """InvokeEndpoint's input as botocore's sagemaker-runtime model places it (URI, headers, payload)."""

    endpoint_name: str
    body: bytes
    content_type: str = "application/octet-stream"
    accept: str | None = None
    custom_attributes: str | None = None
    target_variant: str | None = None
    inference_id: str | None = None


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Served:
    """One variant's answer to one request, and what CloudWatch counts for it."""

    status: int
    body: bytes
    content_type: str
    custom_attributes: str | None
    model_latency_us: float
    overhead_latency_us: float


def _error(status: int, code: str, message: str, **fields: object) -> HttpAnswer:
    # rest-json errors: botocore reads the code from x-amzn-ErrorType and modeled members from the body.
    body = json.dumps({"message": message, "Message": message, **fields}).encode()
    return HttpAnswer(status, {"x-amzn-ErrorType": code, "Content-Type": "application/json"}, body)


@dataclass
class EndpointInvocations:
    clock: Callable[[], datetime]
    simulations: list[SimulatedEndpoint]  # the local cloud's, shared: an invoked endpoint joins it
    models: dict[str, ModelFunction] = field(default_factory=dict)  # SageMaker model name → user function
    not_in_service: NotInService = "validation-error"  # undocumented: see the module docstring
    lock: threading.RLock | None = None  # the clock's lock: requests arrive on the server's threads
    seed: int = 1
    account: str = ACCOUNT
    region: str = REGION
    _rng: random.Random = field(init=False)
    _original: Any = None

    def __post_init__(self) -> None:
        self._rng = random.Random(f"invocations\x1f{self.seed}")  # noqa: S311  (a simulation, not security)

    def serve_model(self, model_name: str, function: ModelFunction | str) -> None:
        self.models[model_name] = load_model_function(function) if isinstance(function, str) else function

    # --- installation ---------------------------------------------------------------------------

    def install(self) -> Self:
        if moto.__version__ != TARGET_MOTO_VERSION:
            raise RuntimeError(f"EndpointInvocations targets moto {TARGET_MOTO_VERSION}, found {moto.__version__}")
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

        invocations = self
        self._original = SageMakerRuntimeResponse.invoke_endpoint

        def invoke_endpoint(response: SageMakerRuntimeResponse) -> tuple[int, dict[str, str], bytes]:
            answer = invocations.invoke(_request_from(response))
            # moto takes a response's status from its "status" header, not from the tuple
            return answer.status, {**answer.headers, "status": str(answer.status)}, answer.body

        SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

        if self._original is not None:
            SageMakerRuntimeResponse.invoke_endpoint = self._original  # type: ignore[method-assign]
            self._original = None

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # --- one request --------------------------------------------------------------------------------

    def invoke(self, request: InvokeRequest) -> HttpAnswer:
        with self.lock if self.lock is not None else nullcontext():
            return self._invoke(request)

    def _invoke(self, request: InvokeRequest) -> HttpAnswer:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[self.account][self.region]
        read = read_serving_state(backend, request.endpoint_name)
        if read is None:
            return _error(
                400, "ValidationError", f"Endpoint {request.endpoint_name} of account {self.account} not found."
            )
        status, _ = read
        if status not in SERVING_STATUSES:
            return self._not_in_service(request.endpoint_name, status)
        simulation = self._simulation(request.endpoint_name)
        state = simulation.serving_state()
        if state is None or not state.production:
            return self._not_in_service(request.endpoint_name, status)
        variant = self._pick(state, request.target_variant)
        if variant is None:
            return _error(
                400,
                "ValidationError",
                f"Variant {request.target_variant} not found for endpoint {request.endpoint_name}.",
            )
        model_names = _model_names(backend, request.endpoint_name)
        now = self.clock()
        served = self._serve(simulation, variant, model_names.get(variant.name), request)
        self._count(simulation, variant, served, now)
        event_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        captured = state.capture is not None and self._rng.random() * 100 < state.capture.sampling_percentage
        if captured and served.status < 300 and state.capture is not None:
            exchange = self._exchange(request, served, event_id, request.inference_id)
            simulation.keep_invocation_record(
                state.capture, variant.name, now, capture_line(state.capture, exchange, now)
            )
        self._mirror(simulation, state, model_names, request, event_id, now, captured=captured)
        if served.status >= 300:
            return self._model_error(request.endpoint_name, variant.name, served)
        headers = {"Content-Type": served.content_type, "x-Amzn-Invoked-Production-Variant": variant.name}
        if served.custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = served.custom_attributes
        return HttpAnswer(200, headers, served.body)

    def _not_in_service(self, endpoint_name: str, status: str) -> HttpAnswer:
        message = f"Endpoint {endpoint_name} of account {self.account} is not in service (status {status})."
        if self.not_in_service == "model-not-ready":
            return _error(429, "ModelNotReadyException", message)
        return _error(400, "ValidationError", message)

    def _model_error(self, endpoint_name: str, variant: str, served: _Served) -> HttpAnswer:
        kind = "client" if served.status < 500 else "server"
        original = served.body.decode(errors="replace")
        group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
        message = (
            f'Received {kind} error ({served.status}) from model with message "{original}". See '
            f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#logEventViewer:group={group} in account {self.account} for more information."
        )
        return _error(
            424,
            "ModelError",
            message,
            OriginalStatusCode=served.status,
            OriginalMessage=original,
            LogStreamArn=f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:log-stream:{variant}/local",
        )

    def _simulation(self, endpoint_name: str) -> SimulatedEndpoint:
        """The endpoint's simulated traffic, or a quiet one that only delivers the capture of requests."""
        for simulation in self.simulations:
            if simulation.name == endpoint_name:
                return simulation
        quiet = SimulatedEndpoint(endpoint_name, TrafficPattern.flat(0, noise=0.0), seed=self.seed)
        quiet.start_at(self.clock())
        self.simulations.append(quiet)
        return quiet

    def _pick(self, state: ServingState, target: str | None) -> ServingVariant | None:
        if target is not None:
            return next((variant for variant in state.production if variant.name == target), None)
        weights = [max(0.0, variant.weight) for variant in state.production]
        if sum(weights) <= 0:  # all weights zero: SageMaker's docs leave it open; serve the first
            return state.production[0]
        return self._rng.choices(state.production, weights=weights)[0]

    def _serve(
        self, simulation: SimulatedEndpoint, variant: ServingVariant, model_name: str | None, request: InvokeRequest
    ) -> _Served:
        server = simulation.model_for(variant.name)
        function = self.models.get(model_name or "")
        quantile = self._rng.random()
        overhead_us = round(server.overhead_latency_at(quantile) * 1000, 1)
        if function is not None:
            started = time.perf_counter()
            status, body, content_type, attributes = _call_user_model(function, request)
            latency_us = round((time.perf_counter() - started) * 1_000_000, 1)
            return _Served(status, body, content_type, attributes, latency_us, overhead_us)
        latest = simulation.latest(variant.name)
        latency_us = round(server.model_latency_ms(quantile, latest.utilisation if latest else 0.0) * 1000, 1)
        status, body = _simulated_answer(server, request.body, self._rng)
        # The simulated container returns the request's custom attributes, as the API reference's example does.
        return _Served(status, body, server.output_content_type, request.custom_attributes, latency_us, overhead_us)

    def _count(self, simulation: SimulatedEndpoint, variant: ServingVariant, served: _Served, now: datetime) -> None:
        """One request in the variant's metrics, shaped as SimulatedEndpoint publishes a step's requests."""
        timestamp = _floor(now, simulation.step_seconds).replace(tzinfo=None)  # moto: naive UTC
        dimensions = [
            {"Name": "EndpointName", "Value": simulation.name},
            {"Name": "VariantName", "Value": variant.name},
        ]

        def datum(name: str, unit: str, **value: Any) -> dict[str, Any]:  # noqa: ANN401
            return {"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Unit": unit, **value}

        def flag(failed: bool) -> dict[str, float]:
            sample = 1.0 if failed else 0.0
            return {"SampleCount": 1.0, "Sum": sample, "Minimum": sample, "Maximum": sample}

        metrics = [
            datum("Invocations", "None", Value=1.0),
            datum("InvocationsPerInstance", "None", Value=1.0 / max(1, variant.instances)),
            datum("Invocation4XXErrors", "None", StatisticValues=flag(400 <= served.status < 500)),
            datum("Invocation5XXErrors", "None", StatisticValues=flag(served.status >= 500)),
            datum("InvocationModelErrors", "None", StatisticValues=flag(served.status >= 300)),
        ]
        if served.status < 300:
            metrics += [
                datum("ModelLatency", "Microseconds", Values=[served.model_latency_us], Counts=[1.0]),
                datum("OverheadLatency", "Microseconds", Values=[served.overhead_latency_us], Counts=[1.0]),
            ]
        simulation.publish(SAGEMAKER, metrics)

    def _mirror(
        self,
        simulation: SimulatedEndpoint,
        state: ServingState,
        model_names: dict[str, str],
        request: InvokeRequest,
        event_id: str,
        now: datetime,
        *,
        captured: bool,
    ) -> None:
        """Copy the request to each shadow variant at its share; capture its answer when production's is."""
        production_weight = sum(variant.weight for variant in state.production)
        for shadow in state.shadows:
            share = min(1.0, shadow.weight / production_weight) if production_weight > 0 else 0.0
            if simulation.shadow_copies == "all":
                share = 1.0
            if _unit_hash("mirror", shadow.name, event_id) >= share:
                continue
            served = self._serve(simulation, shadow, model_names.get(shadow.name), request)
            self._count(simulation, shadow, served, now)
            if not captured or served.status >= 300 or state.capture is None:
                continue
            shadow_event = (
                event_id if simulation.capture.shadow_shares_event_id else str(uuid.uuid5(uuid.NAMESPACE_OID, event_id))
            )
            answered = now + timedelta(microseconds=served.model_latency_us)
            exchange = self._exchange(request, served, shadow_event, request.inference_id)
            simulation.keep_invocation_record(
                state.capture, shadow.name, answered, capture_line(state.capture, exchange, answered)
            )

    @staticmethod
    def _exchange(request: InvokeRequest, served: _Served, event_id: str, inference_id: str | None) -> CapturedExchange:
        return CapturedExchange(
            input_content_type=request.content_type,
            input_body=request.body,
            output_content_type=served.content_type,
            output_body=served.body,
            event_id=event_id,
            inference_id=inference_id,
        )


def _call_user_model(function: ModelFunction, request: InvokeRequest) -> tuple[int, bytes, str, str | None]:
    """(status, body, content type, custom attributes); an exception is the container's 500."""
    default_type = request.accept or request.content_type
    try:
        result = function(request.body, request.content_type)
    except ModelFailure as failure:
        return failure.status, str(failure).encode(), "text/plain", None
    except Exception as exc:  # any failure of the user's code is the model's error
        return 500, f"{type(exc).__name__}: {exc}".encode(), "text/plain", None
    if isinstance(result, ModelAnswer):
        return result.status, result.body, result.content_type or default_type, result.custom_attributes
    if isinstance(result, tuple):
        body, content_type = result
        return 200, bytes(body), content_type, None
    if isinstance(result, bytes | bytearray):
        return 200, bytes(result), default_type, None
    return 500, f"model returned {type(result).__name__}, not bytes".encode(), "text/plain", None


def _simulated_answer(server: ModelServer, body: bytes, rng: random.Random) -> tuple[int, bytes]:
    """The simulated container: its error rates per request, a malformed input its client error."""
    roll = rng.random()
    if roll < server.client_error_rate:
        return 400, b"simulated client error"
    if roll < server.client_error_rate + server.server_error_rate + server.model_error_rate:
        return 500, b"simulated server error"
    # A non-deterministic server draws this invocation's answer (the draw only when it needs one, so that a
    # deterministic server's requests keep their sequence).
    invocation = f"invoke/{rng.random()}" if server.invocation_flip_rate else ""
    try:
        return 200, server.respond(body.decode(), invocation).encode()
    except (ValueError, UnicodeDecodeError) as exc:
        return 400, f"the model expects {server.model.features} comma-separated numbers: {exc}".encode()


def _model_names(backend: Any, endpoint_name: str) -> dict[str, str]:  # noqa: ANN401
    """Variant name → SageMaker model name, production and shadow, from the endpoint's config."""
    from moto.sagemaker.exceptions import ValidationError

    try:
        config_name = backend.endpoints[endpoint_name].endpoint_config_name
        described = backend.describe_endpoint_config(config_name)
    except (KeyError, ValidationError):
        return {}
    entries = [*(described.get("ProductionVariants") or []), *(described.get("ShadowProductionVariants") or [])]
    return {entry["VariantName"]: entry["ModelName"] for entry in entries if entry.get("ModelName")}


def _request_from(response: Any) -> InvokeRequest:  # noqa: ANN401
    """The request as moto parsed it, headers looked up case-insensitively."""
    headers = {str(key).lower(): str(value) for key, value in dict(response.headers).items()}
    raw = getattr(response, "raw_body", None)
    body = raw if isinstance(raw, bytes) else (response.body or "").encode()
    name = response.uri_match.get("name") or response._get_param("EndpointName") or response.path.split("/")[2]
    return InvokeRequest(
        endpoint_name=str(name),
        body=body,
        content_type=headers.get("content-type") or "application/octet-stream",
        accept=headers.get("accept"),
        custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
        target_variant=headers.get("x-amzn-sagemaker-target-variant"),
        inference_id=headers.get("x-amzn-sagemaker-inference-id"),
    )
