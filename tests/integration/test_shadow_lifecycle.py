"""The shadow-test state machine, as deployed: the real ASL on moto's interpreter, our real task
function and the recovery state machine run in-process, the SageMaker gap-fill, on the local cloud's accelerated clock.

Every scenario ends with the same checks: the endpoint is InService on the promoted config or on its
snapshot, with its data-capture settings and Auto Scaling targets as they should be, the lease is
released, no temporary config is left, and a report (JSON + HTML) was written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shadowscale.cli.main import main as cli
from shadowscale.shadow_tests.models import ShadowTestPlan
from shadowscale.shared.endpoint_state import DynamoEndpointState
from shadowscale.shared.errors import EndpointLocked
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_endpoint_once_visible, create_models

REPO = Path(__file__).resolve().parents[2]
MONDAY_0800_UTC = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
USER_CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 20,
    "DestinationS3Uri": "s3://team-capture/fraud",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
}
TARGET_TRACKING = {
    "TargetValue": 700.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(MONDAY_0800_UTC), stack_name="lifecycle-test") as running:
        yield running


@dataclass
class ShadowTestRun:
    cloud: LocalCloud
    endpoint: str
    execution_arn: str = ""
    recoveries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sagemaker(self) -> Any:
        return self.cloud.client("sagemaker")

    def start(self, **overrides: Any) -> str:
        document: dict[str, Any] = {
            "endpointName": self.endpoint,
            "candidate": {"modelName": f"{self.endpoint}-v2", "instanceType": "ml.g4dn.xlarge", "instanceCount": 1},
            "sampling": {"percent": 50},
            "durationMinutes": 30,
            "evaluationPeriodMinutes": 5,
            "gates": {"minInvocations": 100},
        }
        document.update(overrides)
        started = self.cloud.client("stepfunctions").start_execution(
            stateMachineArn=self.cloud.outputs["ShadowTestStateMachineArn"],
            name=f"{self.endpoint}-{len(self.cloud.deliveries)}",
            input=json.dumps(document),
        )
        self.execution_arn = started["executionArn"]
        return self.execution_arn

    def finish(self, **options: Any) -> dict[str, Any]:
        """The test's execution once it and any recovery it needed have ended."""
        described = self.cloud.wait_for_execution(self.execution_arn, **options)
        self.recoveries = self.cloud.wait_for_recoveries(self.execution_arn)
        return described

    def output(self) -> dict[str, Any]:
        described = self.cloud.client("stepfunctions").describe_execution(executionArn=self.execution_arn)
        loaded: dict[str, Any] = json.loads(described.get("output") or "{}")
        return loaded

    def report(self) -> dict[str, Any]:
        test_id = ShadowTestPlan.test_id_of(self.execution_arn)
        body = self.cloud.client("s3").get_object(
            Bucket=self.cloud.outputs["DataBucketName"], Key=f"reports/{self.endpoint}/{test_id}/report.json"
        )["Body"]
        loaded: dict[str, Any] = json.loads(body.read())
        return loaded

    def report_html(self) -> str:
        test_id = ShadowTestPlan.test_id_of(self.execution_arn)
        body = self.cloud.client("s3").get_object(
            Bucket=self.cloud.outputs["DataBucketName"], Key=f"reports/{self.endpoint}/{test_id}/report.html"
        )["Body"]
        return str(body.read().decode())

    def lease(self) -> dict[str, Any]:
        item: dict[str, Any] = (
            self.cloud.client("dynamodb")
            .get_item(TableName=self.cloud.outputs["EndpointStateTableName"], Key={"endpoint": {"S": self.endpoint}})
            .get("Item", {})
        )
        return item

    def scaling_targets(self) -> dict[str, tuple[int, int, list[str]]]:
        autoscaling = self.cloud.client("application-autoscaling")
        found = {}
        for target in autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]:
            if target["ResourceId"].startswith(f"endpoint/{self.endpoint}/"):
                policies = autoscaling.describe_scaling_policies(
                    ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
                )["ScalingPolicies"]
                found[target["ResourceId"].rsplit("/", 1)[-1]] = (
                    target["MinCapacity"],
                    target["MaxCapacity"],
                    sorted(policy["PolicyName"] for policy in policies),
                )
        return found

    def configs_left(self) -> list[str]:
        names = [c["EndpointConfigName"] for c in self.sagemaker.list_endpoint_configs()["EndpointConfigs"]]
        return sorted(name for name in names if name.startswith(self.endpoint))

    def assert_clean(self, *, config: str, variant: str, model: str, capture: dict[str, Any] | None) -> None:
        described = self.sagemaker.describe_endpoint(EndpointName=self.endpoint)
        assert described["EndpointStatus"] == "InService"
        assert described["EndpointConfigName"] == config
        assert [v["VariantName"] for v in described["ProductionVariants"]] == [variant]
        assert "ShadowProductionVariants" not in described
        [production] = self.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        assert production["ModelName"] == model
        if capture is None:
            assert "DataCaptureConfig" not in described
        else:
            assert described["DataCaptureConfig"]["EnableCapture"] is True
            assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == capture["InitialSamplingPercentage"]
            assert described["DataCaptureConfig"]["DestinationS3Uri"] == capture["DestinationS3Uri"]
        assert "leaseOwner" not in self.lease()
        assert "testOwner" not in self.lease()
        assert "shadowTest" not in self.lease()
        assert self.configs_left() == sorted({f"{self.endpoint}-config-1", config})
        outcome = self.report()["outcome"]
        assert f'<span class="badge">{outcome}</span>' in self.report_html()


