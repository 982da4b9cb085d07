"""The capacity policy: what one endpoint's variants may and should run, declared by its owners.

A policy is versioned (`apiVersion`), validated as a whole before anything is stored or applied, and
every validation message names the field path and the reason.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from functools import cached_property
from itertools import pairwise
from typing import Literal, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from shadowscale.capacity.schedule_expressions import ScheduleExpression, ScheduleExpressionError
from shadowscale.shared.errors import InvalidPolicy
from shadowscale.shared.validation import SAGEMAKER_NAME

API_VERSION = "shadowscale/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)


class StepAdjustment(_Strict):
    """One step of a step-scaling reaction, as in Application Auto Scaling step policies.

    Bounds are distances beyond the alarm threshold in the metric's own unit: a step applies when
    lowerBound <= breach < upperBound (no upperBound = unbounded).
    """

    lower_bound: float = Field(alias="lowerBound", ge=0)
    upper_bound: float | None = Field(default=None, alias="upperBound")
    change: int = Field(description="Instances to add (negative: to remove).")

    @model_validator(mode="after")
    def _upper_above_lower(self) -> Self:
        if self.upper_bound is not None and self.upper_bound <= self.lower_bound:
            raise ValueError(f"upperBound {self.upper_bound} must be greater than lowerBound {self.lower_bound}")
        return self


class AlarmAction(_Strict):
    """What to do on one alarm transition: a count change (stepped or fixed), a weight, or both."""

    steps: tuple[StepAdjustment, ...] | None = None
    change: int | None = Field(default=None, description="A fixed instance change, whatever the breach.")
    weight: float | None = Field(default=None, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _one_kind_of_change(self) -> Self:
        if self.steps is not None and self.change is not None:
            raise ValueError("give either steps or change, not both")
        if self.steps is None and self.change is None and self.weight is None:
            raise ValueError("give at least one of steps, change or weight")
        if self.steps is not None:
            _check_contiguous(self.steps)
        return self


def _check_contiguous(steps: tuple[StepAdjustment, ...]) -> None:
    if not steps:
        raise ValueError("steps must not be empty")
    ordered = sorted(steps, key=lambda step: step.lower_bound)
    if ordered[0].lower_bound != 0:
        raise ValueError("the first step must start at lowerBound 0 (the threshold itself)")
    for index, (current, following) in enumerate(pairwise(ordered)):
        if current.upper_bound != following.lower_bound:
            raise ValueError(
                f"steps must be contiguous: step {index} ends at {current.upper_bound} "
                f"but the next starts at {following.lower_bound}"
            )
    if ordered[-1].upper_bound is not None:
        raise ValueError("the last step must have no upperBound, so every breach size has a step")


class AlarmReaction(_Strict):
    alarm_name: str = Field(alias="alarmName", min_length=1, max_length=255)
    on_alarm: AlarmAction = Field(alias="onAlarm")
    metric_aggregation_type: Literal["Average", "Minimum", "Maximum"] = Field(
        default="Average",
        alias="metricAggregationType",
        description="How the evaluated datapoints are aggregated before the threshold is subtracted.",
    )
    on_ok: AlarmAction | None = Field(default=None, alias="onOk")

    @field_validator("on_ok")
    @classmethod
    def _ok_is_not_stepped(cls, value: AlarmAction | None) -> AlarmAction | None:
        # An OK transition carries no breach size, so a stepped reaction could never pick a step.
        if value is not None and value.steps is not None:
            raise ValueError("onOk cannot use steps (an OK state has no breach size); use change")
        return value


class ScheduleWindow(_Strict):
    """A recurring window: from each `start` until `end` (or for `durationMinutes`)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,40}$")
    start: str = Field(description="cron(...), rate(...) or at(...) expression, as EventBridge Scheduler takes.")
    end: str | None = Field(default=None, description="cron(...) expression that closes the window.")
    duration_minutes: int | None = Field(default=None, alias="durationMinutes", ge=1, le=366 * 24 * 60)
    timezone: str = Field(default="UTC")
    anchor: datetime | None = Field(
        default=None,
        description="For rate(...) windows: the first start (local time). Default: local midnight 1970-01-01.",
    )
    instances: int | None = Field(default=None, ge=0, le=10_000)
    weight: float | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("start")
    @classmethod
    def _start_parses(cls, value: str) -> str:
        return _parsed(value).text

    @field_validator("end")
    @classmethod
    def _end_parses(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().startswith("cron("):
            raise ValueError("end must be a cron(...) expression; use durationMinutes for a fixed length")
        return None if value is None else _parsed(value).text

    @model_validator(mode="after")
    def _bounded_and_useful(self) -> Self:
        if (self.end is None) == (self.duration_minutes is None):
            raise ValueError("give exactly one of end or durationMinutes")
        if self.instances is None and self.weight is None:
            raise ValueError("a window must set instances, weight, or both")
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def start_expression(self) -> ScheduleExpression:
        return ScheduleExpression.parse(self.start)

    @cached_property
    def end_expression(self) -> ScheduleExpression | None:
        return None if self.end is None else ScheduleExpression.parse(self.end)

    @cached_property
    def local_anchor(self) -> datetime | None:
        if self.anchor is None:
            return None
        return self.anchor if self.anchor.tzinfo else self.anchor.replace(tzinfo=self.zone)


def _parsed(text: str) -> ScheduleExpression:
    try:
        return ScheduleExpression.parse(text)
    except ScheduleExpressionError as exc:
        raise ValueError(str(exc)) from exc


class VariantPolicy(_Strict):
    name: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    min_instances: int = Field(alias="minInstances", ge=0, le=10_000)
    max_instances: int = Field(alias="maxInstances", ge=1, le=10_000)
    scale_out_cooldown_seconds: int = Field(default=60, alias="scaleOutCooldownSeconds", ge=0, le=86_400)
    scale_in_cooldown_seconds: int = Field(default=300, alias="scaleInCooldownSeconds", ge=0, le=86_400)
    weight: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Weight outside any window that sets one (unset: windows' weights stay until changed).",
    )
    schedules: tuple[ScheduleWindow, ...] = ()
    alarms: tuple[AlarmReaction, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_instances > self.max_instances:
            raise ValueError(f"minInstances {self.min_instances} is above maxInstances {self.max_instances}")
        _unique([window.name for window in self.schedules], "schedule name")
        _unique([reaction.alarm_name for reaction in self.alarms], "alarm name")
        for window in self.schedules:
            if window.instances is not None and not self.min_instances <= window.instances <= self.max_instances:
                raise ValueError(
                    f"schedule {window.name!r} asks for {window.instances} instances, outside "
                    f"[minInstances {self.min_instances}, maxInstances {self.max_instances}]"
                )
        return self


class CapacityPolicy(_Strict):
    api_version: Literal["shadowscale/v1"] = Field(alias="apiVersion")
    kind: Literal["CapacityPolicy"] = "CapacityPolicy"
    endpoint: str = Field(pattern=SAGEMAKER_NAME, max_length=63)
    dry_run: bool = Field(default=False, alias="dryRun")
    reconcile_minutes: int = Field(
        default=5,
        alias="reconcileMinutes",
        ge=1,
        le=1440,
        description="Heartbeat that re-applies the schedule state, ends duration windows and catches missed ticks.",
    )
    variants: tuple[VariantPolicy, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        _unique([variant.name for variant in self.variants], "variant name")
        _unique([reaction.alarm_name for variant in self.variants for reaction in variant.alarms], "alarm name")
        return self

    def variant(self, name: str) -> VariantPolicy | None:
        return next((variant for variant in self.variants if variant.name == name), None)

    def reaction_for(self, alarm_name: str) -> tuple[VariantPolicy, AlarmReaction] | None:
        for variant in self.variants:
            for reaction in variant.alarms:
                if reaction.alarm_name == alarm_name:
                    return variant, reaction
        return None

    @property
    def alarm_names(self) -> tuple[str, ...]:
        return tuple(reaction.alarm_name for variant in self.variants for reaction in variant.alarms)


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {name!r}")
        seen.add(name)


def parse_policy(document: object) -> CapacityPolicy:
    """Validate a policy document, turning every problem into one InvalidPolicy naming field paths."""
    try:
        return CapacityPolicy.model_validate(document)
    except ValidationError as exc:
        raise InvalidPolicy(f"invalid policy: {_policy_problems(exc)}") from exc


def _policy_problems(exc: ValidationError) -> str:
    """Each root problem once: a length error of a list whose items failed is their echo, not a problem
    of its own (pydantic counts the failed items out: "variants: Tuple should have at least 1 item")."""
    errors = exc.errors()
    failed_inside = {err["loc"][:depth] for err in errors for depth in range(1, len(err["loc"]))}
    kept = [err for err in errors if not (err["type"] == "too_short" and err["loc"] in failed_inside)]
    return "; ".join(f"{'.'.join(str(part) for part in err['loc']) or '(document)'}: {_problem(err)}" for err in kept)


def _problem(error: ErrorDetails) -> str:
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    known = _field_names_at(error["loc"][:-1])
    unknown = str(error["loc"][-1])
    close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else f" (known fields: {', '.join(sorted(known))})"
    return f"unknown field{hint}"


def _field_names_at(loc: tuple[int | str, ...]) -> list[str]:
    """The aliases a policy accepts at `loc` (e.g. ('variants', 0) → VariantPolicy's), by walking the models."""
    model: type[BaseModel] | None = CapacityPolicy
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue  # an item of a tuple field: same model as the field
        field = next((f for name, f in model.model_fields.items() if part in {name, f.alias}), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((found for arg in get_args(annotation) if (found := _model_in(arg)) is not None), None)
