"""The embedded local cloud: moto + the real stack + our functions run in-process + an accelerated clock.

It plays the parts of AWS that moto only stores:
- EventBridge Scheduler: schedules in the stack's groups fire on the clock (our own evaluator of
  cron/rate/at expressions, with their time zones), with the scheduler's input placeholders filled.
- SQS event source mappings: messages are delivered in batches when due on the clock (DelaySeconds,
  visibility timeout after a batch item failure, redrive to the DLQ after maxReceiveCount).
- CloudWatch alarm state changes (SetAlarmState, or the simulated endpoint's metrics): delivered as the
  alarm's Lambda action and as an EventBridge "CloudWatch Alarm State Change" event to matching rules.
- Simulated endpoints (`simulate()`): traffic served step by step in time order with everything else,
  publishing SageMaker's metrics and data capture; metric alarms are then evaluated every minute
  (alarm_evaluation.py), so a spike trips a real alarm and a scale-out really lowers latency. Each
  minute SQS's queue depth is published too, so the stack's dead-letter alarm works.
- IAM (`enforce_iam`, on by default): every function runs under its own execution role, state machines'
  SDK integrations under theirs, schedules invoke with their role, and an event source mapping polls
  with the function's role; iam_enforcement.py authorises each of these requests as AWS would. The
  operator (tests, CLI, `cloud.client()`) is allowed everything.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo

from shadowscale.capacity.schedule_expressions import ScheduleExpression

from shadowscale_localcloud.alarm_evaluation import AlarmEvaluator
from shadowscale_localcloud.autoscaling_gaps import AutoScalingGapFill
from shadowscale_localcloud.cloudwatch_alarm_updates import AlarmUpdatesKeepState
from shadowscale_localcloud.cloudwatch_gaps import CloudWatchPercentiles, CloudWatchValueCounts
from shadowscale_localcloud.endpoint_invocations import EndpointInvocations, ModelFunction, models_from_environment
from shadowscale_localcloud.eventbridge_delivery import RuleTargetDelivery
from shadowscale_localcloud.iam_enforcement import AccessDenied, IamEnforcement, RoleSessions, sqs_poll_checks
from shadowscale_localcloud.lambda_runtime import InProcessLambdaRuntime
from shadowscale_localcloud.request_validation import RequestValidation
from shadowscale_localcloud.resources import ACCOUNT, REGION
from shadowscale_localcloud.sagemaker_gaps import SageMakerGapFill
from shadowscale_localcloud.scheduler_gaps import SchedulerClock
from shadowscale_localcloud.simulated_endpoint import CaptureSimulation, ModelServer, SimulatedEndpoint, TrafficPattern
from shadowscale_localcloud.stack import DeployedStack, apply_bucket_notifications, deploy_stack
from shadowscale_localcloud.stepfunctions_gaps import StepFunctionsOnTheClock


@dataclass
class AcceleratedClock:
    """Simulated time: it moves only when the local cloud advances it (or a retry sleeps)."""

    current: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class _Pending:
    due: datetime
    receives: int = 0


@dataclass
class Delivery:
    at: datetime
    kind: str  # "schedule" | "sqs" | "alarm-action" | "eventbridge"
    target: str
    detail: str
    error: str | None = None


@dataclass
class LocalCloud:
    root: Path
    clock: AcceleratedClock = field(default_factory=AcceleratedClock)
    stage: str = "dev"
    stack_name: str = "shadowscale-local"
    # Stack parameters over stack.LOCAL_PARAMETERS (e.g. a narrower EndpointNamePattern).
    parameters: dict[str, str] = field(default_factory=dict)
    endpoint_update_seconds: float = 45.0
    # A new endpoint config stays invisible this long (eventual consistency), so every run exercises it.
    config_visibility_seconds: float = 5.0
    deliveries: list[Delivery] = field(default_factory=list)
    stack: DeployedStack | None = None
    gaps: SageMakerGapFill | None = None
    runtime: InProcessLambdaRuntime | None = None
    percentiles: CloudWatchPercentiles = field(default_factory=CloudWatchPercentiles)
    value_counts: CloudWatchValueCounts = field(default_factory=CloudWatchValueCounts)
    alarm_updates: AlarmUpdatesKeepState = field(default_factory=AlarmUpdatesKeepState)
    scheduler_clock: SchedulerClock | None = None
    request_validation: RequestValidation = field(default_factory=RequestValidation)
    rule_targets: RuleTargetDelivery | None = None  # EventBridge rule → Lambda target, retries, DLQ
    autoscaling_gaps: AutoScalingGapFill = field(default_factory=AutoScalingGapFill)
    simulations: list[SimulatedEndpoint] = field(default_factory=list)
    # SageMaker model name → the user's model for InvokeEndpoint (a function or "module:function"), over
    # SHADOWSCALE_LOCAL_MODELS; models not named keep the simulated answers.
    models: dict[str, ModelFunction | str] = field(default_factory=dict)
    invocations: EndpointInvocations | None = None
    alarm_evaluator: AlarmEvaluator | None = None
    _next_alarm_evaluation: datetime | None = None
    stepfunctions: StepFunctionsOnTheClock | None = None
    # IAM enforced on the stack's roles (iam_enforcement.py); off only for a test that wants moto's leniency.
    enforce_iam: bool = True
    role_sessions: RoleSessions | None = None
    iam: IamEnforcement | None = None
    _role_clients: dict[str, Any] = field(default_factory=dict)
    clock_lock: threading.RLock = field(default_factory=threading.RLock)
    _mock: Any = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)  # service → the operator's client
    _clients_lock: threading.Lock = field(default_factory=threading.Lock)
    _mappings: dict[str, tuple[str, int]] = field(default_factory=dict)  # queue name → (function arn, batch)
    _pending: dict[str, _Pending] = field(default_factory=dict)  # message id → due/receives
    _last_tick: dict[str, datetime] = field(default_factory=dict)  # schedule → last instant examined
    _alarm_hook: Any = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        import boto3
        from moto import mock_aws

        # moto's interpreter logs every caught error (a Choice's IsPresent miss, a Catch) at ERROR; the
        # execution history has them all, so keep them out of the console.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        # moto runs state machines (ASL) only when asked to.
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        self._session = boto3.Session(region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106  (moto accepts any)
        self._clients.clear()
        self.role_sessions = RoleSessions().install()
        if self.enforce_iam:
            self.iam = IamEnforcement(self.role_sessions).install()
        self.gaps = SageMakerGapFill(
            clock=self.clock.now,
            update_seconds=self.endpoint_update_seconds,
            config_visibility_seconds=self.config_visibility_seconds,
        ).install()
        self.percentiles.install()
        self.value_counts.install()
        self.alarm_updates.install()
        self.scheduler_clock = SchedulerClock(self.clock.now).install()
        self.request_validation.install()
        self.rule_targets = RuleTargetDelivery(
            invoke=self._invoke, start=self._start_as_rule_target, now=self.clock.now, client=self.client
        )
        self.autoscaling_gaps.install()
        self.invocations = EndpointInvocations(clock=self.clock.now, simulations=self.simulations, lock=self.clock_lock)
        for model_name, function in {**models_from_environment(), **self.models}.items():
            self.invocations.serve_model(model_name, function)
        self.invocations.install()
        self.stack = deploy_stack(
            self._session, self.root, stack_name=self.stack_name, stage=self.stage, parameters=self.parameters
        )
        self.runtime = InProcessLambdaRuntime(
            code_dirs=self.stack.code_dirs,
            log_groups=self.stack.log_groups,
            credentials=self.role_sessions.function_environment,
            clock=self.clock,
        ).install()
        self.stepfunctions = StepFunctionsOnTheClock(
            advance=self.advance,
            sleep=self.clock.sleep,
            now=self.clock.now,
            publish=self.put_event,
            lock=self.clock_lock,
        ).install()
        self._take_over_event_source_mappings()
        apply_bucket_notifications(self._session, self.stack)
        self._hook_alarm_state_changes()
        return self

    def stop(self) -> None:
        if self.stepfunctions is not None:
            self.stepfunctions.uninstall()
        if self._alarm_hook is not None:
            from moto.cloudwatch import models as cloudwatch_models

            cloudwatch_models.CloudWatchBackend.set_alarm_state = self._alarm_hook  # type: ignore[method-assign]
            self._alarm_hook = None
        if self.runtime is not None:
            self.runtime.uninstall()
        if self.iam is not None:
            self.iam.uninstall()
        if self.role_sessions is not None:
            self.role_sessions.uninstall()
        if self.gaps is not None:
            self.gaps.uninstall()
        self.percentiles.uninstall()
        self.value_counts.uninstall()
        self.alarm_updates.uninstall()
        if self.scheduler_clock is not None:
            self.scheduler_clock.uninstall()
        self.request_validation.uninstall()
        self.autoscaling_gaps.uninstall()
        if self.invocations is not None:
            self.invocations.uninstall()
        if self._mock is not None:
            self._mock.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:  # noqa: ANN401
        # One client per service: building one costs milliseconds, a test asks for hundreds, and botocore
        # clients are thread-safe (a Session's client() is not: hence the lock).
        with self._clients_lock:
            found = self._clients.get(service)
            if found is None:
                found = self._clients[service] = self._session.client(service, region_name=REGION)
            return found

    def serve_model(self, model_name: str, function: ModelFunction | str) -> None:
        """InvokeEndpoint on a variant of SageMaker model `model_name` answers with `function` from now on."""
        self.models[model_name] = function
        if self.invocations is not None:
            self.invocations.serve_model(model_name, function)

    @property
    def outputs(self) -> dict[str, str]:
        assert self.stack is not None
        return self.stack.outputs

    # --- time ---------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock forward, delivering every schedule firing and due message in time order.

        One thread at a time: a state machine's Wait state advances from moto's thread, the server's
        ticker from its own (re-entrant: a function run during an advance may end an execution)."""
        with self.clock_lock:
            target = self.clock.now() + timedelta(seconds=seconds)
            # Read once per advance: functions never create schedules, only the CLI between advances does.
            schedules = self._schedules()
            while True:
                upcoming = self._next_happening(target, schedules)
                if upcoming is None:
                    break
                moment, action = upcoming
                self.clock.current = max(self.clock.current, moment)
                action()
            self.clock.current = max(self.clock.current, target)

    def advance_to(self, moment: datetime) -> None:
        self.advance(max(0.0, (moment - self.clock.now()).total_seconds()))

    def _next_happening(self, limit: datetime, schedules: list[dict[str, Any]]) -> tuple[datetime, Any] | None:
        # Simulated traffic first: at equal instants a step (the minute just past) precedes what reacts to it.
        candidates: list[tuple[datetime, Any]] = self._simulation_happenings(limit)
        now = self.clock.now()
        for schedule in schedules:
            fire = self._next_fire(schedule, now)
            if fire is not None and fire <= limit:
                candidates.append((fire, lambda s=schedule, f=fire: self._fire(s, f)))
        self._track_new_messages()
        due_queues: dict[str, datetime] = {}
        for queue_name, message in self._queued():
            pending = self._pending[message.id]
            if pending.due <= limit:
                due_queues[queue_name] = min(due_queues.get(queue_name, pending.due), pending.due)
        for queue_name, due in due_queues.items():
            candidates.append((max(due, now), lambda q=queue_name: self._deliver(q)))
        return min(candidates, key=lambda candidate: candidate[0]) if candidates else None

    # --- simulated endpoints and alarm evaluation --------------------------------------------

    def simulate(
        self,
        endpoint_name: str,
        traffic: TrafficPattern,
        *,
        models: dict[str, ModelServer] | None = None,
        default_model: ModelServer | None = None,
        capture: CaptureSimulation | None = None,
        step_seconds: int = 60,
        seed: int = 1,
    ) -> SimulatedEndpoint:
        """Serve `traffic` on an existing endpoint from now on, in step with the clock; `models` names the
        model server behind each variant (production or shadow). Alarms are evaluated from now on."""
        simulation = SimulatedEndpoint(
            name=endpoint_name,
            traffic=traffic,
            models=dict(models or {}),
            default_model=default_model or ModelServer(),
            capture=capture or CaptureSimulation(),
            step_seconds=step_seconds,
            seed=seed,
        ).start_at(self.clock.now())
        self.simulations.append(simulation)
        self.evaluate_alarms()
        return simulation

    def evaluate_alarms(self) -> AlarmEvaluator:
        """Evaluate every metric alarm at each minute boundary from now on, as CloudWatch does. Off until
        asked (or until simulate()): a SetAlarmState change then lasts only until the next evaluation."""
        if self.alarm_evaluator is None:
            self.alarm_evaluator = AlarmEvaluator()
            minute = self.clock.now().replace(second=0, microsecond=0)
            self._next_alarm_evaluation = minute + timedelta(minutes=1)
        return self.alarm_evaluator

    def _simulation_happenings(self, limit: datetime) -> list[tuple[datetime, Any]]:
        found: list[tuple[datetime, Any]] = []
        for simulation in self.simulations:
            due = simulation.next_due()
            if due is not None and due <= limit:
                found.append((due, lambda s=simulation, d=due: s.run_until(d)))
        if self._next_alarm_evaluation is not None and self._next_alarm_evaluation <= limit:
            found.append((self._next_alarm_evaluation, self._evaluate_alarms))
        return found

    def _evaluate_alarms(self) -> None:
        assert self.alarm_evaluator is not None
        assert self._next_alarm_evaluation is not None
        moment = self._next_alarm_evaluation
        self._next_alarm_evaluation = moment + timedelta(minutes=1)
        self._publish_queue_depths(moment)
        self.alarm_evaluator.evaluate(moment)

    def _publish_queue_depths(self, moment: datetime) -> None:
        """SQS's per-minute ApproximateNumberOfMessagesVisible (the stack's dead-letter alarm watches it),
        counted on the clock: a message is visible once its delay or visibility timeout has passed."""
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.sqs.models import sqs_backends

        self._track_new_messages()
        minute = (moment - timedelta(minutes=1)).astimezone(UTC).replace(tzinfo=None)  # moto: naive UTC
        depths = [
            {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": name}],
                "Timestamp": minute,
                "Unit": "Count",
                "Value": float(
                    sum(
                        1
                        for message in queue._messages
                        if message.id not in self._pending or self._pending[message.id].due <= moment
                    )
                ),
            }
            for name, queue in sqs_backends[ACCOUNT][REGION].queues.items()
        ]
        if depths:
            cloudwatch_backends[ACCOUNT][REGION].put_metric_data("AWS/SQS", depths)

    # --- EventBridge Scheduler ----------------------------------------------------------------

    def _schedules(self) -> list[dict[str, Any]]:
        # Every advance asks; the scheduler gap counts Create/Update/Delete, so the API is read only after one.
        if self.scheduler_clock is None:
            return self._read_schedules()
        return self.scheduler_clock.listing(self._read_schedules)

    def _read_schedules(self) -> list[dict[str, Any]]:
        scheduler = self.client("scheduler")
        found = []
        for group in scheduler.list_schedule_groups().get("ScheduleGroups", []):
            for summary in scheduler.list_schedules(GroupName=group["Name"]).get("Schedules", []):
                schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=group["Name"])
                if schedule.get("State", "ENABLED") == "ENABLED":
                    found.append(schedule)
        return found

    def _next_fire(self, schedule: dict[str, Any], now: datetime) -> datetime | None:
        key = f"{schedule['GroupName']}/{schedule['Name']}"
        since = self._last_tick.setdefault(key, now)
        expression = ScheduleExpression.parse(schedule["ScheduleExpression"])
        zone = ZoneInfo(schedule.get("ScheduleExpressionTimezone") or "UTC")
        anchor = schedule.get("StartDate") or schedule.get("CreationDate")
        anchor_moment = anchor if isinstance(anchor, datetime) else None
        return expression.next_fire_after(since, zone, anchor_moment)

    def _fire(self, schedule: dict[str, Any], fire: datetime) -> None:
        self._last_tick[f"{schedule['GroupName']}/{schedule['Name']}"] = fire
        target = schedule["Target"]
        payload = (
            target.get("Input", "{}")
            .replace("<aws.scheduler.scheduled-time>", fire.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
        )
        # EventBridge Scheduler invokes the target with the schedule's execution role.
        self._invoke(target["Arn"], payload, kind="schedule", detail=schedule["Name"], role_arn=target.get("RoleArn"))

    # --- SQS event source mappings ------------------------------------------------------------

    def _take_over_event_source_mappings(self) -> None:
        """moto delivers on send and ignores delays and partial failures; the clock delivers instead."""
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[ACCOUNT][REGION]
        for queue in backend.queues.values():
            for mapping in list(queue.lambda_event_source_mappings.values()):
                self._mappings[queue.name] = (mapping.function_arn, int(mapping.batch_size or 10))
            queue.lambda_event_source_mappings.clear()

    def _queued(self) -> Iterator[tuple[str, Any]]:
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[ACCOUNT][REGION]
        for queue_name in self._mappings:
            for message in list(backend.queues[queue_name]._messages):
                yield queue_name, message

    def _track_new_messages(self) -> None:
        for _, message in self._queued():
            if message.id not in self._pending:
                delay = max(0.0, (message.delayed_until - (message.sent_timestamp or 0)) / 1000.0)
                self._pending[message.id] = _Pending(due=self.clock.now() + timedelta(seconds=delay))

    def _deliver(self, queue_name: str) -> None:
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[ACCOUNT][REGION].queues[queue_name]
        function_arn, batch_size = self._mappings[queue_name]
        now = self.clock.now()
        batch = [m for name, m in self._queued() if name == queue_name and self._pending[m.id].due <= now][:batch_size]
        if not batch:
            return
        denied = self._poll_denied(queue.queue_arn, function_arn)
        if denied is not None:
            # The mapping cannot read the queue: the messages stay until its role may (polled again later).
            self.deliveries.append(Delivery(now, "sqs", function_arn.rsplit(":", 1)[-1], queue_name, denied))
            for message in batch:
                self._pending[message.id].due = now + timedelta(seconds=60)
            return
        for message in batch:
            self._pending[message.id].receives += 1
        failed = self._invoke_batch(queue, function_arn, batch)
        for message in batch:
            self._settle(queue, message, failed=message.id in failed, now=now)

    def _invoke_batch(self, queue: Any, function_arn: str, batch: list[Any]) -> set[str]:  # noqa: ANN401
        """Invoke the function with the batch as Lambda's SQS poller does; the ids of the messages it failed
        (ReportBatchItemFailures, or all of them when the invocation itself failed)."""
        from shadowscale_localcloud.resources import sqs_event

        event = sqs_event([message.body for message in batch], queue.queue_arn)
        for record, message in zip(event["Records"], batch, strict=True):
            record["messageId"] = message.id
            record["attributes"]["ApproximateReceiveCount"] = str(self._pending[message.id].receives)
        result = self._invoke(function_arn, json.dumps(event), kind="sqs", detail=queue.name, synchronous=True)
        if isinstance(result, dict) and "errorType" in result:
            return {message.id for message in batch}
        return {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}

    def _settle(self, queue: Any, message: Any, *, failed: bool, now: datetime) -> None:  # noqa: ANN401
        """A delivered message is deleted; a failed one becomes visible again after the visibility timeout,
        or moves to the dead-letter queue once it has been received maxReceiveCount times."""
        pending = self._pending[message.id]
        redrive = json.loads(queue.redrive_policy) if isinstance(queue.redrive_policy, str) else queue.redrive_policy
        if failed and not (redrive and pending.receives >= int(redrive["maxReceiveCount"])):
            pending.due = now + timedelta(seconds=int(getattr(queue, "visibility_timeout", 30) or 30))
            return
        if failed:
            dead_letter_url = (
                f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{redrive['deadLetterTargetArn'].split(':')[-1]}"
            )
            self.client("sqs").send_message(QueueUrl=dead_letter_url, MessageBody=message.body)
        queue._messages.remove(message)
        del self._pending[message.id]

    def _poll_denied(self, queue_arn: str, function_arn: str) -> str | None:
        """Lambda polls, deletes and decrypts with the function's execution role: authorise it."""
        if self.iam is None:
            return None
        from moto.awslambda.models import lambda_backends

        function = lambda_backends[ACCOUNT][REGION].get_function(function_arn)
        try:
            self.iam.check_as(
                function.role,
                function.function_name,
                f"function {function.function_name}",
                "lambda:EventSourceMapping",
                sqs_poll_checks(queue_arn, self.iam.backends),
            )
        except AccessDenied as denied:
            return f"AccessDenied: {denied}"
        return None

    # --- CloudWatch alarms --------------------------------------------------------------------

    def _hook_alarm_state_changes(self) -> None:
        from moto.cloudwatch import models as cloudwatch_models

        original = cloudwatch_models.CloudWatchBackend.set_alarm_state
        self._alarm_hook = original
        cloud = self

        def set_alarm_state(
            backend: cloudwatch_models.CloudWatchBackend,
            alarm_name: str,
            reason: str,
            reason_data: str,
            state_value: str,
        ) -> None:
            alarm = backend.alarms.get(alarm_name)
            previous = (alarm.state_value, alarm.state_reason, alarm.state_updated_timestamp) if alarm else None
            original(backend, alarm_name, reason, reason_data, state_value)
            if alarm is not None and previous is not None and previous[0] != state_value:
                cloud._alarm_changed(alarm, previous)

        cloudwatch_models.CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign,assignment]

    def _alarm_changed(self, alarm: Any, previous: tuple[str, str, datetime]) -> None:  # noqa: ANN401
        stamp = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        state = {"value": alarm.state_value, "reason": alarm.state_reason, "timestamp": stamp}
        if alarm.state_reason_data:
            state["reasonData"] = alarm.state_reason_data
        data = {
            "alarmName": alarm.name,
            "state": state,
            "previousState": {"value": previous[0], "reason": previous[1] or "", "timestamp": stamp},
            "configuration": {"description": alarm.description or "", "metrics": _alarm_metrics(alarm)},
        }
        arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm.name}"
        actions = {
            "OK": alarm.ok_actions,
            "ALARM": alarm.alarm_actions,
            "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
        }.get(alarm.state_value, [])
        # Disabled actions still change state and still reach EventBridge, as in CloudWatch.
        for action in (actions or []) if alarm.actions_enabled else []:
            if ":lambda:" in action:
                event = {
                    "source": "aws.cloudwatch",
                    "alarmArn": arn,
                    "accountId": ACCOUNT,
                    "time": stamp,
                    "region": REGION,
                    "alarmData": data,
                }
                self._invoke(action, json.dumps(event), kind="alarm-action", detail=alarm.name)
        bridge_event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": ACCOUNT,
            "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [arn],
            "detail": data,
        }
        self.put_event(bridge_event)

    def put_event(self, event: dict[str, Any]) -> None:
        """Deliver an event to the default bus's matching rules' Lambda and Step Functions targets (moto cannot)."""
        from moto.events.models import events_backends

        bus = events_backends[ACCOUNT][REGION].event_buses["default"]
        for rule in bus.rules.values():
            if rule.state != "ENABLED" or rule.event_pattern is None or not rule.event_pattern.matches_event(event):  # type: ignore[arg-type]
                continue
            for target in rule.targets:
                if (":lambda:" in target["Arn"] or ":states:" in target["Arn"]) and self.rule_targets is not None:
                    self.rule_targets.deliver(rule, target, event)

    # --- Step Functions ---------------------------------------------------------------------------

    def wait_for_execution(
        self, execution_arn: str, *, until: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Block (in wall time) until the execution ends, or until `until(describe_execution)` holds.

        The execution runs on moto's own thread; its Wait states advance this cloud's clock.
        """
        stepfunctions = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = stepfunctions.describe_execution(executionArn=execution_arn)
            if until is not None and until(described):
                return described
            if described["status"] != "RUNNING" and self._end_delivered(execution_arn):
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout} s")
            time.sleep(0.02)

    def recoveries(self, execution_arn: str) -> list[str]:
        """The recovery executions EventBridge started for `execution_arn`'s end, oldest first."""
        stepfunctions = self.client("stepfunctions")
        found = []
        for delivery in list(self.deliveries):
            if delivery.kind != "eventbridge" or ":execution:" not in delivery.detail:
                continue
            started = stepfunctions.describe_execution(executionArn=delivery.detail)
            if json.loads(started.get("input") or "{}").get("detail", {}).get("executionArn") == execution_arn:
                found.append(delivery.detail)
        return found

    def wait_for_recoveries(self, execution_arn: str, *, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Block until every recovery of `execution_arn` has ended; their descriptions."""
        return [self.wait_for_execution(arn, timeout=timeout) for arn in self.recoveries(execution_arn)]

    def _end_delivered(self, execution_arn: str) -> bool:
        ended = self.stepfunctions.ended if self.stepfunctions is not None else []
        return any(event["detail"]["executionArn"] == execution_arn for event in ended)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        stepfunctions = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in stepfunctions.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def step_to(self, execution_arn: str, state: str) -> None:
        """With waits held (`stepfunctions.hold_waits()`): let the execution pass one Wait state at a time
        until it waits in `state` (to act on a running test, e.g. abort it mid-bake)."""
        assert self.stepfunctions is not None
        gate = self.stepfunctions
        while True:
            self.wait_for_execution(execution_arn, until=lambda _: gate.waiting > 0)
            if self.in_state(execution_arn, state):
                return
            held = gate.holds
            gate.let_one_pass()
            self.wait_for_execution(execution_arn, until=lambda _, held=held: gate.holds > held)  # type: ignore[misc]

    def in_state(self, execution_arn: str, state: str) -> bool:
        """Whether the execution has entered `state` and not left it yet."""
        entered = [
            event
            for event in self.history(execution_arn)
            if event["type"].endswith("StateEntered") or event["type"].endswith("StateExited")
        ]
        return (
            bool(entered)
            and entered[-1]["type"].endswith("StateEntered")
            and (entered[-1].get("stateEnteredEventDetails", {}).get("name") == state)
        )

    # --- invocation ---------------------------------------------------------------------------

    def _invoke(
        self,
        function_arn: str,
        payload: str,
        *,
        kind: str,
        detail: str,
        synchronous: bool = False,
        role_arn: str | None = None,
    ) -> Any:  # noqa: ANN401
        response = self._lambda_client(role_arn).invoke(
            FunctionName=function_arn, Payload=payload.encode(), InvocationType="RequestResponse"
        )
        body = response["Payload"].read()
        result = json.loads(body) if body else None
        error = response.get("FunctionError") and (result or {}).get("errorType", "error")
        self.deliveries.append(Delivery(self.clock.now(), kind, function_arn.rsplit(":", 1)[-1], detail, error))
        return result

    def _start_as_rule_target(self, state_machine_arn: str, payload: str, role_arn: str | None) -> Any:  # noqa: ANN401
        # EventBridge names the execution itself (a UUID); moto would name it "None" when no name is given.
        started = self._role_client("stepfunctions", role_arn, "events", "rule role").start_execution(
            stateMachineArn=state_machine_arn, name=str(uuid.uuid4()), input=payload
        )
        self.deliveries.append(
            Delivery(
                self.clock.now(), "eventbridge", state_machine_arn.rsplit(":", 1)[-1], started["executionArn"], None
            )
        )
        return started

    def _role_client(self, service: str, role_arn: str | None, session: str, label: str) -> Any:  # noqa: ANN401
        """The operator's client, or one signed with a session of `role_arn` (a rule target's role)."""
        if role_arn is None or self.role_sessions is None:
            return self.client(service)
        key = f"{service}:{role_arn}"
        if key not in self._role_clients:
            import boto3

            credentials = self.role_sessions.credentials(role_arn, session, f"{label} {role_arn.rsplit('/', 1)[-1]}")
            self._role_clients[key] = boto3.Session(
                region_name=REGION,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
            ).client(service)  # type: ignore[call-overload]
        return self._role_clients[key]

    def _lambda_client(self, role_arn: str | None) -> Any:  # noqa: ANN401
        """The operator's Lambda client, or one signed with a session of `role_arn` (a schedule's role)."""
        return self._role_client("lambda", role_arn, "scheduler", "schedule role")


def _alarm_metrics(alarm: Any) -> list[dict[str, Any]]:  # noqa: ANN401
    """The alarm's metric as CloudWatch describes it in alarm events."""
    if not alarm.metric_name:
        return []
    statistic = alarm.extended_statistic or alarm.statistic
    metric = {
        "namespace": alarm.namespace,
        "name": alarm.metric_name,
        "dimensions": {dimension.name: dimension.value for dimension in alarm.dimensions},
    }
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
            "metricStat": {"metric": metric, "period": int(alarm.period), **({"stat": statistic} if statistic else {})},
            "returnData": True,
        }
    ]


@contextmanager
def local_cloud(root: Path, **options: Any) -> Iterator[LocalCloud]:  # noqa: ANN401
    cloud = LocalCloud(root=root, **options).start()
    try:
        yield cloud
    finally:
        cloud.stop()