def deploy_endpoint(cloud: LocalCloud, name: str, *, capture: bool = True, autoscaled: bool = True) -> ShadowTestRun:
    """One production variant (2 instances, Auto Scaling 2..6 with a policy), its data capture, a candidate model."""
    sagemaker = cloud.client("sagemaker")
    create_models(sagemaker, f"{name}-v1", f"{name}-v2")
    config: dict[str, Any] = {
        "EndpointConfigName": f"{name}-config-1",
        "ProductionVariants": [
            {
                "VariantName": "primary",
                "ModelName": f"{name}-v1",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    }
    if capture:
        config["DataCaptureConfig"] = USER_CAPTURE
    sagemaker.create_endpoint_config(**config)
    create_endpoint_once_visible(sagemaker, name, f"{name}-config-1", cloud.advance)
    if autoscaled:
        autoscaling = cloud.client("application-autoscaling")
        resource = f"endpoint/{name}/variant/primary"
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=2,
            MaxCapacity=6,
        )
        autoscaling.put_scaling_policy(
            PolicyName="invocations-per-instance",
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=TARGET_TRACKING,
        )
    return ShadowTestRun(cloud, name)


def publish_traffic(
    cloud: LocalCloud,
    endpoint: str,
    variant: str,
    *,
    minutes: int = 180,
    latency_ms: float = 20.0,
    invocations: int = 300,
    errors_5xx: int = 0,
) -> None:
    """Per-minute SageMaker metrics for a variant from now on, as a steady stream of traffic would leave."""
    cloudwatch = cloud.client("cloudwatch")
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    start = cloud.clock.now()
    data: list[dict[str, Any]] = []
    for minute in range(minutes):
        at = start + timedelta(minutes=minute, seconds=30)
        data.append({"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": at, "Value": invocations})
        data.append(
            {"MetricName": "Invocation5XXErrors", "Dimensions": dimensions, "Timestamp": at, "Value": errors_5xx}
        )
        data.append({"MetricName": "Invocation4XXErrors", "Dimensions": dimensions, "Timestamp": at, "Value": 0})
        data.append({"MetricName": "InvocationModelErrors", "Dimensions": dimensions, "Timestamp": at, "Value": 0})
        for factor in (0.8, 0.9, 1.0, 1.1, 1.3):
            value = latency_ms * factor * 1000  # microseconds, as SageMaker publishes
            data.append({"MetricName": "ModelLatency", "Dimensions": dimensions, "Timestamp": at, "Value": value})
    for index in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[index : index + 500])


def approval_token(run: ShadowTestRun) -> str:
    def waiting(_: dict[str, Any]) -> bool:
        return "approvalToken" in run.lease()

    described = run.finish(until=waiting)
    assert described["status"] == "RUNNING", described
    return str(run.lease()["approvalToken"]["S"])


# --- auto decisions ------------------------------------------------------------------------------


