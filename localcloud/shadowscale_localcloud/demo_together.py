"""The part of `make demo` where both capabilities share one endpoint: a capacity policy and an approve-mode
shadow test on `payments-scorer`, with a traffic spike in the middle of the bake.

Production scales out during the test (the test holds the endpoint only while it changes it); a person
approves; the promotion hands the policy over to the promoted variant and re-points its alarm; after it,
the policy's next window and the next alarm act on the promoted variant. Nothing is dead-lettered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shadowscale_localcloud.resources import create_endpoint, create_latency_alarm, create_models
from shadowscale_localcloud.simulated_endpoint import ModelServer, TrafficPattern

ENDPOINT = "payments-scorer"
CANDIDATE_MODEL = "payments-scorer-v2"
PROMOTED = "challenger"
LATENCY_ALARM = "payments-scorer-latency-high"
STACK = "shadowscale-local"
PRODUCTION = ModelServer(base_latency_ms=15.0)


def policy_document(window_start: datetime) -> dict[str, Any]:
    return {
        "apiVersion": "shadowscale/v1",
        "kind": "CapacityPolicy",
        "endpoint": ENDPOINT,
        "variants": [
            {
                "name": "primary",
                "minInstances": 1,
                "maxInstances": 6,
                "scaleOutCooldownSeconds": 60,
                "scaleInCooldownSeconds": 300,
                "schedules": [
                    {
                        "name": "evening-batch",
                        "start": f"at({window_start.strftime('%Y-%m-%dT%H:%M:%S')})",
                        "durationMinutes": 30,
                        "timezone": "UTC",
                        "instances": 3,
                    }
                ],
                "alarms": [{"alarmName": LATENCY_ALARM, "onAlarm": {"change": 2}, "onOk": {"change": -1}}],
            }
        ],
    }


def shadow_test_document() -> dict[str, Any]:
    return {
        "endpointName": ENDPOINT,
        "candidate": {"modelName": CANDIDATE_MODEL, "instanceType": "ml.m5.large", "variantName": PROMOTED},
        "sampling": {"percent": 20},
        "durationMinutes": 60,
        "evaluationPeriodMinutes": 10,
        "gates": {"minInvocations": 200, "minPairedResponses": 100, "agreement": {"minWithinToleranceRate": 0.9}},
        "decisionMode": "approve",
        "comparison": {"comparator": "numeric", "tolerance": {"absolute": 0.005, "relative": 0}},
    }


class Journal:
    """Prints and records what the functions decided since the last look."""

    def __init__(self, cloud: Any, say: Callable[[str], None]) -> None:  # noqa: ANN401
        self.cloud = cloud
        self.say = say
        self.seen = len(cloud.runtime.invocations)
        self.entries: list[dict[str, Any]] = []

    def variants(self) -> dict[str, int]:
        described = self.cloud.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        return {v["VariantName"]: v["CurrentInstanceCount"] for v in described["ProductionVariants"]}

    def look(self, title: str) -> dict[str, Any]:
        from shadowscale_localcloud.demo import _describe, _reports

        decisions = []
        invocations = self.cloud.runtime.invocations[self.seen :]
        self.seen = len(self.cloud.runtime.invocations)
        quiet = 0
        for invocation in invocations:
            if "scaler" not in invocation.function_name:
                continue
            for report in _reports(invocation):
                # The cloud is shared: the demo's other endpoint keeps being scaled meanwhile.
                if ENDPOINT not in str(report.get("endpoint") or report.get("source_event") or ""):
                    continue
                if report.get("outcome") == "no-change" and not report.get("changes"):
                    quiet += 1
                    continue
                decisions.append({"function": invocation.function_name, **report})
        at = self.cloud.clock.now()
        self.say(f"\n  {at:%H:%M} UTC  {title}")
        for decision in decisions:
            self.say(
                f"      {decision['function'].removeprefix('shadowscale-dev-'):<16} "
                f"{decision.get('outcome', '?'):<10} {_describe(decision)}"
            )
        if quiet:
            self.say(f"      {quiet} heartbeat(s) or change(s) with nothing to do")
        alarm = self.cloud.client("cloudwatch").describe_alarms(AlarmNames=[LATENCY_ALARM])["MetricAlarms"][0]
        watched = next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == "VariantName")
        variants = self.variants()
        self.say(
            "      endpoint now: "
            + "  ".join(f"{name}={count}x" for name, count in variants.items())
            + f"   alarm {alarm['StateValue']} watching {watched!r}"
        )
        entry = {
            "scene": title,
            "at": at.isoformat(),
            "decisions": decisions,
            "quiet": quiet,
            "variants": variants,
            "alarm": {"state": alarm["StateValue"], "variant": watched},
        }
        self.entries.append(entry)
        return entry


def play(cloud: Any, output: Path, say: Callable[[str], None] = print) -> dict[str, Any]:  # noqa: ANN401
    from shadowscale.cli.main import main as cli

    stack = ["--stack-name", STACK, "--region", "us-east-1"]
    start = cloud.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    spike_during_bake = start + timedelta(minutes=25)
    window_start = start + timedelta(hours=2, minutes=30)
    spike_after_promotion = start + timedelta(hours=3, minutes=30)
    say(f"\nOne endpoint, both at once: a capacity policy and an approve-mode shadow test on {ENDPOINT!r}")
    create_endpoint(cloud.client("sagemaker"), ENDPOINT, {"primary": (1, 1.0)}, cloud.advance)
    create_models(cloud.client("sagemaker"), CANDIDATE_MODEL)
    create_latency_alarm(cloud.client("cloudwatch"), LATENCY_ALARM, ENDPOINT, 100_000.0)
    traffic = (
        TrafficPattern.flat(20, noise=0.03, seed=5)
        .with_spike(spike_during_bake, 15, extra_rps=100, ramp_seconds=0)
        .with_spike(spike_after_promotion, 15, extra_rps=200, ramp_seconds=0)
    )
    cloud.simulate(ENDPOINT, traffic, models={"primary": PRODUCTION, PROMOTED: replace(PRODUCTION, score_drift=0.001)})
    inputs = output / "shadow-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    policy_file = inputs / f"{ENDPOINT}-policy.json"
    policy_file.write_text(json.dumps(policy_document(window_start), indent=2))
    say(f"$ shadowscale policy apply {policy_file.relative_to(output.parent)}")
    if cli(["policy", "apply", str(policy_file), *stack]) != 0:
        raise RuntimeError("policy apply failed")
    journal = Journal(cloud, say)
    cloud.advance_to(start)

    name = f"{ENDPOINT}-v2"
    test_file = inputs / f"{name}.json"
    test_file.write_text(json.dumps(shadow_test_document(), indent=2))
    execution = cloud.outputs["ShadowTestStateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"
    say(f"$ shadowscale shadow start {test_file.relative_to(output.parent)} --name {name}")
    cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=name, input=test_file.read_text()
    )
    # The bake's Wait states move the clock: the spike comes, the alarm fires, production scales out.
    cloud.wait_for_execution(execution, until=lambda _: _awaiting_approval(cloud))
    baked = journal.look(f"the test baked for an hour through a spike at {spike_during_bake:%H:%M}; it awaits approval")
    say(f"$ shadowscale shadow approve {name}")
    cli(["shadow", "approve", name, "--by", "demo-operator", "--comment", "answers agree", *stack[:2]])
    cloud.wait_for_execution(execution)
    cloud.advance(60)  # the deferred scaler takes the promotion's handover from its queue
    promoted = journal.look("approved and promoted: the policy follows the promoted variant")
    say(f"$ shadowscale policy show {ENDPOINT}")
    cli(["policy", "show", ENDPOINT, *stack])
    cloud.advance_to(window_start + timedelta(minutes=2))
    window = journal.look(f"the policy's evening window opens at {window_start:%H:%M}")
    cloud.advance_to(spike_after_promotion + timedelta(minutes=6))
    spike = journal.look(f"another spike at {spike_after_promotion:%H:%M}: the re-pointed alarm fires")
    cloud.advance(2 * 3600)  # quiet again: the alarm goes OK, the window has closed, scale-in follows
    quiet = journal.look("the spike passes")
    report = json.loads(
        cloud.client("s3")
        .get_object(Bucket=cloud.outputs["DataBucketName"], Key=f"reports/{ENDPOINT}/{name}/report.json")["Body"]
        .read()
    )
    dead_letters = int(
        cloud.client("sqs").get_queue_attributes(
            QueueUrl=cloud.outputs["DeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    dlq_alarm = cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix="shadowscale-dev-dead-letters")
    dlq_state = [alarm["StateValue"] for alarm in dlq_alarm["MetricAlarms"]]
    say(f"  dead-lettered: {dead_letters}; dead-letter alarm: {', '.join(dlq_state) or 'none'}")
    summary = {
        "endpoint": ENDPOINT,
        "test": name,
        "outcome": report["outcome"],
        "scenes": journal.entries,
        "baked": baked,
        "peakDuringBake": max(
            (change["instances_after"] for decision in baked["decisions"] for change in decision.get("changes") or []),
            default=1,
        ),
        "promoted": promoted,
        "window": window,
        "spike": spike,
        "quiet": quiet,
        "deadLettered": dead_letters,
        "deadLetterAlarm": dlq_state,
    }
    (output / "together.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _awaiting_approval(cloud: Any) -> bool:  # noqa: ANN401
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.outputs["EndpointStateTableName"], Key={"endpoint": {"S": ENDPOINT}}
    )
    return "approvalToken" in item.get("Item", {})
