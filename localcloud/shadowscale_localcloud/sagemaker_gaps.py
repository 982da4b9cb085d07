"""What moto's SageMaker lacks for endpoint operations, filled in. Targets moto==5.2.5 exactly.

moto (5.2.5) answers UpdateEndpointWeightsAndCapacities by overwriting the weight with None when only
a count is given (and the reverse), never shows an endpoint as `Updating` (so never answers "Cannot
update in-progress endpoint"), drops `ShadowProductionVariants` from endpoint configs, shows only part
of an endpoint's data-capture state, and has no UpdateEndpoint. Installed, this module makes the
backend behave as SageMaker does:
- UpdateEndpointWeightsAndCapacities keeps what the request does not name;
- UpdateEndpoint moves the endpoint to another config: production and shadow variants, data capture;
- both take the endpoint to `Updating` for `update_seconds` of the injected clock, then `InService`;
- any update while `Updating` fails with ValidationException "Cannot update in-progress endpoint";
- endpoint configs keep `ShadowProductionVariants`; DescribeEndpoint shows the shadow variants and
  the data-capture status (`CaptureStatus`, `CurrentSamplingPercentage`);
- UpdateEndpoint honours `RetainAllVariantProperties` (live counts and weights of variants kept) and
  `ExcludeRetainedVariantProperties`; whether the live `DataCaptureConfig` is retained too is a switch
  (`retained_capture`): botocore's `VariantPropertyType` lists it among the retained properties and says
  excluding it is "(Not currently supported.)", so "kept" is the default and an exclusion naming it is
  refused; "follows-config" is the other reading;
- CreateEndpointConfig of a name that exists fails (moto overwrites it);
- a new endpoint config is not visible to DescribeEndpointConfig, UpdateEndpoint or CreateEndpoint for
  `config_visibility_seconds` of the clock (CreateEndpointConfig's note on eventually consistent reads);
- whether UpdateEndpointWeightsAndCapacities accepts a shadow variant is undocumented: a switch
  (`shadow_weight_updates`), "accepted" (sets its weight, the sampling share) or "refused"
  (ValidationException, as for a variant the endpoint's production variants do not have);
- `stall_next_update` makes the next UpdateEndpoint hang in `Updating` and then roll back to the
  previous config with a `FailureReason`, as SageMaker does when a new config never gets healthy;
- `inject_fault` makes the next N calls of an operation fail (throttling, in-progress, 5xx);
- UpdateEndpoint with a `DeploymentConfig` runs Deployment Guardrails (deployment_guardrails.py): traffic
  shifting and baking on the clock, automatic rollback when an `AutoRollbackConfiguration` alarm is in
  ALARM (`RollingBack`, then `InService` on the old config), `PendingDeploymentSummary` while it runs and
  `LastDeploymentConfig` after; switches `rollback_failure_reason`, `final_bake` and `missing_alarms` for
  what AWS leaves open.

Usage (inside `mock_aws()`):

    with SageMakerGapFill(clock=my_clock.now, update_seconds=30) as gaps:
        gaps.inject_fault("UpdateEndpointWeightsAndCapacities", "ThrottlingException", times=2)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

import moto
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker.exceptions import SagemakerClientError, ValidationError

from shadowscale_localcloud import deployment_guardrails
from shadowscale_localcloud.deployment_guardrails import (
    FinalBake,
    GuardedDeployment,
    MissingAlarms,
    RollbackFailureReason,
)

TARGET_MOTO_VERSION = "5.2.5"

_OPERATIONS = {
    "DescribeEndpoint": "describe_endpoint",
    "UpdateEndpointWeightsAndCapacities": "update_endpoint_weights_and_capacities",
    "UpdateEndpoint": "update_endpoint",
    "CreateEndpointConfig": "create_endpoint_config",
    "DeleteEndpointConfig": "delete_endpoint_config",
}


RetainedCapture = Literal["kept", "follows-config"]
ShadowWeightUpdates = Literal["accepted", "refused"]


class InjectedFault(SagemakerClientError):
    """An error a test asked for; code and message as SageMaker would send them."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


@dataclass
class _Transition:
    status: str
    until: datetime | None  # when the endpoint becomes InService again
    rollback: Callable[[], None] | None = None  # what the end of a failed update puts back


@dataclass
class _Stall:
    seconds: float
    reason: str