def test_a_healthy_candidate_is_promoted_with_auto_scaling_carried_over(cloud: LocalCloud) -> None:
    # GIVEN an auto-scaled endpoint with its own data capture, and a candidate as fast as production
    run = deploy_endpoint(cloud, "promote-me")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=21, invocations=150)

    # WHEN a 30-minute shadow test runs in auto mode
    run.start()
    described = run.finish()

    # THEN the shadow was promoted: its variant now serves, with the old variant's Auto Scaling
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    report = run.report()
    assert report["outcome"] == "promoted"
    assert report["verdict"] == "pass"
    assert {gate["name"]: gate["status"] for gate in report["evaluation"]["gates"]}["latency-p90-ratio"] == "pass"
    promoted = run.output()["plan"]["promotedConfigName"]
    run.assert_clean(config=promoted, variant="shadow", model="promote-me-v2", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"shadow": (2, 6, ["invocations-per-instance"])}
    # ... and the evaluation loop really baked on the clock: 30 minutes passed
    assert cloud.clock.now() - MONDAY_0800_UTC >= timedelta(minutes=30)


def test_a_slow_candidate_is_removed_and_the_endpoint_is_back_on_its_snapshot(cloud: LocalCloud) -> None:
    # GIVEN a candidate three times slower than production
    run = deploy_endpoint(cloud, "too-slow")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=60, invocations=150)

    # WHEN the test runs in auto mode
    run.start()
    described = run.finish()

    # THEN the latency gates fail, the shadow is removed and everything is as it was
    assert described["status"] == "SUCCEEDED", described
    report = run.report()
    assert report["outcome"] == "removed"
    assert report["verdict"] == "fail"
    gates = {gate["name"]: gate for gate in report["evaluation"]["gates"]}
    assert gates["latency-p50-ratio"]["status"] == "fail"
    assert gates["latency-p50-ratio"]["observed"] == pytest.approx(3.0, rel=0.05)
    run.assert_clean(config="too-slow-config-1", variant="primary", model="too-slow-v1", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}


def test_a_hard_limit_breach_ends_the_test_early(cloud: LocalCloud) -> None:
    # GIVEN a candidate that fails half its requests, in a 2-hour test
    run = deploy_endpoint(cloud, "erroring", autoscaled=False)
    publish_traffic(cloud, run.endpoint, "primary")
    publish_traffic(cloud, run.endpoint, "shadow", invocations=100, errors_5xx=50)
    began = cloud.clock.now()

    # WHEN it runs
    run.start(durationMinutes=120)
    run.finish()

    # THEN the first evaluation with data aborts it, long before two hours
    report = run.report()
    assert report["outcome"] == "removed"
    assert "hard limit" in report["reason"]
    assert cloud.clock.now() - began < timedelta(minutes=30)
    run.assert_clean(config="erroring-config-1", variant="primary", model="erroring-v1", capture=USER_CAPTURE)


def test_report_only_never_promotes(cloud: LocalCloud) -> None:
    run = deploy_endpoint(cloud, "just-looking", autoscaled=False, capture=False)
    publish_traffic(cloud, run.endpoint, "primary")
    publish_traffic(cloud, run.endpoint, "shadow", invocations=150)

    run.start(decisionMode="report-only")
    run.finish()

    report = run.report()
    assert (report["outcome"], report["verdict"]) == ("report-only", "pass")
    run.assert_clean(config="just-looking-config-1", variant="primary", model="just-looking-v1", capture=None)


# --- a person decides ----------------------------------------------------------------------------


