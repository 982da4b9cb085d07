"""`make demo`: the real stack on the embedded local cloud, through one simulated Monday.

template.yaml is SAM-transformed and deployed into moto; the policy is applied with the real CLI;
EventBridge Scheduler schedules fire on an accelerated clock; alarms change state through
SetAlarmState and reach the functions through the policy's EventBridge rule (and one alarm's own
Lambda action); deferred changes come back through the SQS event source mapping. Reports go to
./demo-output.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
ENDPOINT = "fraud-detector"
LATENCY_ALARM = "fraud-detector-latency-high"
CANDIDATE_ALARM = "fraud-detector-candidate-5xx"
STACK = "shadowscale-local"

# What Lambda's environment would hold; set before Powertools' Logger and Metrics are first imported.
PROCESS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "shadowscale",
    "POWERTOOLS_METRICS_NAMESPACE": "Shadowscale",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}


def repo_root() -> Path:
    for parent in [Path.cwd(), *Path(__file__).resolve().parents]:
        if (parent / "template.yaml").exists() and (parent / "functions").is_dir():
            return parent
    raise RuntimeError("run the demo from a checkout of shadowscale (template.yaml not found)")


def berlin(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%a %H:%M")


@dataclass
class Scenario:
    cloud: Any  # LocalCloud
    say: Callable[[str], None] = print
    timeline: list[dict[str, Any]] = field(default_factory=list)
    _seen: int = 0

    def variants(self) -> dict[str, dict[str, float]]:
        described = self.cloud.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        return {
            v["VariantName"]: {"instances": v["CurrentInstanceCount"], "weight": v["CurrentWeight"]}
            for v in described["ProductionVariants"]
        }

    def at(self, hour: int, minute: int = 0) -> None:
        local = self.cloud.clock.now().astimezone(BERLIN).replace(hour=hour, minute=minute, second=0, microsecond=0)
        self.cloud.advance_to(local.astimezone(UTC))

    def alarm(self, name: str, state: str, worst: float | None = None) -> None:
        reason_data = {"recentDatapoints": [worst], "threshold": 100000.0} if worst is not None else {}
        self.cloud.client("cloudwatch").set_alarm_state(
            AlarmName=name, StateValue=state, StateReason="demo", StateReasonData=json.dumps(reason_data)
        )

    def alarm_at(self, hour: int, minute: int, name: str, state: str, worst: float | None = None) -> None:
        self.at(hour, minute)
        self.alarm(name, state, worst)

    def scene(self, title: str, action: Callable[[], None]) -> list[dict[str, Any]]:
        """Run one scene and print every decision the functions made during it."""
        action()
        decisions = []
        self.say(f"\n  {berlin(self.cloud.clock.now())} Berlin  {title}")
        invocations = self.cloud.runtime.invocations[self._seen :]
        self._seen = len(self.cloud.runtime.invocations)
        quiet = 0
        for invocation in invocations:
            for report in _reports(invocation):
                if report.get("outcome") == "no-change" and not report.get("changes"):
                    quiet += 1
                    continue
                decisions.append({"function": invocation.function_name, **report})
                self.say(
                    f"      {invocation.function_name.removeprefix('shadowscale-dev-'):<16} "
                    f"{report.get('outcome', '?'):<10} {_describe(report)}"
                )
        if quiet:
            self.say(f"      {quiet} scheduled tick(s) with nothing to do")
        state = "  ".join(f"{name}={v['instances']}x w{v['weight']:g}" for name, v in self.variants().items())
        self.say(f"      endpoint now: {state}")
        self.timeline.append(
            {
                "scene": title,
                "at": self.cloud.clock.now().isoformat(),
                "decisions": decisions,
                "variants": self.variants(),
            }
        )
        return decisions


def _reports(invocation: Any) -> list[dict[str, Any]]:  # noqa: ANN401
    result = invocation.result
    if isinstance(result, dict) and "outcome" in result:
        return [result]
    if isinstance(result, dict) and "batchItemFailures" in result:
        # The deferred scaler logs one decision per replayed change; read them from its log lines.
        reports = []
        for line in invocation.log_lines:
            if '"scaling decision"' in line:
                record = json.loads(line)
                reports.append({key: record.get(key) for key in ("outcome", "changes", "notes", "source_event")})
        if result["batchItemFailures"]:
            reports.append(
                {
                    "outcome": "requeued",
                    "changes": [],
                    "notes": [f"{len(result['batchItemFailures'])} change(s) still blocked; SQS retries"],
                }
            )
        return reports
    if isinstance(result, dict) and "errorType" in result:
        return [{"outcome": "error", "changes": [], "notes": [f"{result['errorType']}: {result['errorMessage']}"]}]
    return []


def _describe(report: dict[str, Any]) -> str:
    changes = [
        c
        for c in report.get("changes") or []
        if c["instances_before"] != c["instances_after"] or c["weight_before"] != c["weight_after"]
    ]
    if changes:
        return "; ".join(
            f"{c['variant']} {c['instances_before']}→{c['instances_after']} w{c['weight_before']:g}→"
            f"{c['weight_after']:g} via {c['via']} ({c['reason']})"
            for c in changes
        )
    notes = report.get("notes") or []
    return notes[0] if notes else ""


def run(output: Path) -> dict[str, Any]:
    from shadowscale.cli.main import main as cli
    from shadowscale.localcloud.platform import AcceleratedClock, LocalCloud
    from shadowscale.localcloud.resources import create_endpoint

    root = repo_root()
    output.mkdir(parents=True, exist_ok=True)
    log_path = output / "function-logs.jsonl"
    with log_path.open("w") as function_log:
        cloud = LocalCloud(
            root=root, clock=AcceleratedClock(datetime(2026, 11, 23, 5, 0, tzinfo=UTC)), stack_name=STACK
        )
        cloud.start()
        try:
            assert cloud.runtime is not None
            cloud.runtime.log_sink = function_log
            print(f"Deployed template.yaml into the local cloud as stack {STACK!r}:")
            for key in (
                "ScheduledScalerFunctionArn",
                "AlarmScalerFunctionArn",
                "DeferredChangeQueueUrl",
                "ScheduleGroupName",
            ):
                print(f"    {key} = {cloud.outputs[key]}")
            create_endpoint(cloud.client("sagemaker"), ENDPOINT, {"primary": (1, 1.0), "candidate": (1, 0.1)})
            cloudwatch = cloud.client("cloudwatch")
            cloudwatch.put_metric_alarm(
                AlarmName=LATENCY_ALARM,
                Namespace="AWS/SageMaker",
                MetricName="ModelLatency",
                Statistic="Average",
                Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
                Period=60,
                EvaluationPeriods=2,
                Threshold=100000,
                ComparisonOperator="GreaterThanThreshold",
            )
            cloudwatch.put_metric_alarm(  # this one also names the alarm scaler as its own action
                AlarmName=CANDIDATE_ALARM,
                Namespace="AWS/SageMaker",
                MetricName="Invocation5XXErrors",
                Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "candidate"}],
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=5,
                ComparisonOperator="GreaterThanThreshold",
                AlarmActions=[cloud.outputs["AlarmScalerFunctionArn"]],
                OKActions=[cloud.outputs["AlarmScalerFunctionArn"]],
            )
            print(f"    endpoint {ENDPOINT}: primary 1 instance, candidate 1 instance at weight 0.1; two alarms")
            print("\n$ shadowscale policy apply examples/capacity_policy.yaml --stack-name shadowscale-local")
            code = cli(
                [
                    "policy",
                    "apply",
                    str(root / "examples" / "capacity_policy.yaml"),
                    "--stack-name",
                    STACK,
                    "--region",
                    "us-east-1",
                ]
            )
            if code != 0:
                raise RuntimeError("policy apply failed")
            timeline = play(Scenario(cloud), cloud)
        finally:
            cloud.stop()
    outcomes: dict[str, int] = {}
    for scene in timeline:
        for decision in scene["decisions"]:
            outcomes[decision["outcome"]] = outcomes.get(decision["outcome"], 0) + 1
    summary = {
        "endpoint": ENDPOINT,
        "scenes": len(timeline),
        "decisions": outcomes,
        "final": timeline[-1]["variants"],
        "deliveries": len(cloud.deliveries),
    }
    (output / "capacity-timeline.json").write_text(json.dumps(timeline, indent=2, default=str))
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def play(scenario: Scenario, cloud: Any) -> list[dict[str, Any]]:  # noqa: ANN401
    print("\nA simulated Monday (times in Berlin; after each change the endpoint is Updating for 45 s):")
    scenario.scene("schedules fire until business hours begin at 08:00", lambda: scenario.at(8, 5))
    scenario.scene(
        "latency alarm → ALARM, worst datapoint 230 ms over (EventBridge rule)",
        lambda: scenario.alarm_at(10, 15, LATENCY_ALARM, "ALARM", 330000.0),
    )
    scenario.scene(
        "candidate 5xx alarm → ALARM (its own alarm action AND the rule: one effect)",
        lambda: scenario.alarm_at(10, 17, CANDIDATE_ALARM, "ALARM"),
    )
    scenario.scene(
        "latency alarm → OK inside the 600 s scale-in cooldown",
        lambda: scenario.alarm_at(10, 20, LATENCY_ALARM, "OK"),
    )
    scenario.scene("the cooldown ends; the deferred OK comes back through SQS", lambda: scenario.at(10, 30))
    scenario.scene("candidate 5xx alarm → OK", lambda: scenario.alarm_at(10, 31, CANDIDATE_ALARM, "OK"))

    def busy_endpoint() -> None:
        scenario.at(13)
        assert cloud.gaps is not None
        cloud.gaps.set_status(ENDPOINT, "Updating", for_seconds=600)
        scenario.alarm(LATENCY_ALARM, "ALARM", 150000.0)

    scenario.scene("someone else updates the endpoint for 10 min; latency alarm → ALARM", busy_endpoint)
    scenario.scene("SQS redelivers until the endpoint is InService again", lambda: scenario.at(13, 20))
    scenario.scene("latency alarm → OK", lambda: scenario.alarm_at(13, 45, LATENCY_ALARM, "OK"))
    scenario.scene("business hours end at 20:00", lambda: scenario.at(20, 5))

    def auto_scaled() -> None:
        scenario.at(22)
        cloud.client("application-autoscaling").register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{ENDPOINT}/variant/primary",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=3,
        )
        scenario.alarm(LATENCY_ALARM, "ALARM", 150000.0)

    scenario.scene("primary is now registered with Application Auto Scaling; latency alarm → ALARM", auto_scaled)
    target = cloud.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{ENDPOINT}/variant/primary"]
    )["ScalableTargets"][0]
    print(
        f"      scalable target range now [{target['MinCapacity']}, {target['MaxCapacity']}]: "
        "auto scaling brings the count up to its new minimum"
    )
    scenario.timeline[-1]["scalable_target"] = {"min": target["MinCapacity"], "max": target["MaxCapacity"]}
    return scenario.timeline


def main() -> int:
    os.environ.update(PROCESS_ENVIRONMENT)
    output = Path.cwd() / "demo-output"
    print("shadowscale demo: the real stack on the embedded local cloud (no AWS account, no Docker)\n")
    started = datetime.now(UTC)
    summary = run(output)
    elapsed = (datetime.now(UTC) - started) / timedelta(seconds=1)
    print(
        f"\nSummary: {summary['scenes']} scenes, {summary['deliveries']} function invocations by the platform; "
        "decisions: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary["decisions"].items()))
    )
    print(f"Final: {summary['final']}   ({elapsed:.1f} s wall time)")
    print(f"Reports: {output}/capacity-timeline.json, {output}/summary.json, {output}/function-logs.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
