"""Guarded promotion: the input that asks for SageMaker Deployment Guardrails, and the pure parts of it: the
UpdateEndpoint `DeploymentConfig` it becomes, the CloudWatch alarms SageMaker watches for an automatic
rollback, and how long the deployment may take.

Bounds are botocore's (sagemaker 2017-07-24 service model): `TrafficRoutingConfig` (ALL_AT_ONCE, CANARY,
LINEAR; `WaitIntervalInSeconds` 0..3600; a canary at most 50 % of the fleet, a linear step 10-50 %),
`BlueGreenUpdatePolicy` (`TerminationWaitInSeconds` 0..3600, `MaximumExecutionTimeoutInSeconds`
600..28800 and larger than the waits), `RollingUpdatePolicy` (`MaximumBatchSize` 5-50 % of the fleet),
`AutoRollbackConfig` (1..10 alarms). The Guardrails exclusions page adds: the new config must keep the old
config's variant name, so a guarded promotion serves the candidate under the production variant's name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from shadowscale.shared.errors import ShadowscaleError

# botocore: MaximumExecutionTimeoutInSeconds min 600, max 28800.
MIN_EXECUTION_TIMEOUT_SECONDS = 600
MAX_EXECUTION_TIMEOUT_SECONDS = 28_800


class PromotionRolledBack(ShadowscaleError):
    """SageMaker rolled a guarded promotion back (an AutoRollbackConfiguration alarm went to ALARM): the
    endpoint is back on the config it left; the restore path takes it on to the original one."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)


class GuardrailMode(StrEnum):
    ALL_AT_ONCE = "allAtOnce"
    CANARY = "canary"
    LINEAR = "linear"
    ROLLING = "rolling"


CapacityType = Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"]


class CapacitySize(_Strict):
    type: CapacityType
    value: int = Field(ge=1)

    def request(self) -> dict[str, JsonValue]:
        return {"Type": self.type, "Value": self.value}

    def percent_problem(self, low: int, high: int) -> str | None:
        if self.type == "CAPACITY_PERCENT" and not low <= self.value <= high:
            return f"value {self.value} must be {low}-{high} % of the fleet"
        return None


class RollbackAlarms(_Strict):
    """Thresholds of the alarms the promotion creates for the promoted variant (AWS/SageMaker, EndpointName
    + VariantName). Any alarm in ALARM during the deployment rolls it back."""

    # Invocation5XXErrors Sum per period above this count.
    max_5xx_errors: float | None = Field(default=0, alias="max5xxErrors", ge=0)
    # ModelLatency p99 per period above this (SageMaker publishes microseconds; the input is milliseconds).
    max_model_latency_p99_ms: float | None = Field(default=None, alias="maxModelLatencyP99Ms", gt=0)
    period_seconds: Literal[10, 30, 60, 300] = Field(default=60, alias="periodSeconds")
    evaluation_periods: int = Field(default=1, alias="evaluationPeriods", ge=1, le=10)


class Guardrails(_Strict):
    mode: GuardrailMode = GuardrailMode.ALL_AT_ONCE
    canary_size: CapacitySize | None = Field(default=None, alias="canarySize")
    linear_step_size: CapacitySize | None = Field(default=None, alias="linearStepSize")
    maximum_batch_size: CapacitySize | None = Field(default=None, alias="maximumBatchSize")
    rollback_maximum_batch_size: CapacitySize | None = Field(default=None, alias="rollbackMaximumBatchSize")
    wait_interval_seconds: int = Field(default=300, alias="waitIntervalSeconds", ge=0, le=3600)
    termination_wait_seconds: int = Field(default=0, alias="terminationWaitSeconds", ge=0, le=3600)
    maximum_execution_timeout_seconds: int = Field(
        default=3600,
        alias="maximumExecutionTimeoutSeconds",
        ge=MIN_EXECUTION_TIMEOUT_SECONDS,
        le=MAX_EXECUTION_TIMEOUT_SECONDS,
    )
    rollback_alarms: RollbackAlarms = Field(default_factory=RollbackAlarms, alias="rollbackAlarms")

    @model_validator(mode="after")
    def _sizes_fit_the_mode(self) -> Self:
        sizes = {
            "canarySize": (self.canary_size, GuardrailMode.CANARY, (1, 50)),
            "linearStepSize": (self.linear_step_size, GuardrailMode.LINEAR, (10, 50)),
            "maximumBatchSize": (self.maximum_batch_size, GuardrailMode.ROLLING, (5, 50)),
            "rollbackMaximumBatchSize": (self.rollback_maximum_batch_size, GuardrailMode.ROLLING, (1, 100)),
        }
        for name, (size, mode, (low, high)) in sizes.items():
            if size is None:
                if self.mode is mode and name != "rollbackMaximumBatchSize":
                    raise ValueError(f"{name} is required when mode is {mode.value}")
                continue
            if self.mode is not mode:
                raise ValueError(f"{name} applies only when mode is {mode.value}")
            problem = size.percent_problem(low, high)
            if problem is not None:
                raise ValueError(f"{name}: {problem}")
        if self.mode is GuardrailMode.ROLLING and self.termination_wait_seconds:
            raise ValueError("terminationWaitSeconds applies only to blue/green modes (a rolling update has none)")
        waits = self.wait_interval_seconds + self.termination_wait_seconds
        if self.maximum_execution_timeout_seconds <= waits:
            raise ValueError(
                f"maximumExecutionTimeoutSeconds {self.maximum_execution_timeout_seconds} must be larger than "
                f"waitIntervalSeconds + terminationWaitSeconds ({waits})"
            )
        return self