def test_approval_via_task_token_promotes_after_a_ramp(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a ramp 10 % → 50 % and approve mode
    run = deploy_endpoint(cloud, "needs-ok")
    publish_traffic(cloud, run.endpoint, "primary")
    publish_traffic(cloud, run.endpoint, "shadow", invocations=150)
    run.start(
        decisionMode="approve",
        sampling={"ramp": [{"percent": 10, "bakeMinutes": 10}, {"percent": 50, "bakeMinutes": 10}]},
        durationMinutes=20,
    )

    # WHEN the machine asks for approval, with an interim report, and a person approves
    token = approval_token(run)
    pending = run.cloud.client("s3").list_objects_v2(
        Bucket=cloud.outputs["DataBucketName"], Prefix=f"reports/{run.endpoint}/"
    )
    assert any(obj["Key"].endswith("report-pending.html") for obj in pending["Contents"])
    # ... which says it awaits approval with the candidate live, and `shadow report` shows it while it waits
    interim = json.loads(
        cloud.client("s3")
        .get_object(
            Bucket=cloud.outputs["DataBucketName"],
            Key=f"reports/{run.endpoint}/{ShadowTestPlan.test_id_of(run.execution_arn)}/report-pending.json",
        )["Body"]
        .read()
    )
    assert interim["outcome"] == "awaiting-approval"
    assert "candidate keeps receiving shadow traffic" in interim["reason"]
    assert cli(["shadow", "report", run.execution_arn, "--stack-name", "lifecycle-test"]) == 0
    assert "AWAITING-APPROVAL" in capsys.readouterr().out
    cloud.client("stepfunctions").send_task_success(
        taskToken=token, output=json.dumps({"approved": True, "by": "alice"})
    )
    described = run.finish()

    # THEN the candidate is promoted, the report names the approver, and the ramp reached 50 %
    assert described["status"] == "SUCCEEDED", described
    report = run.report()
    assert report["outcome"] == "promoted"
    assert report["approval"]["by"] == "alice"
    assert report["evaluation"]["stepIndex"] == 1
    promoted = run.output()["plan"]["promotedConfigName"]
    run.assert_clean(config=promoted, variant="shadow", model="needs-ok-v2", capture=USER_CAPTURE)
    ramped = [entry for entry in report["timeline"] if entry["state"] == "Ramp"]
    assert ramped, "the ramp step ran"


def test_rejection_via_task_token_restores_the_snapshot(cloud: LocalCloud) -> None:
    run = deploy_endpoint(cloud, "say-no")
    publish_traffic(cloud, run.endpoint, "primary")
    publish_traffic(cloud, run.endpoint, "shadow", invocations=150)
    run.start(decisionMode="approve")

    token = approval_token(run)
    cloud.client("stepfunctions").send_task_success(
        taskToken=token, output=json.dumps({"approved": False, "by": "bob", "comment": "labels drift"})
    )
    run.finish()

    report = run.report()
    assert report["outcome"] == "rejected"
    assert "bob" in report["reason"]
    run.assert_clean(config="say-no-config-1", variant="primary", model="say-no-v1", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}


# --- things go wrong -----------------------------------------------------------------------------


def test_a_user_abort_restores_the_endpoint_through_a_recovery_execution(cloud: LocalCloud) -> None:
    # GIVEN a test baking its shadow (held at its Wait state so the abort lands mid-bake)
    run = deploy_endpoint(cloud, "abort-me")
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        run.start(durationMinutes=240)
        cloud.step_to(run.execution_arn, "Bake")  # one Wait state at a time
        assert (
            cloud.client("sagemaker").describe_endpoint(EndpointName="abort-me")["ShadowProductionVariants"][0][
                "VariantName"
            ]
            == "shadow"
        )

        # WHEN a person stops the execution
        cloud.client("stepfunctions").stop_execution(executionArn=run.execution_arn, cause="operator abort")
    finally:
        cloud.stepfunctions.release_waits()
    described = run.finish()

    # THEN the status-change event started one recovery execution, which put everything back and reported
    assert described["status"] == "ABORTED"
    assert [recovery["status"] for recovery in run.recoveries] == ["SUCCEEDED"]
    assert run.report()["outcome"] == "aborted"
    run.assert_clean(config="abort-me-config-1", variant="primary", model="abort-me-v1", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}


def test_invalid_input_fails_first_names_the_field_and_touches_nothing(cloud: LocalCloud) -> None:
    run = deploy_endpoint(cloud, "bad-input", autoscaled=False)
    run.start(sampling={"percent": 150}, candidate={"modelName": "bad-input-v2"})

    described = run.finish()

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidShadowTestInput"
    report = run.report()
    assert report["outcome"] == "invalid-input"
    assert "sampling.percent" in report["reason"]
    assert "candidate.instanceType" in report["reason"]
    run.assert_clean(config="bad-input-config-1", variant="primary", model="bad-input-v1", capture=USER_CAPTURE)


def test_a_candidate_that_never_gets_in_service_times_out_and_is_rolled_back(cloud: LocalCloud) -> None:
    # GIVEN the shadow config's update will hang for two hours and then roll back
    run = deploy_endpoint(cloud, "never-ready")
    cloud.gaps.stall_next_update("never-ready", seconds=2 * 3600)  # type: ignore[union-attr]

    # WHEN the test waits at most 30 minutes for InService
    run.start(inServiceTimeoutMinutes=30)
    described = run.finish()

    # THEN it fails with EndpointNotInService, after restoring the snapshot
    assert described["status"] == "FAILED"
    report = run.report()
    assert report["outcome"] == "failed"
    assert report["failure"]["error"] == "EndpointNotInService"
    run.assert_clean(config="never-ready-config-1", variant="primary", model="never-ready-v1", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("CreateEndpointConfig", "ThrottlingException"),
        ("UpdateEndpoint", "ValidationException"),  # "Cannot update in-progress endpoint"
        ("UpdateEndpoint", "InternalFailure"),
        ("UpdateEndpointWeightsAndCapacities", "ThrottlingException"),
        ("DeleteEndpointConfig", "ServiceUnavailable"),
    ],
)
def test_transient_faults_at_each_mutating_step_are_retried(cloud: LocalCloud, operation: str, code: str) -> None:
    # GIVEN the next two calls of a mutating operation fail
    name = f"flaky-{operation.lower()[:12]}-{code.lower()[:8]}"
    run = deploy_endpoint(cloud, name)
    publish_traffic(cloud, name, "primary")
    publish_traffic(cloud, name, "shadow", invocations=150)
    cloud.gaps.inject_fault(operation, code, times=2)  # type: ignore[union-attr]

    # WHEN a ramped test runs (the ramp step is the weights-and-capacities call)
    run.start(sampling={"ramp": [{"percent": 10, "bakeMinutes": 10}, {"percent": 50, "bakeMinutes": 10}]})
    described = run.finish()

    # THEN the retries absorbed the faults and the test promoted as if nothing happened
    assert described["status"] == "SUCCEEDED", described
    assert run.report()["outcome"] == "promoted"
    promoted = run.output()["plan"]["promotedConfigName"]
    run.assert_clean(config=promoted, variant="shadow", model=f"{name}-v2", capture=USER_CAPTURE)