@dataclass
class SageMakerGapFill:
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    update_seconds: float = 0.0
    _status: dict[str, _Transition] = field(default_factory=dict)
    _faults: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _originals: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[str, int] = field(default_factory=dict)
    _shadow_variants: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # config → its shadows
    _endpoint_shadows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # endpoint → live shadows
    _stalls: dict[str, _Stall] = field(default_factory=dict)  # endpoint → its next update's failure
    failure_reasons: dict[str, str] = field(default_factory=dict)  # endpoint → its last failed update
    # The switches for what AWS leaves open (see the module docstring and the fidelity ledger).
    retained_capture: RetainedCapture = "kept"
    config_visibility_seconds: float = 0.0
    shadow_weight_updates: ShadowWeightUpdates = "accepted"
    _config_created: dict[str, datetime] = field(default_factory=dict)  # config → when it was created
    created_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # every config ever created, for tests
    # Deployment Guardrails (deployment_guardrails.py): endpoint → its guarded deployment, the last one kept.
    deployments: dict[str, GuardedDeployment] = field(default_factory=dict)
    last_deployment_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    rollback_failure_reason: RollbackFailureReason = "shown"
    final_bake: FinalBake = "wait-interval"
    missing_alarms: MissingAlarms = "refused"

    # --- controls for tests and the local cloud ------------------------------------------------

    def set_status(self, endpoint: str, status: str, *, for_seconds: float | None = None) -> None:
        """Force an endpoint's status, e.g. `Updating` for 120 s of the clock (None: until changed)."""
        until = None if for_seconds is None else self.clock() + timedelta(seconds=for_seconds)
        self._status[endpoint] = _Transition(status, until)

    def status_of(self, endpoint: str) -> str | None:
        deployment = self.deployments.get(endpoint)
        if deployment is not None and not deployment.finished:
            status = deployment.status(self.clock(), _alarm_states(deployment.endpoint_arn))
            if status is not None:
                return status
        transition = self._status.get(endpoint)
        if transition is None:
            return None
        if transition.until is not None and self.clock() >= transition.until:
            self._status.pop(endpoint)
            if transition.rollback is not None:
                transition.rollback()
            return "InService"
        return transition.status

    def stall_next_update(self, endpoint: str, seconds: float, reason: str = "health check failed") -> None:
        """The next UpdateEndpoint of `endpoint` stays Updating for `seconds`, then rolls back."""
        self._stalls[endpoint] = _Stall(seconds, reason)

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
            # The status first: the end of a rollback puts the old config back before it is described.
            status = gaps.status_of(endpoint_name) if endpoint_name in backend.endpoints else None
            described: dict[str, Any] = dict(original_describe(backend, endpoint_name))
            if status is not None:
                described["EndpointStatus"] = status
            endpoint = backend.endpoints[endpoint_name]
            described["ProductionVariants"] = [
                {"CurrentWeight": 1.0, "DesiredWeight": 1.0, **variant} for variant in described["ProductionVariants"]
            ]
            shadows = gaps._endpoint_shadows.get(endpoint_name)
            if shadows:
                described["ShadowProductionVariants"] = shadows
            if endpoint_name in gaps.failure_reasons:
                described["FailureReason"] = gaps.failure_reasons[endpoint_name]
            deployment = gaps.deployments.get(endpoint_name)
            if deployment is not None and not deployment.finished:
                described["PendingDeploymentSummary"] = {
                    "EndpointConfigName": deployment.config,
                    "StartTime": deployment.started.isoformat(),
                }
            if endpoint_name in gaps.last_deployment_configs:
                described["LastDeploymentConfig"] = gaps.last_deployment_configs[endpoint_name]
            capture = endpoint.data_capture_config or {}
            if capture:
                described["DataCaptureConfig"] = {
                    "EnableCapture": bool(capture.get("EnableCapture", False)),
                    "CaptureStatus": "Started" if capture.get("EnableCapture") else "Stopped",
                    "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 100),
                    "DestinationS3Uri": capture.get("DestinationS3Uri", ""),
                    **({"KmsKeyId": capture["KmsKeyId"]} if capture.get("KmsKeyId") else {}),
                }
            else:
                described.pop("DataCaptureConfig", None)
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
            production = gaps._update_shadow_variants(endpoint_name, desired_weights_and_capacities)
            arn = str(endpoint.arn)
            if production:
                before = {v["VariantName"]: dict(v) for v in endpoint.production_variants}
                arn = original_update(backend, endpoint_name, production)
                _keep_what_the_update_left_out(endpoint.production_variants, before)
            if gaps.update_seconds > 0:
                gaps.set_status(endpoint_name, "Updating", for_seconds=gaps.update_seconds)
            return arn

        from moto.sagemaker import responses as sagemaker_responses

        response_class = sagemaker_responses.SageMakerResponse
        original_create_config = response_class.create_endpoint_config
        original_describe_config = backend_class.describe_endpoint_config
        original_create_endpoint = backend_class.create_endpoint
        self._originals.update(
            {
                "create_endpoint_config@response": original_create_config,
                "describe_endpoint_config": original_describe_config,
                "create_endpoint": original_create_endpoint,
            }
        )

        def create_endpoint_config(response: Any) -> Any:  # noqa: ANN401
            gaps._fail_if_asked("CreateEndpointConfig")
            name = response._get_param("EndpointConfigName")
            existing = response.sagemaker_backend.endpoint_configs.get(name)
            if existing is not None:  # moto would overwrite it; SageMaker refuses
                raise ValidationError(
                    message=f'Cannot create already existing endpoint configuration "{existing.arn}".'
                )
            result = original_create_config(response)
            gaps._config_created[name] = gaps.clock()
            gaps.created_configs[name] = {
                key: response._get_param(key)
                for key in ("ProductionVariants", "ShadowProductionVariants", "DataCaptureConfig")
            }
            shadows = response._get_param("ShadowProductionVariants")
            if shadows:
                gaps._shadow_variants[response._get_param("EndpointConfigName")] = shadows
            return result

        def describe_endpoint_config(
            backend: sagemaker_models.SageMakerModelBackend, endpoint_config_name: str
        ) -> dict[str, Any]:
            if gaps._not_yet_visible(endpoint_config_name):
                raise ValidationError(message=f'Could not find endpoint configuration "{endpoint_config_name}".')
            described: dict[str, Any] = dict(original_describe_config(backend, endpoint_config_name))
            if endpoint_config_name in gaps._shadow_variants:
                described["ShadowProductionVariants"] = gaps._shadow_variants[endpoint_config_name]
            return described

        def create_endpoint(backend: sagemaker_models.SageMakerModelBackend, **kwargs: Any) -> Any:  # noqa: ANN401
            config_name = str(kwargs.get("endpoint_config_name", ""))
            if gaps._not_yet_visible(config_name):
                raise ValidationError(message=f'Could not find endpoint configuration "{config_name}".')
            endpoint = original_create_endpoint(backend, **kwargs)
            _keep_zero_weights(endpoint.production_variants, backend.endpoint_configs[config_name].production_variants)
            gaps._endpoint_shadows[endpoint.endpoint_name] = _variant_states(
                gaps._shadow_variants.get(endpoint.endpoint_config_name, [])
            )
            return endpoint

        def update_endpoint(response: Any) -> Any:  # noqa: ANN401
            from moto.core.responses import ActionResult

            gaps._fail_if_asked("UpdateEndpoint")
            backend = response.sagemaker_backend
            name = response._get_param("EndpointName")
            config_name = response._get_param("EndpointConfigName")
            endpoint = backend.endpoints.get(name)
            if endpoint is None:
                raise ValidationError(message=f'Could not find endpoint "{name}".')
            config = backend.endpoint_configs.get(config_name)
            if config is None or gaps._not_yet_visible(config_name):
                raise ValidationError(message=f'Could not find endpoint configuration "{config_name}".')
            if gaps.status_of(name) not in (None, "InService"):
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            previous = (
                endpoint.endpoint_config_name,
                endpoint.production_variants,
                endpoint.data_capture_config,
                gaps._endpoint_shadows.get(name, []),
            )
            deployment_config = response._get_param("DeploymentConfig")
            _refuse_what_guardrails_refuse(endpoint, config, deployment_config, gaps.missing_alarms)
            live = {variant["VariantName"]: variant for variant in endpoint.production_variants}
            endpoint.endpoint_config_name = config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            _keep_zero_weights(endpoint.production_variants, config.production_variants)
            retain = str(response._get_param("RetainAllVariantProperties", False)).lower() == "true"
            excluded = {
                str(entry.get("VariantPropertyType"))
                for entry in response._get_param("ExcludeRetainedVariantProperties") or []
            }
            if "DataCaptureConfig" in excluded:
                raise ValidationError(
                    message="Excluding DataCaptureConfig from retained variant properties is not supported."
                )
            if retain:
                retained_keys = {
                    "DesiredInstanceCount": ("CurrentInstanceCount", "DesiredInstanceCount"),
                    "DesiredWeight": ("CurrentWeight", "DesiredWeight"),
                }
                for variant in endpoint.production_variants:
                    kept = live.get(variant["VariantName"], {})
                    for property_type, keys in retained_keys.items():
                        for key in keys if property_type not in excluded else ():
                            if kept.get(key) is not None:
                                variant[key] = kept[key]
            if not (retain and gaps.retained_capture == "kept"):
                endpoint.data_capture_config = config.data_capture_config
            gaps._endpoint_shadows[name] = _variant_states(gaps._shadow_variants.get(config_name, []))
            gaps.failure_reasons.pop(name, None)
            stall = gaps._stalls.pop(name, None)
            if stall is not None:

                def roll_back(endpoint: Any = endpoint, previous: Any = previous, stall: _Stall = stall) -> None:  # noqa: ANN401
                    gaps._put_back(endpoint, previous)
                    gaps.failure_reasons[name] = stall.reason

                gaps._status[name] = _Transition(
                    "Updating", gaps.clock() + timedelta(seconds=stall.seconds), rollback=roll_back
                )
            elif deployment_config:
                gaps._start_guarded(endpoint, config_name, deployment_config, config.production_variants, previous)
            elif gaps.update_seconds > 0:
                gaps.set_status(name, "Updating", for_seconds=gaps.update_seconds)
            return ActionResult({"EndpointArn": endpoint.arn})

        original_delete_config = backend_class.delete_endpoint_config
        self._originals["delete_endpoint_config"] = original_delete_config

        def delete_endpoint_config(backend: sagemaker_models.SageMakerModelBackend, endpoint_config_name: str) -> None:
            gaps._fail_if_asked("DeleteEndpointConfig")
            original_delete_config(backend, endpoint_config_name)
            gaps._shadow_variants.pop(endpoint_config_name, None)

        backend_class.delete_endpoint_config = delete_endpoint_config  # type: ignore[method-assign,assignment]
        response_class.create_endpoint_config = create_endpoint_config  # type: ignore[method-assign,assignment]
        response_class.update_endpoint = update_endpoint  # type: ignore[attr-defined]
        backend_class.describe_endpoint_config = describe_endpoint_config  # type: ignore[method-assign,assignment]
        backend_class.create_endpoint = create_endpoint  # type: ignore[method-assign,assignment]
        backend_class.describe_endpoint = describe_endpoint  # type: ignore[method-assign,assignment]
        backend_class.update_endpoint_weights_and_capacities = update_endpoint_weights_and_capacities  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        from moto.sagemaker import responses as sagemaker_responses

        backend_class = sagemaker_models.SageMakerModelBackend
        for name, original in self._originals.items():
            if name.endswith("@response"):
                setattr(sagemaker_responses.SageMakerResponse, name.removesuffix("@response"), original)
            else:
                setattr(backend_class, name, original)
        if hasattr(sagemaker_responses.SageMakerResponse, "update_endpoint"):
            delattr(sagemaker_responses.SageMakerResponse, "update_endpoint")
        self._originals = {}

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    def _put_back(self, endpoint: Any, previous: Any) -> None:  # noqa: ANN401  (moto's endpoint)
        """The endpoint as it was before an update: its config, variants, capture and shadow variants."""
        config_before, variants_before, capture_before, shadows_before = previous
        endpoint.endpoint_config_name = config_before
        endpoint.production_variants = variants_before
        endpoint.data_capture_config = capture_before
        self._endpoint_shadows[str(endpoint.endpoint_name)] = shadows_before

    def _start_guarded(
        self,
        endpoint: Any,  # noqa: ANN401
        config_name: str,
        deployment_config: dict[str, Any],
        variants: list[dict[str, Any]],
        previous: tuple[Any, Any, Any, Any],
    ) -> None:
        """The deployment's phases from now on; the old config comes back if it rolls back."""
        name = str(endpoint.endpoint_name)
        first = variants[0]
        try:
            phases, timeout = deployment_guardrails.schedule(
                deployment_config,
                start=self.clock(),
                provision_seconds=self.update_seconds,
                instances=int(first.get("InitialInstanceCount") or 1),
                instance_type=str(first.get("InstanceType") or ""),
                final_bake=self.final_bake,
            )
        except deployment_guardrails.GuardrailsRefused as refused:
            self._put_back(endpoint, previous)
            raise ValidationError(message=str(refused)) from refused

        def roll_back(reason: str) -> None:
            self._put_back(endpoint, previous)
            if reason:
                self.failure_reasons[name] = reason

        alarms = tuple(
            str(alarm["AlarmName"])
            for alarm in (deployment_config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])
        )
        self.deployments[name] = GuardedDeployment(
            endpoint_arn=str(endpoint.arn),
            config=config_name,
            started=self.clock(),
            phases=phases,
            alarms=alarms,
            deadline=self.clock() + timedelta(seconds=timeout),
            rollback_seconds=self.update_seconds,
            roll_back=roll_back,
            rollback_failure_reason=self.rollback_failure_reason,
        )
        self.last_deployment_configs[name] = deployment_config

    def _update_shadow_variants(self, endpoint_name: str, desired: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply the entries naming shadow variants (moto knows none), or refuse them as the switch says; the
        entries for production variants are left for moto."""
        shadows = {variant["VariantName"]: variant for variant in self._endpoint_shadows.get(endpoint_name, [])}
        named = [entry for entry in desired if entry["VariantName"] in shadows]
        if named and self.shadow_weight_updates == "refused":
            names = [entry["VariantName"] for entry in named]
            raise ValidationError(
                message=f"The variant(s) {names} are not production variants of endpoint {endpoint_name!r}."
            )
        for entry in named:
            shadow = shadows[entry["VariantName"]]
            for key, current in (("DesiredWeight", "CurrentWeight"), ("DesiredInstanceCount", "CurrentInstanceCount")):
                if entry.get(key) is not None:
                    shadow[key] = shadow[current] = entry[key]
        return [entry for entry in desired if entry["VariantName"] not in shadows]

    def _not_yet_visible(self, config_name: str) -> bool:
        created = self._config_created.get(config_name)
        return created is not None and self.clock() < created + timedelta(seconds=self.config_visibility_seconds)

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


def _refuse_what_guardrails_refuse(
    endpoint: Any,  # noqa: ANN401
    config: Any,  # noqa: ANN401
    deployment_config: dict[str, Any] | None,
    missing_alarms: MissingAlarms,
) -> None:
    """SageMaker's ValidationException for a DeploymentConfig it documents it refuses (none: nothing to check)."""
    if not deployment_config:
        return
    alarm_state = _alarm_states(str(endpoint.arn))
    try:
        deployment_guardrails.validate(
            deployment_config,
            old_variants=[str(variant["VariantName"]) for variant in endpoint.production_variants],
            new_variants=config.production_variants,
            alarm_exists=lambda alarm: missing_alarms == "ignored" or alarm_state(alarm) is not None,
        )
    except deployment_guardrails.GuardrailsRefused as refused:
        raise ValidationError(message=str(refused)) from refused


def _alarm_states(endpoint_arn: str) -> Callable[[str], str | None]:
    """An alarm's state in the endpoint's account and Region (None: no such alarm), from moto's CloudWatch."""
    from moto.cloudwatch.models import cloudwatch_backends

    _, _, _, region, account, _ = endpoint_arn.split(":", 5)

    def state(name: str) -> str | None:
        alarm = cloudwatch_backends[account][region].alarms.get(name)
        return str(alarm.state_value) if alarm is not None else None

    return state


def _keep_what_the_update_left_out(variants: list[dict[str, Any]], before: dict[str, dict[str, Any]]) -> None:
    """A weight or instance count the update did not name keeps the value it had (moto leaves it unset)."""
    for variant in variants:
        previous = before[variant["VariantName"]]
        for desired, current, fallback in (
            ("DesiredWeight", "CurrentWeight", "InitialVariantWeight"),
            ("DesiredInstanceCount", "CurrentInstanceCount", "InitialInstanceCount"),
        ):
            if variant.get(desired) is None:
                kept = previous.get(desired) or previous.get(current) or previous.get(fallback)
                variant[desired] = kept
                variant[current] = kept


def _keep_zero_weights(variants: list[dict[str, Any]], configured: list[dict[str, Any]]) -> None:
    """moto drops an InitialVariantWeight of 0 (a falsy test); SageMaker shows it as the variant's weight."""
    zero = {entry["VariantName"] for entry in configured if entry.get("InitialVariantWeight") == 0}
    for variant in variants:
        if variant["VariantName"] in zero:
            variant["CurrentWeight"] = variant["DesiredWeight"] = 0.0


def _variant_states(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How DescribeEndpoint shows variants created from config entries."""
    return [
        {
            "VariantName": variant["VariantName"],
            "CurrentInstanceCount": variant.get("InitialInstanceCount", 1),
            "DesiredInstanceCount": variant.get("InitialInstanceCount", 1),
            "CurrentWeight": variant.get("InitialVariantWeight", 1.0),
            "DesiredWeight": variant.get("InitialVariantWeight", 1.0),
        }
        for variant in variants
    ]
