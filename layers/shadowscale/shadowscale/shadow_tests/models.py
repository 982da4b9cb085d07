"""The shadow test: what a person asks for (the state machine's input), what the machine carries
between states (plan, snapshot, evaluation, decision) and what it leaves behind (the report).

The input is validated as a whole by the first state, before anything is touched; every message names
the field path (`gates.latency.p99Ratio: ...`).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator, model_validator

from shadowscale.shadow_tests.bucket_layout import report_prefix
from shadowscale.shadow_tests.promotion_guardrails import Promotion
from shadowscale.shadow_tests.time_limits import MAX_TEST_MINUTES
from shadowscale.shared.endpoint import ScalingTargetSnapshot
from shadowscale.shared.errors import InvalidShadowTestInput
from shadowscale.shared.validation import SAGEMAKER_NAME, field_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)


class DecisionMode(StrEnum):
    AUTO = "auto"  # promote when every gate passes, remove otherwise
    APPROVE = "approve"  # a person approves or rejects, with the report in hand
    REPORT_ONLY = "report-only"  # never promote: measure, report, remove


class Candidate(_Strict):
    model_name: str = Field(alias="modelName", pattern=SAGEMAKER_NAME, max_length=63)
    instance_type: str = Field(alias="instanceType", pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
    instance_count: int = Field(default=1, alias="instanceCount", ge=1, le=100)
    variant_name: str = Field(default="shadow", alias="variantName", pattern=SAGEMAKER_NAME, max_length=63)
    # Either override makes a derived model from modelName's primary container (deleted unless promoted).
    container_image: str | None = Field(default=None, alias="containerImage", min_length=1, max_length=255)
    environment: dict[str, str] | None = Field(default=None, max_length=100)

    @property
    def overrides_container(self) -> bool:
        return self.container_image is not None or self.environment is not None


class RampStep(_Strict):
    percent: float = Field(gt=0, le=100, description="Share of production requests copied to the shadow.")
    bake_minutes: int = Field(alias="bakeMinutes", ge=1, le=60 * 24 * 90)


class Sampling(_Strict):
    """Either one percentage for the whole test, or a ramp of steps (each baked before the next)."""

    percent: float | None = Field(default=None, gt=0, le=100)
    ramp: tuple[RampStep, ...] | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.percent is None) == (self.ramp is None):
            raise ValueError("give either percent or ramp")
        if self.ramp is not None:
            for index in range(1, len(self.ramp)):
                if self.ramp[index].percent <= self.ramp[index - 1].percent:
                    raise ValueError(f"ramp.{index}.percent must be greater than the step before it")
        return self


class LatencyGates(_Strict):
    """Shadow ModelLatency over production ModelLatency at each percentile must stay at or below these."""

    p50_ratio: float | None = Field(default=1.25, alias="p50Ratio", gt=0)
    p90_ratio: float | None = Field(default=1.25, alias="p90Ratio", gt=0)
    p99_ratio: float | None = Field(default=1.5, alias="p99Ratio", gt=0)


class ErrorRateGates(_Strict):
    """Shadow error rate minus production error rate (as fractions of invocations)."""

    max_4xx_delta: float | None = Field(default=0.01, alias="max4xxDelta", ge=0, le=1)
    max_5xx_delta: float | None = Field(default=0.005, alias="max5xxDelta", ge=0, le=1)
    max_model_error_delta: float | None = Field(default=0.005, alias="maxModelErrorDelta", ge=0, le=1)


class UtilizationGates(_Strict):
    max_cpu_percent: float | None = Field(default=None, alias="maxCpuPercent", gt=0)
    max_memory_percent: float | None = Field(default=None, alias="maxMemoryPercent", gt=0, le=100)


class AgreementGates(_Strict):
    """From the response-diff pipeline: how often the shadow answered as production did."""

    min_exact_match_rate: float | None = Field(default=None, alias="minExactMatchRate", ge=0, le=1)
    min_within_tolerance_rate: float | None = Field(default=None, alias="minWithinToleranceRate", ge=0, le=1)


class EarlyStop(_Strict):
    """May a test end before its duration when the always-valid intervals already decide? (README: "Early
    stopping"). Off by default: a test runs its whole duration."""

    on_failure: bool = Field(default=False, alias="onFailure")
    on_pass: bool = Field(default=False, alias="onPass", description="Early promotion (or approval request).")

    @property
    def enabled(self) -> bool:
        return self.on_failure or self.on_pass


class Gates(_Strict):
    """Each gate decides from a confidence interval: a floor ("at least") passes when the interval's lower bound
    reaches it, a ceiling when the upper bound stays under it; an interval across the threshold is
    insufficient evidence."""

    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="Two-sided confidence of every interval.")
    early_stop: EarlyStop = Field(default_factory=EarlyStop, alias="earlyStop")
    min_invocations: int = Field(default=100, alias="minInvocations", ge=0)
    min_paired_responses: int = Field(default=0, alias="minPairedResponses", ge=0)
    latency: LatencyGates = Field(default_factory=LatencyGates)
    overhead_latency_max_delta_ms: float | None = Field(default=None, alias="overheadLatencyMaxDeltaMs", ge=0)
    error_rates: ErrorRateGates = Field(default_factory=ErrorRateGates, alias="errorRates")
    utilization: UtilizationGates = Field(default_factory=UtilizationGates)
    agreement: AgreementGates = Field(default_factory=AgreementGates)


