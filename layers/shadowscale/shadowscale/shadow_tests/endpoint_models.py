"""What a shadow test reads of SageMaker and asks it to create, as its ports speak: the endpoint as it runs,
an endpoint config, a model. The adapter (sagemaker_configs.py, through sagemaker_documents.py) turns the
API's documents into these and back; nothing past the port reads an API key.

A config's variant entries and its data capture stay in the shape CreateEndpointConfig takes them (JSON,
without the datetimes and Decimals boto3 hands back): the snapshot records them whole, so that a restore
recreates every property the endpoint had, including the ones this code never reads.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

IN_SERVICE = "InService"
UPDATING = "Updating"
FAILED_STATUSES = frozenset({"Failed", "UpdateRollbackFailed"})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class LiveVariant(_Frozen):
    """A variant as DescribeEndpoint shows it (a serverless variant has no instance counts)."""

    name: str
    current_instances: int | None = None
    desired_instances: int | None = None
    current_weight: float | None = None


class LiveCapture(_Frozen):
    """Data capture as the endpoint runs it now."""

    enabled: bool = False
    destination: str = ""
    sampling_percent: int | None = None


class DescribedEndpoint(_Frozen):
    name: str
    status: str
    config_name: str
    failure_reason: str | None = None
    production_variants: tuple[LiveVariant, ...] = ()
    shadow_variants: tuple[LiveVariant, ...] = ()
    data_capture: LiveCapture | None = None

    @property
    def in_service(self) -> bool:
        return self.status == IN_SERVICE

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def has_shadow(self) -> bool:
        return bool(self.shadow_variants)

    def runs(self, config_name: str) -> bool:
        """On `config_name` with no shadow left: where a restore or a promotion means to be."""
        return self.config_name == config_name and not self.has_shadow

    def instances(self, variant: str | None) -> int | None:
        """The production variant's current instance count, if it has one."""
        found = next((live for live in self.production_variants if live.name == variant), None)
        return found.current_instances if found is not None else None

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(live.name for live in self.production_variants)


class EndpointConfig(_Frozen):
    name: str
    production_variants: tuple[dict[str, JsonValue], ...] = ()
    shadow_variants: tuple[dict[str, JsonValue], ...] = ()
    data_capture: dict[str, JsonValue] | None = None
    kms_key_id: str | None = None
    # Only sent: DescribeEndpointConfig does not return tags.
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def production_variant_names(self) -> tuple[str, ...]:
        return tuple(str(variant.get("VariantName")) for variant in self.production_variants)

    @property
    def shadow_variant_names(self) -> tuple[str, ...]:
        return tuple(str(variant.get("VariantName")) for variant in self.shadow_variants)

    @property
    def capture_enabled(self) -> bool:
        return bool((self.data_capture or {}).get("EnableCapture"))

    @property
    def capture_destination(self) -> str:
        return str((self.data_capture or {}).get("DestinationS3Uri", ""))

    @property
    def capture_sampling_percent(self) -> int | None:
        share = (self.data_capture or {}).get("InitialSamplingPercentage")
        return int(share) if isinstance(share, int | float) else None


class ModelContainer(_Frozen):
    """A model's primary container: the two properties a candidate may override, and the rest as described."""

    image: str | None = None
    environment: dict[str, str] | None = None
    properties: dict[str, JsonValue] = Field(default_factory=dict)


class ModelDefinition(_Frozen):
    name: str
    execution_role_arn: str | None = None
    container: ModelContainer = Field(default_factory=ModelContainer)
    vpc_config: dict[str, JsonValue] | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    def derived(
        self, name: str, *, image: str | None, environment: dict[str, str] | None, tags: dict[str, str]
    ) -> ModelDefinition:
        """This model with another image and/or more environment variables (the candidate's overrides)."""
        container = self.container
        merged = {**(container.environment or {}), **environment} if environment is not None else container.environment
        return ModelDefinition(
            name=name,
            execution_role_arn=self.execution_role_arn,
            container=container.model_copy(update={"image": image or container.image, "environment": merged}),
            vpc_config=self.vpc_config,
            tags=tags,
        )
