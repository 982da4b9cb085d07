"""What moto's SageMaker lacks for endpoint operations, filled in. Targets moto==5.2.5 exactly.

moto (5.2.5) answers UpdateEndpointWeightsAndCapacities by overwriting the weight with None when only
a count is given (and the reverse), never shows an endpoint as `Updating`, and so never answers
"Cannot update in-progress endpoint". Installed, this module makes the backend behave as SageMaker does:
- UpdateEndpointWeightsAndCapacities keeps what the request does not name, takes the endpoint to
  `Updating` for `update_seconds` of the injected clock, then `InService`;
- any update while `Updating` fails with ValidationException "Cannot update in-progress endpoint";
- `inject_fault` makes the next N calls of an operation fail (throttling, in-progress, 5xx).

Usage (inside `mock_aws()`):

    with SageMakerGapFill(clock=my_clock.now, update_seconds=30) as gaps:
        gaps.inject_fault("UpdateEndpointWeightsAndCapacities", "ThrottlingException", times=2)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import moto
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker.exceptions import SagemakerClientError, ValidationError

TARGET_MOTO_VERSION = "5.2.5"

_OPERATIONS = {
    "DescribeEndpoint": "describe_endpoint",
    "UpdateEndpointWeightsAndCapacities": "update_endpoint_weights_and_capacities",
}


class InjectedFault(SagemakerClientError):
    """An error a test asked for; code and message as SageMaker would send them."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


@dataclass
class _Transition:
    status: str
    until: datetime | None  # when the endpoint becomes InService again


@dataclass
class SageMakerGapFill:
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    update_seconds: float = 0.0
    _status: dict[str, _Transition] = field(default_factory=dict)
    _faults: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _originals: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[str, int] = field(default_factory=dict)

    # --- controls for tests and the local cloud ------------------------------------------------

    def set_status(self, endpoint: str, status: str, *, for_seconds: float | None = None) -> None:
        """Force an endpoint's status, e.g. `Updating` for 120 s of the clock (None: until changed)."""
        until = None if for_seconds is None else self.clock() + timedelta(seconds=for_seconds)
        self._status[endpoint] = _Transition(status, until)

    def status_of(self, endpoint: str) -> str | None:
        transition = self._status.get(endpoint)
        if transition is None:
            return None
        if transition.until is not None and self.clock() >= transition.until:
            self._status.pop(endpoint)
            return "InService"
        return transition.status

    def inject_fault(self, operation: str, code: str, message: str | None = None, *, times: int = 1) -> None:
        """The next `times` calls of `operation` fail with `code` (e.g. ThrottlingException)."""
        if operation not in _OPERATIONS:
            raise ValueError(f"operation {operation!r} is not one of {sorted(_OPERATIONS)}")
        text = message or {
            "ThrottlingException": "Rate exceeded",
            "ValidationException": "Cannot update in-progress endpoint",
        }.get(code, "We encountered an internal error. Please try again.")
        self._faults.setdefault(operation, []).extend([(code, text)] * times)

    # --- installation ---------------------------------------------------------------------------

    def install(self) -> Self:
        if moto.__version__ != TARGET_MOTO_VERSION:
            raise RuntimeError(f"SageMakerGapFill targets moto {TARGET_MOTO_VERSION}, found {moto.__version__}")
        backend_class = sagemaker_models.SageMakerModelBackend
        gaps = self

        original_describe = backend_class.describe_endpoint
        original_update = backend_class.update_endpoint_weights_and_capacities
        self._originals = {
            "describe_endpoint": original_describe,
            "update_endpoint_weights_and_capacities": original_update,
        }

        def describe_endpoint(backend: sagemaker_models.SageMakerModelBackend, endpoint_name: str) -> dict[str, Any]:
            gaps._fail_if_asked("DescribeEndpoint")
            described: dict[str, Any] = dict(original_describe(backend, endpoint_name))
            status = gaps.status_of(endpoint_name)
            if status is not None:
                described["EndpointStatus"] = status
            return described

        def update_endpoint_weights_and_capacities(
            backend: sagemaker_models.SageMakerModelBackend,
            endpoint_name: str,
            desired_weights_and_capacities: list[dict[str, Any]],
        ) -> str:
            gaps._fail_if_asked("UpdateEndpointWeightsAndCapacities")
            endpoint = backend.endpoints.get(endpoint_name)
            if endpoint is None:  # moto's own error for an unknown endpoint
                missing: str = original_update(backend, endpoint_name, desired_weights_and_capacities)
                return missing
            if gaps.status_of(endpoint_name) not in (None, "InService"):
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            before = {v["VariantName"]: dict(v) for v in endpoint.production_variants}
            arn: str = original_update(backend, endpoint_name, desired_weights_and_capacities)
            for variant in endpoint.production_variants:
                previous = before[variant["VariantName"]]
                for desired, current, fallback in (
                    ("DesiredWeight", "CurrentWeight", "InitialVariantWeight"),
                    ("DesiredInstanceCount", "CurrentInstanceCount", "InitialInstanceCount"),
                ):
                    if variant.get(desired) is None:
                        kept = previous.get(desired) or previous.get(current) or previous.get(fallback)
                        variant[desired] = kept
                        variant[current] = kept
            if gaps.update_seconds > 0:
                gaps.set_status(endpoint_name, "Updating", for_seconds=gaps.update_seconds)
            return arn

        backend_class.describe_endpoint = describe_endpoint  # type: ignore[method-assign,assignment]
        backend_class.update_endpoint_weights_and_capacities = update_endpoint_weights_and_capacities  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        backend_class = sagemaker_models.SageMakerModelBackend
        for name, original in self._originals.items():
            setattr(backend_class, name, original)
        self._originals = {}

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    def _fail_if_asked(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            queued = self._faults.get(operation)
            fault = queued.pop(0) if queued else None
        if fault is not None:
            code, message = fault
            if code == "ValidationException":
                raise ValidationError(message=message)
            raise InjectedFault(code, message)