class HardLimits(_Strict):
    """Checked at every evaluation period: one breach ends the test early and removes the shadow."""

    max_shadow_error_rate: float | None = Field(default=0.25, alias="maxShadowErrorRate", gt=0, le=1)
    max_latency_p99_ratio: float | None = Field(default=None, alias="maxLatencyP99Ratio", gt=1)


class DataCapture(_Strict):
    destination_s3_uri: str | None = Field(
        default=None, alias="destinationS3Uri", pattern=r"^s3://[a-z0-9.-]{3,63}(/.*)?$"
    )
    sampling_percent: int = Field(default=100, alias="samplingPercent", ge=1, le=100)
    kms_key_id: str | None = Field(default=None, alias="kmsKeyId")


class Calibration(_Strict):
    """Noise calibration (A/A): before the candidate, the shadow serves a copy of the production model for
    `bakeMinutes`; the disagreement and latency spread of the model with itself become the noise floor the
    candidate's agreement and latency gates are judged against (noise_calibration.py, README "Noise
    calibration")."""

    bake_minutes: int = Field(alias="bakeMinutes", ge=5, le=60 * 24 * 7)
    # The share of production requests copied to the copy; None: the test's first step's.
    sample_percent: float | None = Field(default=None, alias="samplePercent", gt=0, le=100)
    # Fewer diffed pairs than this in the A/A phase: the calibrated agreement gates stay insufficient-data.
    min_pairs: int = Field(default=100, alias="minPairs", ge=1)


# --- budgets (shadow_tests/budgets.py spends them) ---------------------------------------------

_INSTANCE_TYPE = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"  # as Candidate.instanceType


class Budget(_Strict):
    """What the shadow variant may spend: instance-hours, dollars, minutes running. The first one spent ends
    the test on the normal decision path (the gates decide with the evidence so far)."""

    max_instance_hours: float | None = Field(default=None, alias="maxInstanceHours", gt=0)
    max_cost_usd: float | None = Field(default=None, alias="maxCostUsd", gt=0)
    max_duration_minutes: int | None = Field(
        default=None, alias="maxDurationMinutes", ge=1, le=MAX_TEST_MINUTES, description="Minutes the shadow runs."
    )
    # Hourly on-demand prices (USD) by instance type; they win over the package's example table (prices.py).
    hourly_prices: dict[Annotated[str, Field(pattern=_INSTANCE_TYPE)], Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, alias="hourlyPrices", max_length=50
    )

    @model_validator(mode="after")
    def _caps_something(self) -> Self:
        if self.max_instance_hours is None and self.max_cost_usd is None and self.max_duration_minutes is None:
            raise ValueError("give at least one of maxInstanceHours, maxCostUsd, maxDurationMinutes")
        return self


