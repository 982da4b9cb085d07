"""Guarded promotion on the local cloud: the real state machine promotes through UpdateEndpoint with a
DeploymentConfig, the local Deployment Guardrails bake it and watch the rollback alarms the test created.

An alarm that fires during the bake rolls the promotion back: the test ends `rolled-back`, the endpoint is on
its ORIGINAL config (not the shadow config SageMaker rolled back to), the alarms are gone and the report
names the alarm. A quiet bake promotes, under the production variant's name (Guardrails keeps names).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud

from tests.integration.test_shadow_lifecycle import USER_CAPTURE, ShadowTestRun, deploy_endpoint, publish_traffic

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
GUARDRAILS = {
    "mode": "allAtOnce",
    "waitIntervalSeconds": 600,
    "maximumExecutionTimeoutSeconds": 1800,
    "rollbackAlarms": {"max5xxErrors": 0, "maxModelLatencyP99Ms": 500},
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(START), stack_name="guarded-test") as running:
        running.evaluate_alarms()  # CloudWatch evaluates the rollback alarms every minute
        yield running


def promotion_alarms(cloud: LocalCloud, endpoint: str) -> list[dict[str, Any]]:
    alarms: list[dict[str, Any]] = cloud.client("cloudwatch").describe_alarms(
        AlarmNamePrefix=f"shadowscale-dev-promotion-{endpoint}-"
    )["MetricAlarms"]
    return alarms


def start_guarded(cloud: LocalCloud, name: str) -> ShadowTestRun:
    """A healthy candidate (the gates pass), promoted with guardrails; stopped in its first PromoteWait."""
    cloud.evaluate_alarms()
    run = deploy_endpoint(cloud, name)
    publish_traffic(cloud, name, "primary", latency_ms=20)
    publish_traffic(cloud, name, "shadow", latency_ms=21, invocations=150)
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    run.start(promotion={"guardrails": GUARDRAILS})
    cloud.step_to(run.execution_arn, "PromoteWait")
    return run


def roll_back_a_guarded_promotion(cloud: LocalCloud, name: str) -> dict[str, Any]:
    """A guarded promotion whose 5xx alarm fires during the bake (also a flow of the IAM journey)."""
    run = start_guarded(cloud, name)
    try:
        publish_traffic(cloud, run.endpoint, "primary", latency_ms=20, errors_5xx=7, minutes=60)
    finally:
        cloud.stepfunctions.release_waits()  # type: ignore[union-attr]
    run.finish(timeout=300)
    return run.report()


def test_a_guarded_promotion_whose_alarm_fires_rolls_back_to_the_original_config(cloud: LocalCloud) -> None:
    # GIVEN a guarded promotion under way: its alarms exist and SageMaker deploys with them
    run = start_guarded(cloud, "guarded-rollback")
    try:
        alarms = promotion_alarms(cloud, run.endpoint)
        assert sorted(alarm["MetricName"] for alarm in alarms) == ["Invocation5XXErrors", "ModelLatency"]
        for alarm in alarms:
            assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
                "EndpointName": run.endpoint,
                "VariantName": "primary",
            }
        deployment = run.sagemaker.describe_endpoint(EndpointName=run.endpoint)["PendingDeploymentSummary"]
        assert deployment["EndpointConfigName"].startswith(f"{run.endpoint}-")
        assert deployment["EndpointConfigName"].endswith("-promoted")

        # WHEN the promoted variant starts answering 5xx during the bake
        publish_traffic(cloud, run.endpoint, "primary", latency_ms=20, errors_5xx=7, minutes=60)
    finally:
        cloud.stepfunctions.release_waits()  # type: ignore[union-attr]
    described = run.finish(timeout=300)

    # THEN SageMaker rolled back, and the test restored the ORIGINAL config, not the shadow one
    assert described["status"] == "FAILED"
    report = run.report()
    assert report["outcome"] == "rolled-back", report.get("failure")
    assert report["failure"]["error"] == "PromotionRolledBack"
    errors_alarm = next(alarm["AlarmName"] for alarm in alarms if alarm["MetricName"] == "Invocation5XXErrors")
    assert errors_alarm in report["reason"]
    run.assert_clean(
        config="guarded-rollback-config-1", variant="primary", model="guarded-rollback-v1", capture=USER_CAPTURE
    )
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}
    # ... and the alarms the promotion created are gone
    assert promotion_alarms(cloud, run.endpoint) == []


def test_a_guarded_promotion_with_quiet_alarms_promotes_under_the_production_variant_name(cloud: LocalCloud) -> None:
    # GIVEN a guarded promotion under way, its traffic healthy
    run = start_guarded(cloud, "guarded-promote")
    assert len(promotion_alarms(cloud, run.endpoint)) == 2

    # WHEN the bake passes without an alarm
    cloud.stepfunctions.release_waits()  # type: ignore[union-attr]
    described = run.finish(timeout=300)

    # THEN the candidate serves, under the old variant's name, with its Auto Scaling; the alarms are gone
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    assert run.report()["outcome"] == "promoted"
    promoted = run.output()["plan"]["promotedConfigName"]
    run.assert_clean(config=promoted, variant="primary", model="guarded-promote-v2", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}
    last = run.sagemaker.describe_endpoint(EndpointName=run.endpoint)["LastDeploymentConfig"]
    assert last["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"] == 600
    assert promotion_alarms(cloud, run.endpoint) == []


def test_an_abort_mid_promotion_that_then_rolls_back_is_restored_by_the_recovery(cloud: LocalCloud) -> None:
    # GIVEN a guarded promotion under way, whose execution a person stops, and whose alarm then fires
    run = start_guarded(cloud, "guarded-abort")
    try:
        cloud.client("stepfunctions").stop_execution(executionArn=run.execution_arn, cause="operator abort")
        publish_traffic(cloud, run.endpoint, "primary", latency_ms=20, errors_5xx=7, minutes=60)
    finally:
        cloud.stepfunctions.release_waits()  # type: ignore[union-attr]

    # WHEN the recovery execution takes over
    described = run.finish(timeout=300)

    # THEN it waited out SageMaker's rollback, restored the original config and deleted the alarms
    assert described["status"] == "ABORTED"
    assert [recovery["status"] for recovery in run.recoveries] == ["SUCCEEDED"]
    assert run.report()["outcome"] == "aborted"
    run.assert_clean(config="guarded-abort-config-1", variant="primary", model="guarded-abort-v1", capture=USER_CAPTURE)
    assert run.scaling_targets() == {"primary": (2, 6, ["invocations-per-instance"])}
    assert promotion_alarms(cloud, run.endpoint) == []