def test_a_persistent_fault_fails_the_test_after_restoring(cloud: LocalCloud) -> None:
    run = deploy_endpoint(cloud, "broken-api")
    cloud.gaps.inject_fault("CreateEndpointConfig", "InternalFailure", times=50)  # type: ignore[union-attr]

    run.start()
    described = run.finish()
    cloud.gaps._faults.clear()  # type: ignore[union-attr]

    assert described["status"] == "FAILED"
    report = run.report()
    assert (report["outcome"], report["failure"]["error"]) == ("failed", "AwsServiceUnavailable")
    run.assert_clean(config="broken-api-config-1", variant="primary", model="broken-api-v1", capture=USER_CAPTURE)


def test_an_endpoint_held_by_the_autopilot_is_not_touched(cloud: LocalCloud) -> None:
    run = deploy_endpoint(cloud, "held", autoscaled=False)
    expires = int((cloud.clock.now() + timedelta(hours=1)).timestamp())
    cloud.client("dynamodb").put_item(
        TableName=cloud.outputs["EndpointStateTableName"],
        Item={"endpoint": {"S": "held"}, "leaseOwner": {"S": "autopilot:abc"}, "leaseExpiresAt": {"N": str(expires)}},
    )

    run.start()
    described = run.finish()

    assert described["status"] == "FAILED"
    report = run.report()
    assert report["outcome"] == "locked"
    assert "autopilot:abc" in report["reason"]
    assert run.lease()["leaseOwner"]["S"] == "autopilot:abc"  # still theirs
    assert run.configs_left() == ["held-config-1"]


def test_dry_run_plans_and_changes_nothing(cloud: LocalCloud) -> None:
    run = deploy_endpoint(cloud, "dry", autoscaled=False)

    run.start(dryRun=True)
    described = run.finish()

    assert described["status"] == "SUCCEEDED"
    report = run.report()
    assert report["outcome"] == "dry-run"
    shadow = report["planned"]["shadowConfig"]["ShadowProductionVariants"][0]
    assert (shadow["ModelName"], shadow["InstanceType"]) == ("dry-v2", "ml.g4dn.xlarge")
    assert report["planned"]["restoresTo"] == "dry-config-1"
    run.assert_clean(config="dry-config-1", variant="primary", model="dry-v1", capture=USER_CAPTURE)


# --- the command line ----------------------------------------------------------------------------


