"""What a stored policy implies outside DynamoDB: its EventBridge Scheduler schedules and its alarm rule.

`apply` makes the account match the policy exactly: it creates what is missing, updates what differs
and deletes what the policy no longer implies. Names are derived from the endpoint, so the set a policy
owns can be listed and compared without any bookkeeping of our own.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from shadowscale.capacity.policy import CapacityPolicy, ScheduleWindow
from shadowscale.cli.errors import NotFound, UsageProblem

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackTypeDef
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

RULE_NAME_LIMIT = 64


class DeployedOutputs(BaseModel):
    """Outputs of the deployed stack (template.yaml Outputs) that a command needs, read by stack name."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_stack(cls, cloudformation: CloudFormationClient, stack_name: str | None) -> Self:
        """The outputs of `stack_name`, or of the one stack in the region that has them all (None)."""
        stack = cls._discover(cloudformation) if stack_name is None else cls._described(cloudformation, stack_name)
        outputs = _outputs_of(stack)
        missing = sorted(set(cls.required_outputs()) - set(outputs))
        if missing:
            raise UsageProblem(
                f"stack {stack['StackName']!r} lacks the outputs {', '.join(missing)}: "
                "is it a shadowscale stack, deployed from this version's template.yaml?"
            )
        return cls.model_validate(outputs)

    @classmethod
    def required_outputs(cls) -> tuple[str, ...]:
        return tuple(name for name, field in cls.model_fields.items() if field.is_required())

    @staticmethod
    def _described(cloudformation: CloudFormationClient, stack_name: str) -> StackTypeDef:
        try:
            return cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        except cloudformation.exceptions.ClientError as exc:
            # CloudFormation answers ValidationError "Stack with id X does not exist" for a missing stack.
            if exc.response.get("Error", {}).get("Code") == "ValidationError":
                region = cloudformation.meta.region_name
                raise NotFound(f"stack {stack_name!r} not found in {region}") from exc
            raise

    @classmethod
    def _discover(cls, cloudformation: CloudFormationClient) -> StackTypeDef:
        wanted = set(cls.required_outputs())
        candidates = [
            stack
            for page in cloudformation.get_paginator("describe_stacks").paginate()
            for stack in page["Stacks"]
            if wanted <= set(_outputs_of(stack)) and not stack["StackStatus"].startswith("DELETE")
        ]
        region = cloudformation.meta.region_name
        if not candidates:
            raise NotFound(
                f"no shadowscale stack found in {region}: deploy one (sam deploy), "
                "or name it with --stack-name or SHADOWSCALE_STACK"
            )
        if len(candidates) > 1:
            names = ", ".join(sorted(stack["StackName"] for stack in candidates))
            raise UsageProblem(f"several shadowscale stacks in {region} ({names}): pick one with --stack-name")
        return candidates[0]


def _outputs_of(stack: StackTypeDef) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


class StackOutputs(DeployedOutputs):
    """The deployed stack's outputs the policy commands need."""

    PolicyTableName: str
    EndpointStateTableName: str
    ScheduleGroupName: str
    SchedulerRoleArn: str
    ScheduledScalerFunctionArn: str
    AlarmScalerFunctionArn: str
    AlarmRulePrefix: str
    DeadLetterQueueUrl: str

    @property
    def dead_letter_queue_arn(self) -> str:
        # https://sqs.<region>.amazonaws.com/<account>/<name> → arn:aws:sqs:<region>:<account>:<name>
        host, account, name = self.DeadLetterQueueUrl.split("/")[-3:]
        region = host.split(".")[1] if host.startswith("sqs.") else self.ScheduledScalerFunctionArn.split(":")[3]
        partition = self.ScheduledScalerFunctionArn.split(":")[1]
        return f"arn:{partition}:sqs:{region}:{account}:{name}"


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _slug(text: str, length: int) -> str:
    return re.sub(r"[^0-9a-zA-Z_-]", "-", text)[:length]


def schedule_prefix(endpoint: str) -> str:
    """Unique per endpoint even when endpoint names share their first characters."""
    return f"{_slug(endpoint, 24)}-{_short_hash(endpoint)}-"


def rule_name(prefix: str, endpoint: str) -> str:
    name = f"{prefix}{_slug(endpoint, RULE_NAME_LIMIT - len(prefix) - 10)}-{_short_hash(endpoint)}"
    return name[:RULE_NAME_LIMIT]