class Promotion(_Strict):
    """How the promotion's UpdateEndpoint runs: plain (SageMaker's default blue/green, all at once, no
    alarms) unless `guardrails` asks for traffic shifting and automatic rollback."""

    guardrails: Guardrails | None = None


# --- alarms ----------------------------------------------------------------------------------------


class AlarmDefinition(_Strict):
    """One PutMetricAlarm request: a SageMaker variant metric against a threshold."""

    name: str
    metric: str
    statistic: str  # Sum, or an extended statistic such as p99
    threshold: float
    period_seconds: int
    evaluation_periods: int
    endpoint: str
    variant: str
    description: str

    def request(self) -> dict[str, JsonValue]:
        statistic: dict[str, JsonValue] = (
            {"ExtendedStatistic": self.statistic} if self.statistic.startswith("p") else {"Statistic": self.statistic}
        )
        return {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Namespace": "AWS/SageMaker",
            "MetricName": self.metric,
            "Dimensions": [
                {"Name": "EndpointName", "Value": self.endpoint},
                {"Name": "VariantName", "Value": self.variant},
            ],
            **statistic,
            "Period": self.period_seconds,
            "EvaluationPeriods": self.evaluation_periods,
            "Threshold": self.threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            # No traffic in a period is no evidence against the new fleet.
            "TreatMissingData": "notBreaching",
        }


def alarm_prefix(stage: str) -> str:
    """Every promotion alarm of this stack starts so (template.yaml scopes the CloudWatch grants to it)."""
    return f"shadowscale-{stage}-promotion-"


def alarm_definitions(
    guardrails: Guardrails, *, prefix: str, endpoint: str, variant: str, tag: str
) -> tuple[AlarmDefinition, ...]:
    """The alarms of one promotion: `tag` (the plan's hash) keeps two tests' alarms apart."""
    alarms = guardrails.rollback_alarms
    base = f"{prefix}{endpoint}-{tag}"
    found: list[AlarmDefinition] = []
    if alarms.max_5xx_errors is not None:
        found.append(
            AlarmDefinition(
                name=f"{base}-5xx-errors",
                metric="Invocation5XXErrors",
                statistic="Sum",
                threshold=alarms.max_5xx_errors,
                period_seconds=alarms.period_seconds,
                evaluation_periods=alarms.evaluation_periods,
                endpoint=endpoint,
                variant=variant,
                description=f"Guarded promotion of {endpoint}/{variant}: more than {alarms.max_5xx_errors:g} "
                f"5xx errors per {alarms.period_seconds} s rolls the update back",
            )
        )
    if alarms.max_model_latency_p99_ms is not None:
        found.append(
            AlarmDefinition(
                name=f"{base}-p99-latency",
                metric="ModelLatency",
                statistic="p99",
                threshold=alarms.max_model_latency_p99_ms * 1000,  # microseconds, as SageMaker publishes
                period_seconds=alarms.period_seconds,
                evaluation_periods=alarms.evaluation_periods,
                endpoint=endpoint,
                variant=variant,
                description=f"Guarded promotion of {endpoint}/{variant}: ModelLatency p99 above "
                f"{alarms.max_model_latency_p99_ms:g} ms rolls the update back",
            )
        )
    return tuple(found)


# --- the DeploymentConfig ----------------------------------------------------------------------------


def deployment_config(guardrails: Guardrails, alarm_names: tuple[str, ...]) -> dict[str, JsonValue]:
    """UpdateEndpoint's DeploymentConfig: one update policy, and the alarms that roll it back."""
    config: dict[str, JsonValue]
    if guardrails.mode is GuardrailMode.ROLLING:
        assert guardrails.maximum_batch_size is not None  # the model requires it for rolling
        rolling: dict[str, JsonValue] = {
            "MaximumBatchSize": guardrails.maximum_batch_size.request(),
            "WaitIntervalInSeconds": guardrails.wait_interval_seconds,
            "MaximumExecutionTimeoutInSeconds": guardrails.maximum_execution_timeout_seconds,
        }
        if guardrails.rollback_maximum_batch_size is not None:
            rolling["RollbackMaximumBatchSize"] = guardrails.rollback_maximum_batch_size.request()
        config = {"RollingUpdatePolicy": rolling}
    else:
        routing: dict[str, JsonValue] = {
            "Type": guardrails.mode.name,  # TrafficRoutingConfig's ALL_AT_ONCE, CANARY, LINEAR
            "WaitIntervalInSeconds": guardrails.wait_interval_seconds,
        }
        if guardrails.canary_size is not None:
            routing["CanarySize"] = guardrails.canary_size.request()
        if guardrails.linear_step_size is not None:
            routing["LinearStepSize"] = guardrails.linear_step_size.request()
        config = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": guardrails.termination_wait_seconds,
                "MaximumExecutionTimeoutInSeconds": guardrails.maximum_execution_timeout_seconds,
            }
        }
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    return config


def deployment_seconds(guardrails: Guardrails | None) -> int:
    """The longest the deployment may run before SageMaker times it out, with the blue fleet's termination
    wait after it: how much longer than a plain update the promotion's InService check waits (0 unguarded)."""
    if guardrails is None:
        return 0
    return guardrails.maximum_execution_timeout_seconds + guardrails.termination_wait_seconds


def rolled_back_reason(endpoint: str, config: str, alarms_in_alarm: tuple[str, ...], failure: str | None) -> str:
    """What the report says of an automatic rollback: the alarms that fired, and SageMaker's own words."""
    fired = ", ".join(alarms_in_alarm) if alarms_in_alarm else "no promotion alarm is in ALARM now"
    said = f"; SageMaker: {failure}" if failure else ""
    return f"guarded promotion of {endpoint!r} rolled back from {config!r} (alarm: {fired}){said}"