def test_the_cli_starts_follows_approves_and_reports(
    cloud: LocalCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shadowscale.cli.main import main

    # GIVEN an input file asking for approval
    run = deploy_endpoint(cloud, "by-cli", autoscaled=False)
    publish_traffic(cloud, run.endpoint, "primary")
    publish_traffic(cloud, run.endpoint, "shadow", invocations=150)
    document = json.loads((REPO / "events" / "shadow_test.json").read_text())
    document.update(
        endpointName="by-cli",
        candidate={"modelName": "by-cli-v2", "instanceType": "ml.g4dn.xlarge", "variantName": "shadow"},
        sampling={"percent": 20},
        durationMinutes=30,
        evaluationPeriodMinutes=5,
        gates={"minInvocations": 100},
    )
    source = tmp_path / "test.json"
    source.write_text(json.dumps(document))
    stack = ["--stack-name", "lifecycle-test"]

    # WHEN a person starts it, sees it waiting, approves it and follows it to the end
    assert main(["shadow", "start", str(source), "--name", "cli-run", *stack]) == 0
    run.execution_arn = cloud.outputs["ShadowTestStateMachineArn"].replace(":stateMachine:", ":execution:") + ":cli-run"
    approval_token(run)
    assert main(["shadow", "status", "cli-run", *stack]) == 0
    assert "waiting for approval" in capsys.readouterr().out
    assert main(["shadow", "approve", "cli-run", "--by", "carol", *stack]) == 0
    # In-process functions capture the process's output while they run: follow once the test has ended.
    run.finish()
    assert main(["shadow", "follow", "cli-run", "--poll-seconds", "0.05", *stack]) == 0
    followed = capsys.readouterr().out

    # THEN the progress shows the states, and the summary the outcome
    assert "AwaitApproval" in followed
    assert "Promote" in followed
    assert "by-cli: PROMOTED" in followed
    assert main(["shadow", "report", "cli-run", "--json", *stack]) == 0
    assert json.loads(capsys.readouterr().out)["approval"]["by"] == "carol"


def test_the_cli_refuses_an_invalid_file_before_starting_anything(
    cloud: LocalCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shadowscale.cli.main import main

    source = tmp_path / "bad.json"
    source.write_text(json.dumps({"endpointName": "x", "sampling": {"percent": 5}}))
    before = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"])[
        "executions"
    ]

    assert main(["shadow", "start", str(source), "--stack-name", "lifecycle-test"]) == 2

    assert "candidate: Field required" in capsys.readouterr().err
    after = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"])
    assert len(after["executions"]) == len(before)


def test_production_can_be_resized_while_the_test_bakes_and_the_restore_keeps_that_size(cloud: LocalCloud) -> None:
    # GIVEN a test baking a slow candidate (it will be removed)
    run = deploy_endpoint(cloud, "resized-mid-bake", autoscaled=False)
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=60, invocations=150)
    state = DynamoEndpointState(cloud.client("dynamodb"), cloud.outputs["EndpointStateTableName"])
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        run.start()
        cloud.step_to(run.execution_arn, "Bake")
        # WHEN the autopilot takes the endpoint's writer hold and scales production out, as it would for a spike
        assert run.lease()["testOwner"]["S"] == f"shadow-test:{run.execution_arn}"
        state.acquire("resized-mid-bake", "autopilot:spike", 60, cloud.clock.now())
        run.sagemaker.update_endpoint_weights_and_capacities(
            EndpointName="resized-mid-bake",
            DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 4}],
        )
        state.release("resized-mid-bake", "autopilot:spike", None)
    finally:
        cloud.stepfunctions.release_waits()
    described = run.finish()

    # THEN the test went on undisturbed, and its restore kept the four instances the autopilot chose
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    assert run.report()["outcome"] == "removed"
    run.assert_clean(
        config="resized-mid-bake-config-1", variant="primary", model="resized-mid-bake-v1", capture=USER_CAPTURE
    )
    [production] = run.sagemaker.describe_endpoint(EndpointName="resized-mid-bake")["ProductionVariants"]
    assert production["CurrentInstanceCount"] == 4


def test_while_the_test_changes_the_endpoint_the_autopilot_cannot_take_it(cloud: LocalCloud) -> None:
    # GIVEN a test waiting for its shadow config to be InService (it holds the endpoint exclusively)
    run = deploy_endpoint(cloud, "held-while-changing", autoscaled=False)
    state = DynamoEndpointState(cloud.client("dynamodb"), cloud.outputs["EndpointStateTableName"])
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        run.start()
        cloud.step_to(run.execution_arn, "ShadowWait")
        # WHEN an autopilot invocation tries to take the writer hold
        with pytest.raises(EndpointLocked) as refused:
            state.acquire("held-while-changing", "autopilot:too-early", 60, cloud.clock.now())
    finally:
        cloud.stepfunctions.release_waits()
    cloud.client("stepfunctions").stop_execution(executionArn=run.execution_arn, cause="done")
    run.finish()

    # THEN it is refused, naming the test (the autopilot defers and applies the change after the hold)
    assert refused.value.owner == f"shadow-test:{run.execution_arn}"
    run.assert_clean(
        config="held-while-changing-config-1", variant="primary", model="held-while-changing-v1", capture=USER_CAPTURE
    )