class DesiredSchedule(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    expression: str
    timezone: str
    label: str  # what the tick names as its schedule, for logs
    start_date: str | None = None


def desired_schedules(policy: CapacityPolicy) -> list[DesiredSchedule]:
    prefix = schedule_prefix(policy.endpoint)
    schedules = [
        DesiredSchedule(
            name=f"{prefix}heartbeat",
            expression=f"rate({policy.reconcile_minutes} minute{'s' if policy.reconcile_minutes > 1 else ''})",
            timezone="UTC",
            label="heartbeat",
        )
    ]
    for variant in policy.variants:
        for window in variant.schedules:
            schedules.extend(_window_schedules(prefix, variant.name, window))
    return schedules


def _window_schedules(prefix: str, variant: str, window: ScheduleWindow) -> list[DesiredSchedule]:
    stem = f"{prefix}{_short_hash(variant + '/' + window.name, 4)}-{_slug(window.name, 16)}"
    start_date = window.local_anchor.isoformat() if window.local_anchor else None
    edges = [
        DesiredSchedule(
            name=f"{stem}-start",
            expression=window.start,
            timezone=window.timezone,
            label=f"{variant}/{window.name}.start",
            start_date=start_date,
        )
    ]
    if window.end is not None:
        edges.append(
            DesiredSchedule(
                name=f"{stem}-end",
                expression=window.end,
                timezone=window.timezone,
                label=f"{variant}/{window.name}.end",
            )
        )
    # Windows with durationMinutes end at the next heartbeat: the tick recomputes the windows in force.
    return edges


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    rule: Literal["create-or-update", "delete", "none"] = "none"
    rule_name: str = ""
    alarms: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        lines = [f"schedule {name}: create" for name in self.create]
        lines += [f"schedule {name}: update" for name in self.update]
        lines += [f"schedule {name}: delete" for name in self.delete]
        if self.rule == "create-or-update":
            lines.append(f"rule {self.rule_name}: route alarms {', '.join(self.alarms)} to the alarm scaler")
        elif self.rule == "delete":
            lines.append(f"rule {self.rule_name}: delete (no alarms in the policy)")
        return lines


class PolicyWiring:
    def __init__(self, outputs: StackOutputs, scheduler: EventBridgeSchedulerClient, events: EventBridgeClient) -> None:
        self._outputs = outputs
        self._scheduler = scheduler
        self._events = events

    # --- schedules ---------------------------------------------------------------------------

    def existing_schedules(self, endpoint: str) -> list[str]:
        names: list[str] = []
        paginator = self._scheduler.get_paginator("list_schedules")
        for page in paginator.paginate(GroupName=self._outputs.ScheduleGroupName, NamePrefix=schedule_prefix(endpoint)):
            names.extend(schedule["Name"] for schedule in page.get("Schedules", []))
        return names

    def plan(self, policy: CapacityPolicy | None, endpoint: str) -> Plan:
        desired = {schedule.name for schedule in desired_schedules(policy)} if policy else set()
        existing = set(self.existing_schedules(endpoint))
        alarms = policy.alarm_names if policy else ()
        return Plan(
            create=sorted(desired - existing),
            update=sorted(desired & existing),
            delete=sorted(existing - desired),
            rule="create-or-update" if alarms else "delete",
            rule_name=rule_name(self._outputs.AlarmRulePrefix, endpoint),
            alarms=alarms,
        )

    def apply(self, policy: CapacityPolicy) -> Plan:
        plan = self.plan(policy, policy.endpoint)
        for schedule in desired_schedules(policy):
            definition = self._schedule_definition(policy.endpoint, schedule)
            if schedule.name in plan.create:
                self._scheduler.create_schedule(**definition)
            else:
                self._scheduler.update_schedule(**definition)
        for name in plan.delete:
            self._scheduler.delete_schedule(Name=name, GroupName=self._outputs.ScheduleGroupName)
        if plan.alarms:
            self._put_alarm_rule(plan.rule_name, plan.alarms)
        else:
            self._delete_alarm_rule(plan.rule_name)
        return plan

    def remove(self, endpoint: str) -> Plan:
        plan = self.plan(None, endpoint)
        for name in plan.delete:
            self._scheduler.delete_schedule(Name=name, GroupName=self._outputs.ScheduleGroupName)
        self._delete_alarm_rule(plan.rule_name)
        return plan

    def _schedule_definition(self, endpoint: str, schedule: DesiredSchedule) -> dict[str, Any]:
        tick = {
            "kind": "shadowscale.schedule-tick",
            "endpoint": endpoint,
            "schedule": schedule.label,
            "scheduledTime": "<aws.scheduler.scheduled-time>",
            "executionId": "<aws.scheduler.execution-id>",
        }
        definition: dict[str, Any] = {
            "Name": schedule.name,
            "GroupName": self._outputs.ScheduleGroupName,
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Description": f"shadowscale: {endpoint} {schedule.label}",
            "Target": {
                "Arn": self._outputs.ScheduledScalerFunctionArn,
                "RoleArn": self._outputs.SchedulerRoleArn,
                "Input": json.dumps(tick),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 900},
                "DeadLetterConfig": {"Arn": self._outputs.dead_letter_queue_arn},
            },
        }
        if schedule.start_date:
            definition["StartDate"] = schedule.start_date
        return definition

    # --- alarm rule --------------------------------------------------------------------------

    def _put_alarm_rule(self, name: str, alarms: tuple[str, ...]) -> None:
        pattern = {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"alarmName": sorted(alarms), "state": {"value": ["ALARM", "OK"]}},
        }
        self._events.put_rule(
            Name=name,
            EventPattern=json.dumps(pattern),
            State="ENABLED",
            Description="shadowscale: alarm transitions of one capacity policy",
        )
        self._events.put_targets(
            Rule=name,
            Targets=[
                {
                    "Id": "alarm-scaler",
                    "Arn": self._outputs.AlarmScalerFunctionArn,
                    "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600},
                    "DeadLetterConfig": {"Arn": self._outputs.dead_letter_queue_arn},
                }
            ],
        )

    def _delete_alarm_rule(self, name: str) -> None:
        existing = self._events.list_rules(NamePrefix=name).get("Rules", [])
        if not any(rule.get("Name") == name for rule in existing):
            return
        targets = self._events.list_targets_by_rule(Rule=name).get("Targets", [])
        if targets:
            self._events.remove_targets(Rule=name, Ids=[target["Id"] for target in targets])
        self._events.delete_rule(Name=name)
