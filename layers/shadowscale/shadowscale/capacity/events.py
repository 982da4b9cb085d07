"""Events the capacity functions accept, and their normalised forms.

CloudWatch delivers an alarm transition in two real shapes: as a direct Lambda alarm action
(`source: aws.cloudwatch`, data under `alarmData`) and as the EventBridge event
"CloudWatch Alarm State Change" (data under `detail`). Both become one `AlarmTransition`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError, field_validator

from shadowscale.shared.endpoint import AlarmStateValue
from shadowscale.shared.errors import InvalidEvent
from shadowscale.shared.validation import SAGEMAKER_NAME, describe_validation_error, parse_body


class EvaluatedDatapoint(BaseModel):
    """One datapoint the alarm evaluated: no `value` when the period had no data (missing data filled)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True, defer_build=True)

    timestamp: str = ""
    value: FiniteFloat | None = None


class AlarmReasonData(BaseModel):
    """What the decision reads of reasonData. Datapoints and thresholds must be finite numbers: a NaN or an
    infinity would make the breach NaN or infinite, and the largest step of the policy would be taken.

    `evaluatedDatapoints` are the datapoints that decided the state (CloudWatch User Guide, "Alarm events and
    EventBridge"); `recentDatapoints` are all recent ones, either side of the threshold. An anomaly-band alarm
    has no single threshold: `recentUpperThresholds`/`recentLowerThresholds`, when CloudWatch sends them (it
    does not document them), give the band for each recent datapoint."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True, defer_build=True)

    recent_datapoints: tuple[FiniteFloat, ...] = Field(default=(), alias="recentDatapoints")
    evaluated_datapoints: tuple[EvaluatedDatapoint, ...] | None = Field(default=None, alias="evaluatedDatapoints")
    threshold: FiniteFloat | None = None
    recent_upper_thresholds: tuple[FiniteFloat, ...] = Field(default=(), alias="recentUpperThresholds")
    recent_lower_thresholds: tuple[FiniteFloat, ...] = Field(default=(), alias="recentLowerThresholds")

    @field_validator("recent_datapoints", "recent_upper_thresholds", "recent_lower_thresholds", mode="before")
    @classmethod
    def _absent_is_empty(cls, value: object) -> object:
        return () if value is None else value


class AlarmState(BaseModel):
    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    value: AlarmStateValue
    reason: str = ""
    reason_data: AlarmReasonData | None = Field(default=None, alias="reasonData")
    timestamp: datetime

    @field_validator("reason_data", mode="before")
    @classmethod
    def _decode_json_string(cls, value: object) -> object:
        # CloudWatch sends reasonData as a JSON *string*; set-alarm-state may send any text or nothing.
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"reasonData is not JSON: {exc.msg}") from exc
            return decoded if isinstance(decoded, dict) else None
        raise ValueError("reasonData must be a JSON string or an object")


class AlarmData(BaseModel):
    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    alarm_name: str = Field(alias="alarmName", min_length=1)
    state: AlarmState
    previous_state: AlarmState | None = Field(default=None, alias="previousState")


class AlarmActionEvent(BaseModel):
    """The event a CloudWatch alarm sends when its alarm action is this Lambda function."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    source: Literal["aws.cloudwatch"]
    alarm_arn: str = Field(alias="alarmArn")
    account_id: str = Field(alias="accountId")
    region: str
    time: datetime
    alarm_data: AlarmData = Field(alias="alarmData")


class AlarmStateChangeEvent(BaseModel):
    """The EventBridge "CloudWatch Alarm State Change" event.

    The envelope is declared here rather than extending Powertools' EventBridgeModel: importing any
    Powertools parser model builds all of them (about 45 ms of every cold start, measured by make bench).
    """

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    id: str
    source: Literal["aws.cloudwatch"]
    account: str
    time: datetime
    region: str
    resources: list[str] = Field(default_factory=list)
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: AlarmData


