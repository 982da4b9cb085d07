"""The shadow-test part of `make demo`: three tests on a simulated endpoint serving live traffic.

1. A candidate that answers like production (small score drift, same labels, as fast) runs a 10 % → 50 %
   ramp in auto mode and is promoted: its variant now serves, with the old variant's Auto Scaling.
2. A candidate that is slower and flips 15 % of labels runs in approve mode; the report shows failing
   gates and a person rejects it with the CLI; the endpoint goes back to its snapshot.
3. A third test is aborted by a person mid-bake (`shadowscale shadow abort`): the execution ends without
   restoring, EventBridge starts a recovery execution, and the recovery puts the endpoint back, reports
   and notifies.

On a second endpoint whose model is not deterministic (3 % of its labels flip from one invocation to the
next), a candidate that is the same model is judged twice (`play_calibration`): by the plain gates
(rejected: a copy of the model agrees with it on only about 94 % of requests, and its one instance queues
more than production's two), then after a noise calibration (A/A) phase (promoted: its disagreement is no
more than the noise's, its latency ratios no worse than the copy's on the same placement).

Back on the first endpoint (`play_guarded`), a fourth candidate that passes its gates is promoted with
Deployment Guardrails (a canary, then the rest, each baked under a 5xx rollback alarm). Its answers turn to
5xx once it takes production traffic: the alarm fires in the canary's bake, SageMaker rolls the update back,
and the test ends `rolled-back` on the endpoint's original config, the promotion's alarms deleted.

All are started and followed with the real CLI (`shadowscale shadow start --follow`), run by the real
state machine on moto's interpreter, and leave their reports in S3, copied to the demo's folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shadowscale_localcloud.resources import create_endpoint_once_visible, create_models

ENDPOINT = "recommender"
NOISY_ENDPOINT = "noisy-ranker"
STACK = "shadowscale-local"


@dataclass
class ShadowTestOutcome:
    name: str
    outcome: str
    verdict: str | None
    final_config: str | None
    serving_variant: str
    report_html: Path
    report_json: Path
    gates: dict[str, str]
    diffs: dict[str, Any] = field(default_factory=dict)
    recoveries: list[str] = field(default_factory=list)  # statuses of the recovery executions it needed
    reason: str = ""
    early_stop: str | None = None  # the report's "stopped early at step ..." when the intervals decided
    deciding: list[str] = field(default_factory=list)  # the failing gates' intervals, as the report gives them


@dataclass
class GuardedPromotionOutcome:
    test: ShadowTestOutcome
    original_config: str  # the endpoint's config before the test
    endpoint_status: str
    alarms_created: list[str]  # the promotion's rollback alarms, as SageMaker's DeploymentConfig named them
    alarms_fired: list[str]  # those the report names as the rollback's cause
    alarms_left: list[str]  # the promotion's alarms still in CloudWatch afterwards
    deployment: dict[str, Any]  # the UpdateEndpoint DeploymentConfig, as DescribeEndpoint showed it in flight


def create_recommender(cloud: Any) -> None:  # noqa: ANN401
    """One production variant under Application Auto Scaling, with two candidate models registered."""
    sagemaker = cloud.client("sagemaker")
    create_models(sagemaker, "recommender-v1", "recommender-v2", "recommender-v3")
    sagemaker.create_endpoint_config(
        EndpointConfigName="recommender-config-1",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "recommender-v1",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    create_endpoint_once_visible(sagemaker, ENDPOINT, "recommender-config-1", cloud.advance)
    cloud.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{ENDPOINT}/variant/primary",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=2,
        MaxCapacity=6,
    )


def play(cloud: Any, output: Path, say: Callable[[str], None] = print) -> list[ShadowTestOutcome]:  # noqa: ANN401
    from shadowscale.cli.main import main as cli

    from shadowscale_localcloud.simulated_endpoint import ModelServer, TrafficPattern

    create_recommender(cloud)
    production = ModelServer(base_latency_ms=18.0)
    cloud.simulate(
        ENDPOINT,
        TrafficPattern.flat(25),
        models={
            "primary": production,
            "candidate-a": replace(production, score_drift=0.002),
            "candidate-b": replace(production, label_flip_rate=0.15, base_latency_ms=45.0),
        },
    )
    cloud.advance(15 * 60)  # production traffic before the tests
    inputs = output / "shadow-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name, candidate, variant, mode, decision in (
        ("promote-v2", "recommender-v2", "candidate-a", "auto", None),
        ("reject-v3", "recommender-v3", "candidate-b", "approve", "reject"),
    ):
        document = {
            "endpointName": ENDPOINT,
            "candidate": {"modelName": candidate, "instanceType": "ml.m5.xlarge", "variantName": variant},
            "sampling": {"ramp": [{"percent": 10, "bakeMinutes": 20}, {"percent": 50, "bakeMinutes": 40}]},
            "durationMinutes": 60,
            "evaluationPeriodMinutes": 10,
            "gates": {
                "minInvocations": 500,
                "minPairedResponses": 500,
                "agreement": {"minWithinToleranceRate": 0.95},
            },
            "decisionMode": mode,
            "budget": {"maxInstanceHours": 4},  # not reached in an hour: follow and the report show the spend
            # Answers are "score,label": scores may drift by 0.005, a different label never agrees.
            "comparison": {"comparator": "numeric", "tolerance": {"absolute": 0.005, "relative": 0}},
        }
        source = inputs / f"{name}.json"
        source.write_text(json.dumps(document, indent=2))
        say(f"\n▶ shadow test {name}: {candidate} as {variant!r} on {ENDPOINT!r}, {mode} mode, ramp 10 % → 50 %")
        stack = ["--stack-name", STACK]
        execution = _execution_arn(cloud, name)
        # The functions run in-process on the interpreter's thread and capture the process's output while
        # they run: the demo starts the test, stays quiet until it ends or waits for a person, then prints.
        say(f"$ shadowscale shadow start {source.relative_to(output.parent)} --name {name}")
        cloud.client("stepfunctions").start_execution(
            stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=name, input=source.read_text()
        )
        if decision is not None:
            cloud.wait_for_execution(execution, until=lambda _: _awaiting_approval(cloud))
            say("  the machine waits for a person, with an interim report of the gates. The person says no:")
            say(f"$ shadowscale shadow {decision} {name} --comment 'labels disagree'")
            cli(["shadow", decision, name, "--by", "demo-operator", "--comment", "labels disagree", *stack])
        cloud.wait_for_execution(execution)
        say(f"$ shadowscale shadow follow {name}")
        cli(["shadow", "follow", name, "--poll-seconds", "0.05", *stack])
        outcomes.append(_collect(cloud, name, output))
        say(f"  report: {outcomes[-1].report_html}")
    outcomes.append(_abort_mid_bake(cloud, inputs, output, say))
    # Capture lands minutes late: each test asked the diff pipeline to close its windows once it has.
    cloud.advance(16 * 60)
    for outcome in outcomes[:2]:
        outcome.diffs = _collect_diffs(cloud, outcome.name, output)
        say(f"\n▶ response diffs of {outcome.name}\n$ shadowscale diffs show {outcome.name}")
        cli(["diffs", "show", outcome.name, "--stack-name", STACK])
    return outcomes


def _abort_mid_bake(cloud: Any, inputs: Path, output: Path, say: Callable[[str], None]) -> ShadowTestOutcome:  # noqa: ANN401
    from shadowscale.cli.main import main as cli

    name, stack = "abort-v4", ["--stack-name", STACK]
    document = {
        "endpointName": ENDPOINT,
        "candidate": {"modelName": "recommender-v3", "instanceType": "ml.m5.xlarge", "variantName": "candidate-b"},
        "sampling": {"percent": 20},
        "durationMinutes": 120,
    }
    source = inputs / f"{name}.json"
    source.write_text(json.dumps(document, indent=2))
    say(f"\n▶ shadow test {name}: recommender-v3 as 'candidate-b', stopped by a person while it bakes")
    say(f"$ shadowscale shadow start {source.relative_to(output.parent)} --name {name}")
    execution = _execution_arn(cloud, name)
    cloud.stepfunctions.hold_waits()
    try:
        cloud.client("stepfunctions").start_execution(
            stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=name, input=source.read_text()
        )
        cloud.step_to(execution, "Bake")
        say(f"$ shadowscale shadow abort {name}")
        cli(["shadow", "abort", name, "--by", "demo-operator", "--cause", "wrong candidate", *stack])
    finally:
        cloud.stepfunctions.release_waits()
    cloud.wait_for_execution(execution)
    recoveries = cloud.wait_for_recoveries(execution)
    say(
        "  the execution ended ABORTED without restoring; EventBridge started a recovery execution: "
        + ", ".join(f"{recovery['name'][:8]}… {recovery['status']}" for recovery in recoveries)
    )
    say(f"$ shadowscale shadow follow {name}")
    cli(["shadow", "follow", name, "--poll-seconds", "0.05", *stack])
    outcome = _collect(cloud, name, output)
    outcome.recoveries = [str(recovery["status"]) for recovery in recoveries]
    say(f"  report: {outcome.report_html}")
    return outcome


def play_calibration(cloud: Any, output: Path, say: Callable[[str], None] = print) -> list[ShadowTestOutcome]:  # noqa: ANN401
    """The same noisy candidate judged without and with a noise calibration (A/A) phase."""
    from shadowscale.cli.main import main as cli

    from shadowscale_localcloud.simulated_endpoint import CaptureSimulation, ModelServer, TrafficPattern

    sagemaker = cloud.client("sagemaker")
    create_models(sagemaker, "ranker-v1", "ranker-v2")
    sagemaker.create_endpoint_config(
        EndpointConfigName="noisy-ranker-config-1",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "ranker-v1",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    create_endpoint_once_visible(sagemaker, NOISY_ENDPOINT, "noisy-ranker-config-1", cloud.advance)
    model = ModelServer(output_content_type="application/json", invocation_flip_rate=0.03)
    cloud.simulate(
        NOISY_ENDPOINT,
        TrafficPattern.flat(20),
        models={"primary": model, "ranker-noise": model, "ranker": replace(model)},
        capture=CaptureSimulation(limit_per_step=400, delivery_delay_seconds=60),
    )
    inputs, stack = output / "shadow-inputs", ["--stack-name", STACK]
    outcomes = []
    for name, calibration in (("ranker-plain", None), ("ranker-calibrated", {"bakeMinutes": 30})):
        document: dict[str, Any] = {
            "endpointName": NOISY_ENDPOINT,
            "candidate": {"modelName": "ranker-v2", "instanceType": "ml.m5.xlarge", "variantName": "ranker"},
            "sampling": {"percent": 100},
            "durationMinutes": 30,
            "evaluationPeriodMinutes": 10,
            "gates": {"minInvocations": 500, "agreement": {"minWithinToleranceRate": 0.98}},
            "comparison": {"comparator": "classification", "classification": {"labelPath": "label"}},
        }
        if calibration is not None:
            document["calibration"] = calibration
        source = inputs / f"{name}.json"
        source.write_text(json.dumps(document, indent=2))
        how = "after a 30-min noise calibration (A/A)" if calibration else "by the plain gate"
        say(f"\n▶ shadow test {name}: ranker-v2, as noisy as production, judged {how}")
        say(f"$ shadowscale shadow start {source.relative_to(output.parent)} --name {name}")
        execution = _execution_arn(cloud, name)
        cloud.client("stepfunctions").start_execution(
            stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=name, input=source.read_text()
        )
        cloud.wait_for_execution(execution, timeout=600)
        say(f"$ shadowscale shadow follow {name}")
        cli(["shadow", "follow", name, "--poll-seconds", "0.05", *stack])
        outcomes.append(_collect(cloud, name, output, NOISY_ENDPOINT))
        say(f"  report: {outcomes[-1].report_html}")
    return outcomes


GUARDRAILS = {
    "mode": "canary",
    "canarySize": {"type": "INSTANCE_COUNT", "value": 1},
    "waitIntervalSeconds": 600,
    "maximumExecutionTimeoutSeconds": 1800,
    "rollbackAlarms": {"max5xxErrors": 0},
}


def play_guarded(cloud: Any, output: Path, say: Callable[[str], None] = print) -> GuardedPromotionOutcome:  # noqa: ANN401
    """A candidate that passes its gates, promoted with guardrails, whose 5xx roll the promotion back."""
    from shadowscale.cli.main import main as cli

    name, stack = "guarded-v4", ["--stack-name", STACK]
    sagemaker = cloud.client("sagemaker")
    create_models(sagemaker, "recommender-v4")
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    original, production = described["EndpointConfigName"], described["ProductionVariants"][0]["VariantName"]
    simulation = next(found for found in cloud.simulations if found.name == ENDPOINT)
    healthy = simulation.model_for(production)
    simulation.serve("candidate-c", replace(healthy, score_drift=0.002))
    document = {
        "endpointName": ENDPOINT,
        "candidate": {"modelName": "recommender-v4", "instanceType": "ml.m5.xlarge", "variantName": "candidate-c"},
        "sampling": {"ramp": [{"percent": 50, "bakeMinutes": 20}, {"percent": 100, "bakeMinutes": 20}]},
        "durationMinutes": 40,
        "evaluationPeriodMinutes": 10,
        # Clear evidence of a pass ends the ramp early (README: "Early stopping"): the promotion comes sooner.
        "gates": {
            "minInvocations": 500,
            "agreement": {"minWithinToleranceRate": 0.95},
            "earlyStop": {"onPass": True},
        },
        "comparison": {"comparator": "numeric", "tolerance": {"absolute": 0.005, "relative": 0}},
        "promotion": {"guardrails": GUARDRAILS},
    }
    source = output / "shadow-inputs" / f"{name}.json"
    source.write_text(json.dumps(document, indent=2))
    say(
        f"\n▶ shadow test {name}: recommender-v4 as 'candidate-c' on {ENDPOINT!r}, ramp 50 % → 100 % that may end"
        " early on a clear pass, promoted with guardrails (canary of 1 instance, 10-min bakes, roll back on any 5xx)"
    )
    say(f"$ shadowscale shadow start {source.relative_to(output.parent)} --name {name}")
    execution = _execution_arn(cloud, name)
    cloud.stepfunctions.hold_waits()
    try:
        cloud.client("stepfunctions").start_execution(
            stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name=name, input=source.read_text()
        )
        cloud.step_to(execution, "PromoteWait")  # the gates passed; UpdateEndpoint with the DeploymentConfig is made
        deployment = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["PendingDeploymentSummary"]
        alarms = _promotion_alarms(cloud)
        say(f"  the gates passed; UpdateEndpoint to {deployment['EndpointConfigName']} with rollback alarm(s) {alarms}")
        # The new fleet keeps the production variant's name (Guardrails requires it), so its errors are
        # that variant's: the simulation puts a failing server behind it while the canary bakes.
        simulation.serve(production, replace(healthy, server_error_rate=0.08))
        say(f"  the promoted model answers 8 % 5xx once it takes production traffic on {production!r}")
    finally:
        cloud.stepfunctions.release_waits()
    cloud.wait_for_execution(execution, timeout=300)
    simulation.serve(production, healthy)  # the original model again, on the original config
    say(f"$ shadowscale shadow follow {name}")
    cli(["shadow", "follow", name, "--poll-seconds", "0.05", *stack])
    outcome = _collect(cloud, name, output)
    after = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    result = GuardedPromotionOutcome(
        test=outcome,
        original_config=original,
        endpoint_status=after["EndpointStatus"],
        alarms_created=alarms,
        alarms_fired=[alarm for alarm in alarms if alarm in outcome.reason],
        alarms_left=_promotion_alarms(cloud),
        # The DeploymentConfig SageMaker ran: DescribeEndpoint's LastDeploymentConfig once it has one.
        deployment=after.get("LastDeploymentConfig") or {"PendingDeploymentSummary": deployment},
    )
    if outcome.early_stop:
        say(f"  {outcome.early_stop}; the interval that decided: {', '.join(outcome.deciding)}")
    say(f"  {outcome.outcome}: {outcome.reason}")
    say(
        f"  endpoint {after['EndpointStatus']} on {after['EndpointConfigName']} (the original: {original});"
        f" promotion alarms left: {result.alarms_left or 'none'}"
    )
    say(f"  report: {outcome.report_html}")
    return result


def _execution_arn(cloud: Any, name: str) -> str:  # noqa: ANN401
    """The ARN of the shadow-test execution started with `name`."""
    return str(cloud.outputs["ShadowTestStateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}")


def _promotion_alarms(cloud: Any) -> list[str]:  # noqa: ANN401
    from shadowscale.shadow_tests.promotion_guardrails import alarm_prefix

    found = cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{alarm_prefix(cloud.stage)}{ENDPOINT}-")
    return sorted(alarm["AlarmName"] for alarm in found["MetricAlarms"])


def _collect_diffs(cloud: Any, name: str, output: Path) -> dict[str, Any]:  # noqa: ANN401
    body = cloud.client("s3").get_object(Bucket=cloud.outputs["DataBucketName"], Key=f"diffs/{name}/summary.json")
    summary: dict[str, Any] = json.loads(body["Body"].read())
    (output / "shadow-tests" / f"{name}.diffs.json").write_text(json.dumps(summary, indent=2))
    return summary


def _awaiting_approval(cloud: Any) -> bool:  # noqa: ANN401
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.outputs["EndpointStateTableName"], Key={"endpoint": {"S": ENDPOINT}}
    )
    return "approvalToken" in item.get("Item", {})


def _collect(cloud: Any, name: str, output: Path, endpoint: str = ENDPOINT) -> ShadowTestOutcome:  # noqa: ANN401
    s3 = cloud.client("s3")
    bucket = cloud.outputs["DataBucketName"]
    folder = output / "shadow-tests"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for suffix in ("json", "html"):
        body = s3.get_object(Bucket=bucket, Key=f"reports/{endpoint}/{name}/report.{suffix}")["Body"].read()
        paths[suffix] = folder / f"{name}.{suffix}"
        paths[suffix].write_bytes(body)
    report = json.loads(paths["json"].read_text())
    evaluation = report.get("evaluation") or {}
    described = cloud.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    return ShadowTestOutcome(
        name=name,
        outcome=report["outcome"],
        verdict=report.get("verdict"),
        final_config=described["EndpointConfigName"],
        serving_variant=described["ProductionVariants"][0]["VariantName"],
        report_html=paths["html"],
        report_json=paths["json"],
        gates={gate["name"]: gate["status"] for gate in evaluation.get("gates", [])},
        reason=report.get("reason") or "",
        early_stop=evaluation.get("earlyStop"),
        deciding=_deciding(evaluation.get("gates", [])),
    )


def _deciding(gates: list[dict[str, Any]]) -> list[str]:
    """The gates that decided: the failing ones if any failed, else the interval nearest its threshold (the
    last to become conclusive, so the one that let the test pass)."""
    failing = [gate for gate in gates if gate["status"] == "fail"]
    if failing:
        return [_interval(gate) for gate in failing]
    bounded = [gate for gate in gates if gate.get("method") and gate.get("threshold")]
    return [_interval(min(bounded, key=_margin))] if bounded else []


def _margin(gate: dict[str, Any]) -> float:
    """How far a passing interval clears its threshold, relative to it: a floor by its lower bound (the
    estimate is above the threshold), a ceiling by its upper."""
    threshold, observed = float(gate["threshold"]), float(gate.get("observed") or 0.0)
    bound = gate.get("lower") if observed >= threshold else gate.get("upper")
    return abs(float(bound if bound is not None else observed) - threshold) / abs(threshold)


def _interval(gate: dict[str, Any]) -> str:
    """A failing gate as `name observed [lower, upper] (method) vs threshold`."""

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    bounds = f" [{number(gate.get('lower'))}, {number(gate.get('upper'))}]" if gate.get("method") else ""
    method = f" ({gate['method']})" if gate.get("method") else ""
    return f"{gate['name']} {number(gate.get('observed'))}{bounds}{method} vs {number(gate.get('threshold'))}"
