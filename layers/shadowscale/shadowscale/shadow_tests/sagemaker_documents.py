"""SageMaker's request and response documents, turned into the shadow test's endpoint models and back.

The half of the SageMaker adapter (sagemaker_configs.py) that needs no client: it is also how the dry-run
report shows the requests a test would send, in the shape SageMaker receives them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from shadowscale.shadow_tests.endpoint_models import (
    DescribedEndpoint,
    EndpointConfig,
    LiveCapture,
    LiveVariant,
    ModelContainer,
    ModelDefinition,
)


def jsonable(value: Any) -> Any:  # noqa: ANN401
    """boto3 hands back datetimes and Decimals; what the test keeps travels as JSON."""
    loaded: Any = json.loads(json.dumps(value, default=str))
    return loaded


def _count(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _live_variant(variant: Mapping[str, Any]) -> LiveVariant:
    weight = variant.get("CurrentWeight")
    return LiveVariant(
        name=str(variant.get("VariantName")),
        current_instances=_count(variant.get("CurrentInstanceCount")),
        desired_instances=_count(variant.get("DesiredInstanceCount")),
        current_weight=float(weight) if weight is not None else None,
    )


def _live_capture(capture: Mapping[str, Any] | None) -> LiveCapture | None:
    if not capture:
        return None
    share = capture.get("CurrentSamplingPercentage")
    return LiveCapture(
        enabled=bool(capture.get("EnableCapture")),
        destination=str(capture.get("DestinationS3Uri", "")),
        sampling_percent=int(share) if share is not None else None,
    )


def endpoint_of(described: Mapping[str, Any]) -> DescribedEndpoint:
    """A DescribeEndpoint response."""
    return DescribedEndpoint(
        name=str(described.get("EndpointName", "")),
        status=str(described.get("EndpointStatus")),
        config_name=str(described.get("EndpointConfigName")),
        failure_reason=described.get("FailureReason"),
        production_variants=tuple(_live_variant(v) for v in described.get("ProductionVariants") or ()),
        shadow_variants=tuple(_live_variant(v) for v in described.get("ShadowProductionVariants") or ()),
        data_capture=_live_capture(described.get("DataCaptureConfig")),
    )


def config_of(described: Mapping[str, Any]) -> EndpointConfig:
    """A DescribeEndpointConfig response (or a CreateEndpointConfig request)."""
    clean = jsonable(dict(described))
    return EndpointConfig(
        name=str(clean.get("EndpointConfigName", "")),
        production_variants=tuple(clean.get("ProductionVariants") or ()),
        shadow_variants=tuple(clean.get("ShadowProductionVariants") or ()),
        data_capture=clean.get("DataCaptureConfig") or None,
        kms_key_id=clean.get("KmsKeyId"),
        tags={str(tag["Key"]): str(tag["Value"]) for tag in clean.get("Tags") or ()},
    )


def _tags(tags: Mapping[str, str]) -> list[dict[str, JsonValue]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def config_request(config: EndpointConfig) -> dict[str, Any]:
    """The CreateEndpointConfig request for `config`."""
    request: dict[str, Any] = {
        "EndpointConfigName": config.name,
        "ProductionVariants": [dict(variant) for variant in config.production_variants],
    }
    if config.shadow_variants:
        request["ShadowProductionVariants"] = [dict(variant) for variant in config.shadow_variants]
    if config.data_capture:
        request["DataCaptureConfig"] = dict(config.data_capture)
    if config.tags:
        request["Tags"] = _tags(config.tags)
    if config.kms_key_id:
        request["KmsKeyId"] = config.kms_key_id
    return request


def model_of(described: Mapping[str, Any]) -> ModelDefinition:
    """A DescribeModel response: its primary container (or first container) and what a copy of it needs."""
    container = dict(described.get("PrimaryContainer") or (described.get("Containers") or [{}])[0])
    if "ModelDataUrl" in container:
        # DescribeModel shows the ModelDataSource SageMaker derived from ModelDataUrl; CreateModel takes one.
        container.pop("ModelDataSource", None)
    image = container.pop("Image", None)
    environment = container.pop("Environment", None)
    return ModelDefinition(
        name=str(described.get("ModelName", "")),
        execution_role_arn=described.get("ExecutionRoleArn"),
        container=ModelContainer(
            image=image,
            environment=dict(environment) if environment is not None else None,
            properties=jsonable(container),
        ),
        vpc_config=jsonable(described["VpcConfig"]) if described.get("VpcConfig") else None,
    )


def model_request(model: ModelDefinition) -> dict[str, Any]:
    """The CreateModel request for `model`."""
    container: dict[str, Any] = dict(model.container.properties)
    if model.container.image is not None:
        container["Image"] = model.container.image
    if model.container.environment is not None:
        container["Environment"] = dict(model.container.environment)
    request: dict[str, Any] = {"ModelName": model.name, "PrimaryContainer": container}
    if model.execution_role_arn is not None:
        request["ExecutionRoleArn"] = model.execution_role_arn
    if model.tags:
        request["Tags"] = _tags(model.tags)
    if model.vpc_config:
        request["VpcConfig"] = dict(model.vpc_config)
    return request
