"""`make demo`: the real stack on the embedded local cloud, through one simulated Monday.

template.yaml is SAM-transformed and deployed into moto; the policy is applied with the real CLI;
EventBridge Scheduler schedules fire on an accelerated clock; a simulated endpoint serves a day of
traffic (diurnal, with spikes) and publishes SageMaker's metrics; the alarms are evaluated from those
metrics each minute and reach the functions through the policy's EventBridge rule (and one alarm's
own Lambda action); deferred changes come back through the SQS event source mapping. Reports go to
./demo-output.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shadowscale_localcloud.simulated_endpoint import LinearModel, ModelServer, SimulatedEndpoint, TrafficPattern

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 11, 23, tzinfo=BERLIN)
ENDPOINT = "fraud-detector"
LATENCY_ALARM = "fraud-detector-latency-high"
LATENCY_THRESHOLD_US = 100_000.0  # ModelLatency is in microseconds: p90 over 100 ms
CANDIDATE_ALARM = "fraud-detector-candidate-5xx"
STACK = "shadowscale-local"

# One instance serves 40 requests/s; p90 stays far under 100 ms below ~50 % utilisation.
PRIMARY = ModelServer(base_latency_ms=15.0)
CANDIDATE = replace(PRIMARY, model=LinearModel(seed=8))
CANDIDATE_BAD_BUILD = replace(CANDIDATE, server_error_rate=0.08)


def monday(hour: int, minute: int = 0) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute)


# Quiet nights, a peak of 60 requests/s at 13:00, and three spikes the alarms must catch.
TRAFFIC = (
    TrafficPattern.diurnal(4, 60, peak_hour=13, timezone="Europe/Berlin", sharpness=3, noise=0.03, seed=23)
    .with_spike(monday(10), 15, extra_rps=125, ramp_seconds=0)
    .with_spike(monday(13), 25, extra_rps=200, ramp_seconds=0)
    .with_spike(monday(22), 30, extra_rps=32, ramp_seconds=0)
)

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
    simulation: SimulatedEndpoint
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

    def alarms(self) -> dict[str, str]:
        described = self.cloud.client("cloudwatch").describe_alarms(AlarmNames=[LATENCY_ALARM, CANDIDATE_ALARM])
        return {alarm["AlarmName"]: alarm["StateValue"] for alarm in described["MetricAlarms"]}

    def traffic(self, since: datetime) -> dict[str, dict[str, Any]]:
        """What each variant served during the scene: the last minute, the worst p90 and all 5XX."""
        served: dict[str, dict[str, Any]] = {}
        for step in (step for step in self.simulation.history if step.at >= since):
            seen = served.setdefault(step.variant, {"peak_latency_p90_ms": 0.0, "errors_5xx": 0})
            seen["peak_latency_p90_ms"] = max(seen["peak_latency_p90_ms"], step.latency_p90_ms or 0.0)
            seen["errors_5xx"] += step.server_errors
            seen.update(
                instances=step.instances,
                requests_per_second=round(step.requests / self.simulation.step_seconds, 1),
                latency_p90_ms=None if step.latency_p90_ms is None else round(step.latency_p90_ms, 1),
            )
        for seen in served.values():
            seen["peak_latency_p90_ms"] = round(seen["peak_latency_p90_ms"], 1)
        return served

    def scene(self, title: str, action: Callable[[], None]) -> list[dict[str, Any]]:
        """Run one scene and print every decision the functions made during it."""
        started = self.cloud.clock.now()
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
        traffic = self.traffic(started)
        self.say(
            "      traffic: "
            + "  ".join(
                f"{name} {t['requests_per_second']:g} req/s p90 {t['latency_p90_ms'] or 0:.0f} ms"
                f" (worst {t['peak_latency_p90_ms']:.0f}){f', {t["errors_5xx"]} 5xx' if t['errors_5xx'] else ''}"
                for name, t in traffic.items()
            )
        )
        alarms = self.alarms()
        state = "  ".join(f"{name}={v['instances']}x w{v['weight']:g}" for name, v in self.variants().items())
        named = "  ".join(f"{name.removeprefix(ENDPOINT + '-')}={value}" for name, value in alarms.items())
        self.say(f"      endpoint now: {state}   alarms: {named}")
        self.timeline.append(
            {
                "scene": title,
                "at": self.cloud.clock.now().isoformat(),
                "decisions": decisions,
                "variants": self.variants(),
                "traffic": traffic,
                "alarms": alarms,
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

    from shadowscale_localcloud import demo_shadow, demo_together
    from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
    from shadowscale_localcloud.resources import create_endpoint, create_latency_alarm

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
            create_endpoint(
                cloud.client("sagemaker"), ENDPOINT, {"primary": (1, 1.0), "candidate": (1, 0.1)}, cloud.advance
            )
            cloudwatch = cloud.client("cloudwatch")
            create_latency_alarm(cloudwatch, LATENCY_ALARM, ENDPOINT, LATENCY_THRESHOLD_US)
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
                TreatMissingData="notBreaching",  # out of traffic, the candidate sends no datapoints
                AlarmActions=[cloud.outputs["AlarmScalerFunctionArn"]],
                OKActions=[cloud.outputs["AlarmScalerFunctionArn"]],
            )
            print(f"    endpoint {ENDPOINT}: primary 1 instance, candidate 1 instance at weight 0.1")
            print(f"    alarm {LATENCY_ALARM}: primary ModelLatency p90 > 100 ms for 2 of 2 minutes")
            print(f"    alarm {CANDIDATE_ALARM}: candidate Invocation5XXErrors > 5 in a minute")
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
            simulation = cloud.simulate(ENDPOINT, TRAFFIC, models={"primary": PRIMARY, "candidate": CANDIDATE})
            print(
                "    traffic: 4 req/s at night to 60 req/s at 13:00, spikes at 10:00, 13:00 and 22:00;"
                " each instance serves 40 req/s"
            )
            timeline = play(Scenario(cloud, simulation), cloud)
            print(f"\nShadow tests on a second endpoint, {berlin(cloud.clock.now())} Berlin, with the CLI:")
            shadow_tests = demo_shadow.play(cloud, output)
            print(f"\nNoise calibration on a third endpoint, {berlin(cloud.clock.now())} Berlin:")
            calibration = demo_shadow.play_calibration(cloud, output)
            together = demo_together.play(cloud, output)
            # Last, so the parts before it run at the simulated times (and so on the draws) they always had.
            print(f"\nA guarded promotion back on {demo_shadow.ENDPOINT!r}, {berlin(cloud.clock.now())} Berlin:")
            guarded = demo_shadow.play_guarded(cloud, output)
            fidelity = fidelity_summary(cloud)
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
        "fidelity": fidelity,
        "shadowTests": [
            {
                "name": test.name,
                "outcome": test.outcome,
                "verdict": test.verdict,
                "finalConfig": test.final_config,
                "servingVariant": test.serving_variant,
                "gates": test.gates,
                "report": str(test.report_html),
                "diffs": {
                    key: test.diffs.get(key)
                    for key in ("paired", "exactMatchRate", "withinToleranceRate", "unpaired", "final", "recordsRead")
                },
                "recoveries": test.recoveries,
            }
            for test in shadow_tests
        ],
        "guarded": {
            "name": guarded.test.name,
            "outcome": guarded.test.outcome,
            "verdict": guarded.test.verdict,
            "reason": guarded.test.reason,
            "earlyStop": guarded.test.early_stop,
            "deciding": guarded.test.deciding,
            "finalConfig": guarded.test.final_config,
            "servingVariant": guarded.test.serving_variant,
            "originalConfig": guarded.original_config,
            "endpointStatus": guarded.endpoint_status,
            "alarmsCreated": guarded.alarms_created,
            "alarmsFired": guarded.alarms_fired,
            "alarmsLeft": guarded.alarms_left,
            "deployment": guarded.deployment,
            "report": str(guarded.test.report_html),
        },
        "calibration": [
            {"name": test.name, "outcome": test.outcome, "verdict": test.verdict, "gates": test.gates}
            for test in calibration
        ],
        "together": {
            key: together[key]
            for key in (
                "endpoint",
                "test",
                "outcome",
                "peakDuringBake",
                "baked",
                "promoted",
                "window",
                "spike",
                "deadLettered",
            )
        }
        | {"deadLetterAlarm": together["deadLetterAlarm"]},
    }
    (output / "capacity-timeline.json").write_text(json.dumps(timeline, indent=2, default=str))
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def fidelity_summary(cloud: Any) -> dict[str, Any]:  # noqa: ANN401
    """What the local cloud refused or held back as AWS would, during the demo (docs/local-cloud-fidelity.md)."""
    invocations = cloud.runtime.invocations if cloud.runtime is not None else []
    errors: dict[str, int] = {}
    for invocation in invocations:
        if invocation.error_type:
            errors[invocation.error_type] = errors.get(invocation.error_type, 0) + 1
    gaps = cloud.gaps
    return {
        "functionInvocations": len(invocations),
        "configVisibilitySeconds": cloud.config_visibility_seconds,
        "configsNotYetVisible": errors.get("EndpointConfigNotVisible", 0),
        "retainedCapture": gaps.retained_capture if gaps is not None else None,
        "shadowWeightUpdates": gaps.shadow_weight_updates if gaps is not None else None,
        "accessDenied": errors.get("AccessDenied", 0) + errors.get("AccessDeniedException", 0),
    }


def play(scenario: Scenario, cloud: Any) -> list[dict[str, Any]]:  # noqa: ANN401
    print(
        "\nA simulated Monday (times in Berlin; alarms evaluated every minute from the endpoint's metrics;"
        " after each change the endpoint is Updating for 45 s):"
    )
    scenario.scene("schedules fire until business hours begin at 08:00", lambda: scenario.at(8, 5))
    scenario.scene(
        "a traffic spike at 10:00 pushes p90 latency over 100 ms: latency alarm → ALARM (EventBridge rule)",
        lambda: scenario.at(10, 2),
    )
    scenario.scene(
        "8 instances bring p90 back under 100 ms: latency alarm → OK inside the 600 s scale-in cooldown",
        lambda: scenario.at(10, 4),
    )
    scenario.scene("the cooldown ends; the deferred OK comes back through SQS", lambda: scenario.at(10, 15))

    def bad_candidate_build() -> None:
        scenario.simulation.serve("candidate", CANDIDATE_BAD_BUILD)
        scenario.at(10, 16)

    scenario.scene(
        "a candidate build failing 8 % of requests: 5xx alarm → ALARM (its own action AND the rule: one effect)",
        bad_candidate_build,
    )

    def fixed_candidate_build() -> None:
        scenario.simulation.serve("candidate", CANDIDATE)
        scenario.at(10, 25)

    scenario.scene(
        "a fixed build; with no candidate traffic the 5xx alarm (missing data: not breaching) → OK",
        fixed_candidate_build,
    )

    def busy_endpoint() -> None:
        scenario.at(13)
        assert cloud.gaps is not None
        cloud.gaps.set_status(ENDPOINT, "Updating", for_seconds=600)
        scenario.at(13, 3)

    scenario.scene(
        "someone else updates the endpoint for 10 min as a second spike hits: latency → ALARM", busy_endpoint
    )
    scenario.scene("SQS redelivers until the endpoint is InService again", lambda: scenario.at(13, 20))
    scenario.scene("the spike passes: latency alarm → OK", lambda: scenario.at(13, 45))
    scenario.scene("business hours end at 20:00", lambda: scenario.at(20, 5))

    def auto_scaled() -> None:
        cloud.client("application-autoscaling").register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{ENDPOINT}/variant/primary",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=3,
        )
        scenario.at(22, 5)

    scenario.scene(
        "primary is now registered with Application Auto Scaling; a late spike: latency alarm → ALARM", auto_scaled
    )
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
    for test in summary["shadowTests"]:
        print(
            f"Shadow test {test['name']}: {test['outcome']} (verdict {test['verdict']}); "
            f"endpoint serves {test['servingVariant']!r} on {test['finalConfig']}; report {test['report']}"
        )
        diffs = test["diffs"]
        if diffs.get("paired") is not None:
            print(
                f"  response diffs: {diffs['paired']} pairs, {diffs['withinToleranceRate']:.1%} within tolerance"
                f" ({'final' if diffs['final'] else 'open'})"
            )
        if test["recoveries"]:
            print(f"  restored by its recovery execution ({', '.join(test['recoveries'])}) after the abort")
    guarded = summary["guarded"]
    print(
        f"Guarded promotion {guarded['name']}: {(guarded['earlyStop'] or 'ran its ramp').split(':')[0]}"
        f" ({', '.join(guarded['deciding'])}); "
        f"{guarded['outcome']} (alarm {', '.join(guarded['alarmsFired'])});"
        f" endpoint {guarded['endpointStatus']} on {guarded['finalConfig']}"
        f" ({'the original' if guarded['finalConfig'] == guarded['originalConfig'] else 'NOT the original'});"
        f" promotion alarms left: {len(guarded['alarmsLeft'])}"
    )
    together = summary["together"]
    spike = together["spike"]
    print(
        f"Capacity and a shadow test on {together['endpoint']!r}: production scaled to "
        f"{together['peakDuringBake']} during the bake; "
        f"{together['test']} {together['outcome']}; after it the alarm watches {spike['alarm']['variant']!r} and "
        f"scaled it to {spike['variants'].get(spike['alarm']['variant'])}; {together['deadLettered']} dead-lettered"
    )
    fidelity = summary["fidelity"]
    print(
        f"AWS fidelity: new endpoint configs invisible for {fidelity['configVisibilitySeconds']:g} s "
        f"({fidelity['configsNotYetVisible']} task attempt(s) waited for one); RetainAllVariantProperties keeps "
        f"capture: {fidelity['retainedCapture']}; shadow weights in place: {fidelity['shadowWeightUpdates']}; "
        f"{fidelity['accessDenied']} call(s) denied by IAM (docs/local-cloud-fidelity.md)"
    )
    print(f"Reports: {output}/capacity-timeline.json, {output}/summary.json, {output}/function-logs.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
