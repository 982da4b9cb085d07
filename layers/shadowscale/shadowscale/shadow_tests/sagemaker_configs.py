"""SageMaker endpoint configs, models and UpdateEndpoint for the shadow test: its EndpointConfigs port.

The documents go to and from the endpoint models through sagemaker_documents.py; here are the calls, and
SageMaker's errors as the domain's (a retried call that finds its work done is no error)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import JsonValue

from shadowscale.shadow_tests.endpoint_models import DescribedEndpoint, EndpointConfig, ModelDefinition
from shadowscale.shadow_tests.sagemaker_documents import (
    config_of,
    config_request,
    endpoint_of,
    model_of,
    model_request,
)
from shadowscale.shared.aws_errors import error_code, error_message, raise_domain_error
from shadowscale.shared.endpoint import VariantUpdate
from shadowscale.shared.errors import EndpointConfigNotVisible, ModelNotFound, ShadowSamplingRefused
from shadowscale.shared.sagemaker import SageMakerEndpoints

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient


def _already_exists(exc: ClientError) -> bool:
    return error_code(exc) == "ValidationException" and "already exist" in error_message(exc).lower()


def _missing(exc: ClientError) -> bool:
    message = error_message(exc).lower()
    return error_code(exc) == "ValidationException" and ("could not find" in message or "not found" in message)


def _config_missing(exc: ClientError) -> bool:
    return (
        error_code(exc) == "ValidationException"
        and "could not find endpoint configuration" in error_message(exc).lower()
    )


def _endpoint_missing(exc: ClientError) -> bool:
    message = error_message(exc).lower()
    return "could not find endpoint" in message and "configuration" not in message


class SageMakerEndpointConfigs:
    def __init__(self, client: SageMakerClient) -> None:
        self._client = client

    def describe_endpoint(self, endpoint: str) -> DescribedEndpoint:
        try:
            return endpoint_of(self._client.describe_endpoint(EndpointName=endpoint))
        except ClientError as exc:
            raise_domain_error(exc, f"DescribeEndpoint {endpoint}")

    def describe_config(self, name: str) -> EndpointConfig | None:
        try:
            return config_of(self._client.describe_endpoint_config(EndpointConfigName=name))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise_domain_error(exc, f"DescribeEndpointConfig {name}")

    def create_config(self, config: EndpointConfig) -> None:
        """Idempotent: a retried task finds its config already there."""
        try:
            self._client.create_endpoint_config(**config_request(config))
        except ClientError as exc:
            if _already_exists(exc):
                return
            raise_domain_error(exc, f"CreateEndpointConfig {config.name}")

    def delete_config(self, name: str) -> bool:
        try:
            self._client.delete_endpoint_config(EndpointConfigName=name)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise_domain_error(exc, f"DeleteEndpointConfig {name}")
        return True

    def update_endpoint(
        self, endpoint: str, config_name: str, *, deployment: dict[str, JsonValue] | None = None
    ) -> None:
        """The config's variant properties and data capture, as written in it; `deployment` is the
        DeploymentConfig of a guarded promotion (promotion_guardrails.py).

        Never `RetainAllVariantProperties=true`: botocore's model lists DataCaptureConfig among the
        retained properties and excluding it is "(Not currently supported.)", so retaining could keep
        the old capture destination. Configs carry the live counts instead (see config_plans.py)."""
        try:
            extra: Any = {"DeploymentConfig": deployment} if deployment is not None else {}
            self._client.update_endpoint(
                EndpointName=endpoint, EndpointConfigName=config_name, RetainAllVariantProperties=False, **extra
            )
        except ClientError as exc:
            if _config_missing(exc):
                raise EndpointConfigNotVisible(
                    f"UpdateEndpoint {endpoint} → {config_name}: {error_message(exc)}"
                ) from exc
            raise_domain_error(exc, f"UpdateEndpoint {endpoint} → {config_name}")

    def set_variant_weight(self, endpoint: str, variant: str, weight: float) -> None:
        try:
            self._client.update_endpoint_weights_and_capacities(
                EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": variant, "DesiredWeight": weight}]
            )
        except ClientError as exc:
            busy = "in-progress" in error_message(exc).lower()
            if error_code(exc) == "ValidationException" and not busy and not _endpoint_missing(exc):
                raise ShadowSamplingRefused(
                    f"UpdateEndpointWeightsAndCapacities {endpoint}/{variant}: {error_message(exc)}"
                ) from exc
            raise_domain_error(exc, f"UpdateEndpointWeightsAndCapacities {endpoint}/{variant}")

    def set_instance_count(self, endpoint: str, variant: str, instances: int) -> None:
        SageMakerEndpoints(self._client).update_weights_and_capacities(
            endpoint, [VariantUpdate(variant=variant, instances=instances)]
        )

    def describe_model(self, name: str) -> ModelDefinition:
        try:
            return model_of(self._client.describe_model(ModelName=name))
        except ClientError as exc:
            if _missing(exc):
                raise ModelNotFound(f"model {name!r} does not exist") from exc
            raise_domain_error(exc, f"DescribeModel {name}")

    def create_model(self, model: ModelDefinition) -> None:
        try:
            self._client.create_model(**model_request(model))
        except ClientError as exc:
            if _already_exists(exc):
                return
            raise_domain_error(exc, f"CreateModel {model.name}")

    def delete_model(self, name: str) -> bool:
        try:
            self._client.delete_model(ModelName=name)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise_domain_error(exc, f"DeleteModel {name}")
        return True