class AlarmTransition(BaseModel):
    """One alarm state change, whichever shape it arrived in."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: Literal["shadowscale.alarm-transition"] = "shadowscale.alarm-transition"
    alarm_name: str
    state: AlarmStateValue
    previous_state: AlarmStateValue | None
    changed_at: datetime
    reason: str
    # Finite here too: a deferred change carries the transition back in, through its own JSON.
    datapoints: tuple[FiniteFloat, ...]
    threshold: FiniteFloat | None
    delivery: Literal["alarm-action", "eventbridge"]
    # The values of the datapoints the alarm evaluated; None when the event did not say which.
    evaluated: tuple[FiniteFloat, ...] | None = None
    upper_band: tuple[FiniteFloat, ...] = ()
    lower_band: tuple[FiniteFloat, ...] = ()
    # The alarm's ComparisonOperator, read from CloudWatch when the transition arrives (the event does not
    # carry it); a deferred replay carries it along. None: not known.
    comparison: str | None = None

    @property
    def event_id(self) -> str:
        # The same transition delivered through both routes, or twice through one, has one id.
        return f"alarm:{self.alarm_name}:{self.state}:{self.changed_at.isoformat()}"


def _transition(data: AlarmData, delivery: Literal["alarm-action", "eventbridge"]) -> AlarmTransition:
    reason_data = data.state.reason_data or AlarmReasonData()
    return AlarmTransition(
        alarm_name=data.alarm_name,
        state=data.state.value,
        previous_state=data.previous_state.value if data.previous_state else None,
        changed_at=data.state.timestamp,
        reason=data.state.reason,
        datapoints=reason_data.recent_datapoints,
        threshold=reason_data.threshold,
        delivery=delivery,
        evaluated=None
        if reason_data.evaluated_datapoints is None
        else tuple(point.value for point in reason_data.evaluated_datapoints if point.value is not None),
        upper_band=reason_data.recent_upper_thresholds,
        lower_band=reason_data.recent_lower_thresholds,
    )


def parse_alarm_event(event: object) -> AlarmTransition:
    """Either real alarm shape → AlarmTransition; anything else → InvalidEvent naming the problem."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"alarm event must be a JSON object, got {type(event).__name__}")
    shape_is_eventbridge = "detail-type" in event
    model: type[BaseModel] = AlarmStateChangeEvent if shape_is_eventbridge else AlarmActionEvent
    try:
        parsed = model.model_validate(event)
    except ValidationError as exc:
        shape = "EventBridge alarm state change" if shape_is_eventbridge else "alarm action"
        raise InvalidEvent(describe_validation_error(exc, f"{shape} event")) from exc
    if isinstance(parsed, AlarmStateChangeEvent):
        return _transition(parsed.detail, "eventbridge")
    assert isinstance(parsed, AlarmActionEvent)
    return _transition(parsed.alarm_data, "alarm-action")


class ScheduleTick(BaseModel):
    """The input EventBridge Scheduler sends for a policy's schedules (set by `policy apply`)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid", defer_build=True)

    kind: Literal["shadowscale.schedule-tick"] = "shadowscale.schedule-tick"
    endpoint: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    schedule: str = Field(min_length=1, description="Which schedule fired (window start/end or heartbeat).")
    # Scheduler fills these from <aws.scheduler.scheduled-time> / <aws.scheduler.execution-id>.
    scheduled_time: datetime | None = Field(default=None, alias="scheduledTime")
    execution_id: str | None = Field(default=None, alias="executionId")

    @field_validator("scheduled_time", mode="before")
    @classmethod
    def _unfilled_placeholder(cls, value: object) -> object:
        # Invoked by hand (sam local invoke, tests) the placeholder arrives verbatim.
        if isinstance(value, str) and value.startswith("<aws.scheduler"):
            return None
        return value

    @property
    def event_id(self) -> str:
        moment = self.scheduled_time.isoformat() if self.scheduled_time else self.execution_id or "manual"
        return f"tick:{self.endpoint}:{self.schedule}:{moment}"


def parse_schedule_tick(event: object) -> ScheduleTick:
    try:
        return ScheduleTick.model_validate(event)
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc, "schedule tick")) from exc


class DeferredChange(BaseModel):
    """An event whose decision must run again later: the endpoint was busy or locked, or a cooldown runs.

    Replaying the source event (rather than storing absolute targets) means the later decision sees the
    endpoint as it is then; a newer transition of the same alarm supersedes it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["shadowscale.deferred-change"] = "shadowscale.deferred-change"
    change_id: str = Field(min_length=1)
    endpoint: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    source: AlarmTransition | ScheduleTick = Field(discriminator="kind")
    reason: str
    deferred_at: datetime = Field(description="When the source event was first deferred (kept across re-checks).")
    not_before: datetime | None = None
    waiting_for: str | None = Field(default=None, description="The shadow test whose hold the change waits for.")
    rechecks: int = Field(default=0, ge=0, description="How many times it came back and had to wait again.")

    @property
    def event_id(self) -> str:
        return f"deferred:{self.change_id}"

    def waiting_again(self, change_id: str, *, waiting_for: str | None = None) -> DeferredChange:
        """The same change sent round once more, under a new id: each delivery is its own idempotent event,
        so the next one is not taken for a duplicate of this one."""
        return self.model_copy(
            update={
                "change_id": change_id,
                "waiting_for": waiting_for or self.waiting_for,
                "rechecks": self.rechecks + 1,
            }
        )


def parse_deferred_change(body: object) -> DeferredChange:
    return parse_body(DeferredChange, body, "deferred change")
