"""`make demo`: one simulated Monday of an endpoint under the capacity autopilot, on the embedded local cloud.

Everything runs in this process: moto stands in for AWS, the SageMaker gap-fill adds what moto lacks
(an endpoint that is `Updating` for a while after each change, the in-progress error), and the real
function handlers (functions/*/app.py) receive the events EventBridge Scheduler, CloudWatch and SQS
would send, on an accelerated clock. Reports go to ./demo-output.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
ENDPOINT = "fraud-detector"
LATENCY_ALARM = "fraud-detector-latency-high"
CANDIDATE_ALARM = "fraud-detector-candidate-5xx"
UPDATE_SECONDS = 45  # how long the simulated endpoint stays `Updating` after a change


def repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "template.yaml").exists() and (parent / "functions").is_dir():
            return parent
    raise RuntimeError("run the demo from a checkout of shadowscale (template.yaml not found)")


def load_handler(root: Path, function: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The function's own app.py, loaded as Lambda would load it from its CodeUri."""
    spec = importlib.util.spec_from_file_location(f"{function}_app", root / "functions" / function / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = module.lambda_handler
    return handler


@dataclass
class AcceleratedClock:
    """Simulated time: advances only when the scenario (or a retry's sleep) says so."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    def at(self, hour: int, minute: int = 0) -> None:
        local = self.current.astimezone(BERLIN).replace(hour=hour, minute=minute, second=0, microsecond=0)
        self.current = max(self.current, local.astimezone(UTC))


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Demo:
    root: Path
    output: Path
    clock: AcceleratedClock
    sagemaker: Any
    intent_queue_url: str
    handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]]
    function_log: io.TextIOBase
    sqs: Any
    timeline: list[dict[str, Any]] = field(default_factory=list)
    last_event: dict[str, Any] = field(default_factory=dict)

    # --- what the platform would do --------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        # Function logs and EMF metrics go to a file, as CloudWatch Logs would keep them.
        with contextlib.redirect_stdout(self.function_log):
            return self.handlers[function](event, LambdaContext(function_name=f"shadowscale-local-{function}"))

    def tick(self, schedule: str) -> dict[str, Any]:
        return self.invoke(
            "scheduled_scaler",
            {
                "kind": "shadowscale.schedule-tick",
                "endpoint": ENDPOINT,
                "schedule": schedule,
                "scheduledTime": self.clock.now().isoformat(),
            },
        )

    def alarm(self, shape: str, alarm: str, state: str, worst: float | None = None) -> dict[str, Any]:
        event = copy.deepcopy(json.loads((self.root / "events" / f"alarm_{shape}_alarm.json").read_text()))
        data = event["alarmData"] if shape == "action" else event["detail"]
        data["alarmName"] = alarm
        data["state"]["value"] = state
        data["state"]["timestamp"] = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        reason = {"recentDatapoints": [worst], "threshold": 100000.0} if worst is not None else {}
        data["state"]["reasonData"] = json.dumps(reason)
        self.last_event = event
        return self.invoke("alarm_scaler", event)

    def deliver_deferred(self) -> dict[str, Any] | None:
        """Play the SQS event source mapping: deliver what is due on the deferred-change queue."""
        from shadowscale.localcloud.resources import queued_bodies, sqs_event

        bodies = queued_bodies(self.intent_queue_url, remove=True)
        if not bodies:
            return None
        arn = "arn:aws:sqs:us-east-1:123456789012:shadowscale-local-deferred-changes"
        result = self.invoke("deferred_scaler", sqs_event(bodies, arn))
        failed = [int(item["itemIdentifier"].removeprefix("m-")) for item in result["batchItemFailures"]]
        for index in failed:  # as SQS does after the visibility timeout
            self.sqs.send_message(QueueUrl=self.intent_queue_url, MessageBody=bodies[index])
        return {
            "outcome": "redelivery" if failed else "delivered",
            "changes": [],
            "notes": [f"{len(bodies)} deferred change(s) delivered, {len(failed)} still blocked"],
        }

    # --- what a person watches -------------------------------------------------------------------

    def variants(self) -> dict[str, tuple[int, float]]:
        described = self.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        return {
            v["VariantName"]: (v["CurrentInstanceCount"], v["CurrentWeight"]) for v in described["ProductionVariants"]
        }

    def step(self, what: str, report: dict[str, Any] | None) -> None:
        local = self.clock.now().astimezone(BERLIN).strftime("%a %H:%M")
        variants = self.variants()
        state = "  ".join(f"{name}={count}x w{weight:g}" for name, (count, weight) in variants.items())
        outcome = (report or {}).get("outcome", "-")
        print(f"  [{local} Berlin] {what:<58} {outcome:<10} {state}")
        for change in (report or {}).get("changes", []):
            if (
                change["instances_before"] != change["instances_after"]
                or change["weight_before"] != change["weight_after"]
            ):
                print(
                    f"{'':24}↳ {change['variant']}: {change['instances_before']}→{change['instances_after']} "
                    f"instances, weight {change['weight_before']:g}→{change['weight_after']:g} "
                    f"via {change['via']}: {change['reason']}"
                )
        if outcome != "applied":
            for note in (report or {}).get("notes", [])[:1]:
                print(f"{'':24}· {note}")
        self.timeline.append(
            {
                "at": self.clock.now().isoformat(),
                "step": what,
                "report": report,
                "variants": {name: {"instances": c, "weight": w} for name, (c, w) in variants.items()},
            }
        )

    def wait(self, seconds: float) -> None:
        self.clock.sleep(seconds)


def run(output: Path) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from shadowscale import composition
    from shadowscale.adapters.policy_store import PolicyRepository
    from shadowscale.cli.main import load_policy_file
    from shadowscale.cli.policy_wiring import PolicyWiring, StackOutputs
    from shadowscale.localcloud import resources
    from shadowscale.localcloud.sagemaker_gaps import SageMakerGapFill

    root = repo_root()
    output.mkdir(parents=True, exist_ok=True)
    clock = AcceleratedClock(datetime(2026, 11, 23, 5, 0, tzinfo=UTC))  # Monday 06:00 in Berlin
    with (
        mock_aws(),
        SageMakerGapFill(clock=clock.now, update_seconds=UPDATE_SECONDS) as gaps,
        (output / "function-logs.jsonl").open("w") as function_log,
    ):
        print("Setting up the local cloud (moto + SageMaker gap-fill) …")
        made = resources.create_capacity_resources(boto3, prefix="shadowscale-local")
        resources.apply_environment(made.environment(POLICY_CACHE_SECONDS="0"))
        composition.set_clock(clock)
        sagemaker = boto3.client("sagemaker", region_name=resources.REGION)
        resources.create_endpoint(sagemaker, ENDPOINT, {"primary": (1, 1.0), "candidate": (1, 0.1)})
        print(f"  endpoint {ENDPOINT}: variants primary (1 instance) and candidate (1 instance, weight 0.1)")

        policy = load_policy_file(root / "examples" / "capacity_policy.yaml")
        dynamodb = boto3.client("dynamodb", region_name=resources.REGION)
        revision = PolicyRepository(dynamodb, made.policy_table).put(policy)
        boto3.client("scheduler", region_name=resources.REGION).create_schedule_group(Name="shadowscale-local")
        outputs = StackOutputs(
            PolicyTableName=made.policy_table,
            EndpointStateTableName=made.state_table,
            ScheduleGroupName="shadowscale-local",
            SchedulerRoleArn="arn:aws:iam::123456789012:role/scheduler",
            ScheduledScalerFunctionArn="arn:aws:lambda:us-east-1:123456789012:function:shadowscale-local-scheduled-scaler",
            AlarmScalerFunctionArn="arn:aws:lambda:us-east-1:123456789012:function:shadowscale-local-alarm-scaler",
            AlarmRulePrefix="shadowscale-local-",
            DeadLetterQueueUrl=made.dead_letter_queue_url,
        )
        plan = PolicyWiring(
            outputs,
            boto3.client("scheduler", region_name=resources.REGION),
            boto3.client("events", region_name=resources.REGION),
        ).apply(policy)
        print(f"  policy apply examples/capacity_policy.yaml → revision {revision}")
        for line in plan.lines():
            print(f"    {line}")

        from shadowscale.observability import logger

        previous_stream = logger.registered_handler.setStream(function_log)  # type: ignore[attr-defined]
        handlers = {name: load_handler(root, name) for name in ("scheduled_scaler", "alarm_scaler", "deferred_scaler")}
        demo = Demo(
            root,
            output,
            clock,
            sagemaker,
            made.intent_queue_url,
            handlers,
            function_log,
            boto3.client("sqs", region_name=resources.REGION),
        )

        print("\nA simulated Monday (times in Berlin; endpoint updates take 45 simulated seconds):")
        demo.step("heartbeat tick before business hours", demo.tick("heartbeat"))
        clock.at(8)
        demo.step("business-hours window starts (08:00)", demo.tick("primary/business-hours.start"))
        demo.wait(300)
        demo.step("heartbeat tick inside the window: nothing to do", demo.tick("heartbeat"))
        clock.at(10, 15)
        demo.step(
            "latency alarm ALARM, 230 ms over (EventBridge event)",
            demo.alarm("eventbridge", LATENCY_ALARM, "ALARM", worst=330000.0),
        )
        demo.wait(120)
        demo.step("candidate 5xx alarm ALARM (alarm-action event)", demo.alarm("action", CANDIDATE_ALARM, "ALARM"))
        demo.wait(60)
        demo.step("the same candidate alarm delivered again", demo.invoke("alarm_scaler", demo.last_event))
        demo.wait(120)
        demo.step(
            "latency alarm OK, inside the 600 s scale-in cooldown", demo.alarm("eventbridge", LATENCY_ALARM, "OK")
        )
        demo.wait(360)
        demo.step("deferred-change queue delivers the OK after the cooldown", demo.deliver_deferred())
        demo.wait(240)
        demo.step("candidate 5xx alarm OK: weight restored", demo.alarm("action", CANDIDATE_ALARM, "OK"))
        clock.at(13)
        gaps.set_status(ENDPOINT, "Updating", for_seconds=600)
        demo.step(
            "someone else updates the endpoint; latency alarm ALARM",
            demo.alarm("eventbridge", LATENCY_ALARM, "ALARM", worst=150000.0),
        )
        demo.wait(120)
        demo.step("queue redelivers while still Updating (retried, not dropped)", demo.deliver_deferred())
        demo.wait(600)
        demo.step("queue redelivers after the update finished", demo.deliver_deferred())
        demo.wait(1800)
        demo.step("latency alarm OK", demo.alarm("eventbridge", LATENCY_ALARM, "OK"))
        clock.at(20)
        demo.step("business-hours window ends (20:00)", demo.tick("primary/business-hours.end"))
        autoscaling = boto3.client("application-autoscaling", region_name=resources.REGION)
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{ENDPOINT}/variant/primary",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=3,
        )
        clock.at(22)
        report = demo.alarm("eventbridge", LATENCY_ALARM, "ALARM", worst=150000.0)
        target = autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{ENDPOINT}/variant/primary"]
        )["ScalableTargets"][0]
        demo.step(
            f"primary now under auto scaling; alarm moves its range → [{target['MinCapacity']}, "
            f"{target['MaxCapacity']}]",
            report,
        )
        composition.set_clock(None)
        logger.registered_handler.setStream(previous_stream)  # type: ignore[attr-defined]

    outcomes: dict[str, int] = {}
    for entry in demo.timeline:
        outcome = (entry["report"] or {}).get("outcome", "none")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    summary = {
        "endpoint": ENDPOINT,
        "steps": len(demo.timeline),
        "outcomes": outcomes,
        "final": demo.timeline[-1]["variants"],
    }
    (output / "capacity-timeline.json").write_text(json.dumps(demo.timeline, indent=2, default=str))
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# What Lambda's environment would hold; set before Powertools' Logger and Metrics are first imported.
FUNCTION_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "shadowscale",
    "POWERTOOLS_METRICS_NAMESPACE": "Shadowscale",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}


def main() -> int:
    os.environ.update(FUNCTION_ENVIRONMENT)
    output = Path.cwd() / "demo-output"
    print("shadowscale demo: the capacity autopilot on the embedded local cloud (no AWS account, no Docker)\n")
    summary = run(output)
    print(
        f"\nSummary: {summary['steps']} decisions: "
        + ", ".join(f"{count} {outcome}" for outcome, count in sorted(summary["outcomes"].items()))
    )
    print(f"Final: {summary['final']}")
    print(f"Reports: {output}/capacity-timeline.json, {output}/summary.json, {output}/function-logs.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