class ShadowSpend(_Strict):
    """What the shadow variant has spent up to `at` (counted from the moment it was InService), against
    its budget, and what it will have spent at the next evaluation."""

    since: datetime
    at: datetime
    instance_type: str = Field(alias="instanceType")
    instances: int  # the count running from `at` on
    instance_hours: float = Field(alias="instanceHours")
    hourly_price_usd: float | None = Field(default=None, alias="hourlyPriceUsd")
    price_source: Literal["input", "example-table"] | None = Field(default=None, alias="priceSource")
    cost_usd: float | None = Field(default=None, alias="costUsd")
    max_instance_hours: float | None = Field(default=None, alias="maxInstanceHours")
    max_cost_usd: float | None = Field(default=None, alias="maxCostUsd")
    max_duration_minutes: int | None = Field(default=None, alias="maxDurationMinutes")
    projected_instance_hours: float | None = Field(default=None, alias="projectedInstanceHours")
    projected_cost_usd: float | None = Field(default=None, alias="projectedCostUsd")
    # The largest share of any cap used so far (1.0: spent).
    share: float | None = None
    spent: str | None = Field(default=None, description="Which cap ran out, when one did.")

    @property
    def running_minutes(self) -> float:
        return (self.at - self.since).total_seconds() / 60


class ShadowTestInput(_Strict):
    """What `aws stepfunctions start-execution --input file://events/shadow_test.json` carries."""

    endpoint_name: str = Field(alias="endpointName", pattern=SAGEMAKER_NAME, max_length=63)
    candidate: Candidate
    sampling: Sampling
    duration_minutes: int = Field(alias="durationMinutes", ge=5, le=60 * 24 * 90)
    evaluation_period_minutes: int = Field(default=5, alias="evaluationPeriodMinutes", ge=1, le=60)
    in_service_timeout_minutes: int = Field(default=30, alias="inServiceTimeoutMinutes", ge=1, le=240)
    gates: Gates = Field(default_factory=Gates)
    hard_limits: HardLimits = Field(default_factory=HardLimits, alias="hardLimits")
    decision_mode: DecisionMode = Field(default=DecisionMode.AUTO, alias="decisionMode")
    approval_timeout_minutes: int = Field(default=24 * 60, alias="approvalTimeoutMinutes", ge=1, le=7 * 24 * 60)
    promote_instance_count: int | None = Field(default=None, alias="promoteInstanceCount", ge=1, le=100)
    notification_topic_arn: str | None = Field(
        default=None, alias="notificationTopicArn", pattern=r"^arn:aws[a-z-]*:sns:"
    )
    data_capture: DataCapture = Field(default_factory=DataCapture, alias="dataCapture")
    comparison: dict[str, JsonValue] | None = Field(
        default=None, description="Response-diff settings (comparator, tolerances); see the README."
    )
    dry_run: bool = Field(default=False, alias="dryRun")
    budget: Budget | None = None
    # Guarded promotion (promotion_guardrails.py): how the promotion's UpdateEndpoint shifts traffic.
    promotion: Promotion = Field(default_factory=Promotion)
    # Noise calibration (A/A) first; None: the candidate's gates are judged against their thresholds alone.
    calibration: Calibration | None = None

    @field_validator("comparison")
    @classmethod
    def _comparison_is_valid(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        # Checked now, with stand-in names, so that a typo fails the test before the endpoint is touched.
        if value is not None:
            from shadowscale.shared.diff_contract import DiffConfig

            try:
                DiffConfig.for_test("validation", "endpoint", "production", "shadow", value)
            except ValidationError as exc:
                raise ValueError(field_problems(exc)) from exc
        return value

    @model_validator(mode="after")
    def _duration_fits(self) -> Self:
        if self.sampling.ramp is not None:
            baked = sum(step.bake_minutes for step in self.sampling.ramp)
            if baked > self.duration_minutes:
                raise ValueError(f"durationMinutes {self.duration_minutes} is shorter than the ramp's bakes ({baked})")
        if self.duration_minutes < self.evaluation_period_minutes:
            raise ValueError("durationMinutes must be at least one evaluationPeriodMinutes")
        # Step Functions fails an execution at 25,000 history events: count this test's, at worst.
        from shadowscale.shadow_tests.history_budget import history_problem

        problem = history_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _calibration_is_diffed(self) -> Self:
        if self.calibration is not None and self.data_capture.destination_s3_uri is not None:
            # The diff pipeline measures the noise floor only for capture in the stack's own bucket.
            raise ValueError("calibration needs the stack's capture bucket: leave dataCapture.destinationS3Uri unset")
        return self

    @model_validator(mode="after")
    def _budget_fits(self) -> Self:
        from shadowscale.shadow_tests.budgets import budget_problem

        problem = budget_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def steps(self) -> tuple[RampStep, ...]:
        if self.sampling.ramp is not None:
            return self.sampling.ramp
        assert self.sampling.percent is not None
        return (RampStep(percent=self.sampling.percent, bake_minutes=self.duration_minutes),)

    @property
    def calibration_percent(self) -> float:
        """The share of production requests the A/A copy receives."""
        assert self.calibration is not None
        return self.calibration.sample_percent or self.steps[0].percent


def parse_shadow_test_input(document: object) -> ShadowTestInput:
    """Raw input → validated model; raises InvalidShadowTestInput naming every bad field."""
    try:
        return ShadowTestInput.model_validate(document)
    except ValidationError as exc:
        raise InvalidShadowTestInput(f"invalid shadow test input: {field_problems(exc)}") from exc


def lease_owner(execution_arn: str) -> str:
    """Who holds an endpoint's lease while the shadow test of `execution_arn` runs."""
    return f"shadow-test:{execution_arn}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class ShadowTestPlan(_Strict):
    """The validated input plus every name the test will create, fixed once by the first state."""

    test_id: str = Field(alias="testId")
    execution_arn: str = Field(alias="executionArn")
    started_at: datetime = Field(alias="startedAt")
    request: ShadowTestInput
    shadow_config_name: str = Field(alias="shadowConfigName")
    promoted_config_name: str = Field(alias="promotedConfigName")
    derived_model_name: str | None = Field(default=None, alias="derivedModelName")
    # With calibration only: the config of the A/A phase (the production model as the shadow).
    noise_config_name: str | None = Field(default=None, alias="noiseConfigName")
    capture_s3_uri: str = Field(alias="captureS3Uri")
    report_prefix: str = Field(alias="reportPrefix")
    reports_bucket: str = Field(alias="reportsBucket")
    notification_topic_arn: str = Field(alias="notificationTopicArn")
    # For the approval task's TimeoutSecondsPath: the machine reads numbers, not minutes.
    approval_timeout_seconds: int = Field(alias="approvalTimeoutSeconds")

    @property
    def endpoint(self) -> str:
        return self.request.endpoint_name

    @property
    def owner(self) -> str:
        """The lease owner: the execution's ARN, which no other execution has (a test id may be shared by
        names that differ only in characters the id replaces)."""
        return lease_owner(self.execution_arn)

    @staticmethod
    def test_id_of(execution_arn: str) -> str:
        """The test's id is its execution's name, made safe for S3 keys and SageMaker tags; a name that had
        to change gets a hash of the ARN, so two names never share an id (and its reports and diffs)."""
        name = execution_arn.rsplit(":", 1)[-1]
        safe = re.sub(r"[^a-zA-Z0-9-]", "-", name)
        if safe == name:
            return name[:80]
        return f"{safe[:71].rstrip('-')}-{_short_hash(execution_arn)}"

    @classmethod
    def create(
        cls,
        request: ShadowTestInput,
        *,
        execution_arn: str,
        started_at: datetime,
        data_bucket: str,
        default_topic_arn: str,
    ) -> ShadowTestPlan:
        test_id = cls.test_id_of(execution_arn)
        tag = _short_hash(execution_arn)
        base = request.endpoint_name[:40].rstrip("-")
        model = request.candidate.model_name[:45].rstrip("-")
        capture = request.data_capture.destination_s3_uri or f"s3://{data_bucket}/capture/{test_id}"
        return cls(
            test_id=test_id,
            execution_arn=execution_arn,
            started_at=started_at,
            request=request,
            shadow_config_name=f"{base}-{tag}-shadow",
            promoted_config_name=f"{base}-{tag}-promoted",
            derived_model_name=f"{model}-{tag}-cand" if request.candidate.overrides_container else None,
            noise_config_name=f"{base}-{tag}-noise" if request.calibration is not None else None,
            capture_s3_uri=capture.rstrip("/"),
            report_prefix=report_prefix(request.endpoint_name, test_id),
            reports_bucket=data_bucket,
            notification_topic_arn=request.notification_topic_arn or default_topic_arn,
            approval_timeout_seconds=request.approval_timeout_minutes * 60,
        )

    @property
    def candidate_model_name(self) -> str:
        return self.derived_model_name or self.request.candidate.model_name

    @property
    def noise_test_id(self) -> str:
        """The A/A phase's id for the diff pipeline: its capture and summary sit apart from the candidate's."""
        return f"{self.test_id}-noise"

    @property
    def noise_capture_s3_uri(self) -> str:
        return f"{self.capture_s3_uri}-noise"

    @property
    def noise_variant_name(self) -> str:
        """The shadow variant of the A/A phase: the candidate's name marked, so its metrics stay apart too."""
        return f"{self.request.candidate.variant_name[:57]}-noise"

    def ramp_config_name(self, step_index: int) -> str:
        """The config of ramp step `step_index` when SageMaker will not set the shadow's weight in place."""
        return f"{self.shadow_config_name.removesuffix('-shadow')}-ramp{step_index}"

    @property
    def ramp_config_names(self) -> tuple[str, ...]:
        return tuple(self.ramp_config_name(index) for index in range(1, len(self.request.steps)))


class EndpointSnapshot(_Strict):
    """Everything the restore guarantee puts back."""

    endpoint: str
    config_name: str = Field(alias="configName")
    production_variants: tuple[dict[str, JsonValue], ...] = Field(alias="productionVariants")
    current_instances: dict[str, int] = Field(alias="currentInstances")
    current_weights: dict[str, float] = Field(alias="currentWeights")
    data_capture: dict[str, JsonValue] | None = Field(default=None, alias="dataCapture")
    kms_key_id: str | None = Field(default=None, alias="kmsKeyId")
    scaling_targets: tuple[ScalingTargetSnapshot, ...] = Field(default=(), alias="scalingTargets")
    taken_at: datetime = Field(alias="takenAt")

    @property
    def production_variant(self) -> dict[str, JsonValue]:
        return self.production_variants[0]

    @property
    def production_variant_name(self) -> str:
        return str(self.production_variant["VariantName"])


class RestoreRecord(_Strict):
    """What whoever restores the endpoint needs when the execution that changed it is gone: its plan and its
    snapshot, kept with the endpoint's lease."""

    plan: ShadowTestPlan
    snapshot: EndpointSnapshot


GateStatus = Literal["pass", "fail", "insufficient-data", "not-configured"]


class GateResult(_Strict):
    """One gate's decision (`status`) from its interval: `observed` is the point estimate, `lower`/`upper` its
    bounds at `confidence` by `method` (None: unbounded on that side, or a count gate with no interval)."""

    name: str
    status: GateStatus
    observed: float | None = None
    threshold: float | None = None
    detail: str = ""
    lower: float | None = None
    upper: float | None = None
    confidence: float | None = None
    method: str | None = None


class NoiseLatency(_Strict):
    """The A/A median of per-minute copy/production latency ratios at one percentile, with its interval."""

    percentile: Literal["p50", "p90", "p99"]
    minutes: int
    median: float | None = None
    lower: float | None = None
    upper: float | None = None


class NoiseFloor(_Strict):
    """What the A/A phase measured: the production model against a copy of itself (noise_calibration.py)."""

    variant: str
    started_at: datetime = Field(alias="startedAt")
    at: datetime
    invocations: float = 0
    paired: int = 0
    # Pairs whose answers differed, exactly and beyond the comparison's tolerance (None: no such rate).
    exact_mismatches: int | None = Field(default=None, alias="exactMismatches")
    tolerance_mismatches: int | None = Field(default=None, alias="toleranceMismatches")
    latency: tuple[NoiseLatency, ...] = ()
    min_pairs: int = Field(default=1, alias="minPairs")

    def latency_at(self, percentile: str) -> NoiseLatency | None:
        return next((entry for entry in self.latency if entry.percentile == percentile), None)


class MinuteLatencies(_Strict):
    """Per-minute ModelLatency of both variants over the bake, paired by minute: (shadow ms, production ms) for
    each percentile the latency gates read. Read for the gates only: never carried in the machine's state."""

    p50: tuple[tuple[float, float], ...] = ()
    p90: tuple[tuple[float, float], ...] = ()
    p99: tuple[tuple[float, float], ...] = ()


class VariantStats(_Strict):
    """One variant's metrics over an evaluation window (latencies in milliseconds)."""

    invocations: float = 0
    latency_p50_ms: float | None = Field(default=None, alias="latencyP50Ms")
    latency_p90_ms: float | None = Field(default=None, alias="latencyP90Ms")
    latency_p99_ms: float | None = Field(default=None, alias="latencyP99Ms")
    overhead_ms: float | None = Field(default=None, alias="overheadMs")
    errors_4xx: float = Field(default=0, alias="errors4xx")
    errors_5xx: float = Field(default=0, alias="errors5xx")
    model_errors: float = Field(default=0, alias="modelErrors")
    cpu_percent: float | None = Field(default=None, alias="cpuPercent")
    memory_percent: float | None = Field(default=None, alias="memoryPercent")

    def rate(self, count: float) -> float | None:
        return count / self.invocations if self.invocations > 0 else None


class AgreementStats(_Strict):
    """What the diff pipeline reported for this test so far."""

    paired: int = 0
    exact_match_rate: float | None = Field(default=None, alias="exactMatchRate")
    within_tolerance_rate: float | None = Field(default=None, alias="withinToleranceRate")
    summary_key: str | None = Field(default=None, alias="summaryKey")
    # The summary as it was read: pairs keep arriving until it is final, so a later count may be larger.
    final: bool = False
    summary_updated_at: datetime | None = Field(default=None, alias="summaryUpdatedAt")


class DiffSummary(BaseModel):
    """The response-diff pipeline's running summary of a test, as far as the gates read it; `document` is the
    whole of it, as the report shows it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, defer_build=True)

    paired: int = 0
    exact_match_rate: float | None = Field(default=None, alias="exactMatchRate")
    within_tolerance_rate: float | None = Field(default=None, alias="withinToleranceRate")
    # True once the pipeline closed every window; until then pairs keep arriving.
    final: bool = False
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    document: dict[str, JsonValue] = Field(default_factory=dict, exclude=True)

    @classmethod
    def of(cls, document: dict[str, JsonValue]) -> DiffSummary:
        return cls.model_validate({**document, "final": document.get("final") is True, "document": document})


Verdict = Literal["pass", "fail", "insufficient-data"]
# "noise": the A/A phase (the production model as the shadow); "candidate": the test itself.
Phase = Literal["noise", "candidate"]
NextStep = Literal["bake", "ramp", "decide", "abort"]


class Evaluation(_Strict):
    at: datetime
    step_index: int = Field(alias="stepIndex")
    step_started_at: datetime = Field(alias="stepStartedAt")
    window_start: datetime = Field(alias="windowStart")
    production: VariantStats
    shadow: VariantStats
    agreement: AgreementStats | None = None
    gates: tuple[GateResult, ...]
    verdict: Verdict
    hard_limit_breached: str | None = Field(default=None, alias="hardLimitBreached")
    # Why the test ends before its duration: its always-valid intervals decided (the gates are theirs).
    early_stop: str | None = Field(default=None, alias="earlyStop")
    spend: ShadowSpend | None = None  # with a budget only
    next: NextStep
    wait_seconds: int = Field(alias="waitSeconds")
    evaluations: int = 0
    phase: Phase = "candidate"
    # With calibration: the A/A floor (measured so far in the noise phase, as recorded in the candidate's).
    noise: NoiseFloor | None = None
    # With calibration: when the candidate's phase began (durationMinutes counts from there).
    candidate_started_at: datetime | None = Field(default=None, alias="candidateStartedAt")


Action = Literal["promote", "remove", "await-approval"]


class Decision(_Strict):
    verdict: Verdict
    action: Action
    reason: str


class Approval(_Strict):
    """What `shadowscale shadow approve|reject` (or send-task-success) sends back."""

    approved: bool
    by: str = "unknown"
    comment: str = ""


Outcome = Literal[
    "awaiting-approval",
    "promoted",
    "rolled-back",  # a guarded promotion SageMaker rolled back on an alarm; the endpoint is back on the original
    "removed",
    "rejected",
    "report-only",
    "dry-run",
    "invalid-input",
    "locked",
    "failed",
    "aborted",
    "timed-out",
]


class TimelineEntry(_Strict):
    at: datetime
    state: str
    event: str


class SeriesPoint(_Strict):
    at: datetime
    value: float


class ChartSeries(_Strict):
    metric: str
    variant: str
    points: tuple[SeriesPoint, ...]


class ShadowTestReport(_Strict):
    test_id: str = Field(alias="testId")
    execution_arn: str = Field(alias="executionArn")
    endpoint: str
    outcome: Outcome
    verdict: Verdict | None = None
    reason: str
    started_at: datetime | None = Field(default=None, alias="startedAt")
    finished_at: datetime = Field(alias="finishedAt")
    candidate: dict[str, Any] | None = None
    final_config_name: str | None = Field(default=None, alias="finalConfigName")
    evaluation: Evaluation | None = None
    approval: Approval | None = None
    timeline: tuple[TimelineEntry, ...] = ()
    # The share of requests copied to the shadow at each step, in order: the page marks each change.
    sampling_percents: tuple[float, ...] = Field(default=(), alias="samplingPercents")
    charts: tuple[ChartSeries, ...] = ()
    diff_summary: dict[str, JsonValue] | None = Field(default=None, alias="diffSummary")
    # "final" once the diff pipeline closed every window; "provisional" while capture may still land.
    diff_summary_state: Literal["final", "provisional"] | None = Field(default=None, alias="diffSummaryState")
    diff_summary_uri: str | None = Field(default=None, alias="diffSummaryUri")
    diff_note: str | None = Field(default=None, alias="diffNote")
    failure: dict[str, str] | None = None
    planned: dict[str, JsonValue] | None = None
    json_uri: str | None = Field(default=None, alias="jsonUri")
    html_uri: str | None = Field(default=None, alias="htmlUri")


class Readiness(_Strict):
    """Where the endpoint is heading and by when it must be there."""

    config: str
    deadline: datetime
    in_service: bool = Field(default=False, alias="inService")
    status: str = "Updating"
    # Restore only: the production variant's live count when the restore began, put back once there.
    production_instances: int | None = Field(default=None, alias="productionInstances")


class Finalized(_Strict):
    promoted: bool
    final_config: str | None = Field(default=None, alias="finalConfig")
    deleted: tuple[str, ...] = ()
    lock_released: bool = Field(alias="lockReleased")


class ReportRef(_Strict):
    json_uri: str = Field(alias="jsonUri")
    html_uri: str = Field(alias="htmlUri")
    outcome: Outcome
    subject: str
    message: str


class RecoveryRequest(BaseModel):
    """What a recovery execution starts from: the `detail` of the "Step Functions Execution Status Change"
    event of the test's execution (or the same three fields from `shadowscale shadow recover`)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore", defer_build=True)

    execution_arn: str = Field(alias="executionArn", pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:.+")
    status: str = "FAILED"
    input: str | None = None


RecoveryAction = Literal["restore", "report", "nothing"]


class Recovery(_Strict):
    """What the recovery found and will do, carried in the recovery execution's state."""

    execution_arn: str = Field(alias="executionArn")
    ended_as: str = Field(alias="endedAs")
    action: RecoveryAction
    reason: str
    recovered_by: str = Field(alias="recoveredBy")


class MachineState(BaseModel):
    """The state machine's JSON state as the tasks read it (each task adds one key by ResultPath)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, defer_build=True)

    plan: ShadowTestPlan | None = None
    snapshot: EndpointSnapshot | None = None
    ready: Readiness | None = None
    progress: Evaluation | None = None
    decision: Decision | None = None
    approval: Approval | None = None
    approval_timeout: dict[str, JsonValue] | None = Field(default=None, alias="approvalTimeout")
    failure: dict[str, JsonValue] | None = None
    finalized: Finalized | None = None
    recovery: Recovery | None = None

    @property
    def failure_error(self) -> str | None:
        if not self.failure:
            return None
        return str(self.failure.get("Error", "States.TaskFailed"))

    @property
    def failure_cause(self) -> str:
        if not self.failure:
            return ""
        cause = str(self.failure.get("Cause", ""))
        # Lambda task failures carry our error as JSON: show its message, not the envelope.
        try:
            loaded = json.loads(cause)
        except ValueError:
            return cause[:2000]
        if isinstance(loaded, dict):
            return str(loaded.get("errorMessage", cause))[:2000]
        return cause[:2000]
