"""A budget-capped shadow test end to end on the local cloud: the deployed state machine, our task function
in-process, the SageMaker gap-fill, on the accelerated clock. The budget runs out long before the bake
would have ended; the test ends on its decision path, the report (JSON, HTML) and `shadowscale shadow
follow` show the spend and why it ended, and the endpoint is left as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shadowscale.cli.main import main as cli
from shadowscale.shadow_tests.models import ShadowTestPlan
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_endpoint_once_visible, create_models

REPO = Path(__file__).resolve().parents[2]
STACK = "budget-e2e"
ENDPOINT = "budgeted"
BEGIN = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def publish_traffic(cloud: LocalCloud, variant: str, *, minutes: int, invocations: int, latency_ms: float) -> None:
    """Per-minute SageMaker metrics for a variant from now on, as steady traffic would leave them."""
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
    start = cloud.clock.now()
    data: list[dict[str, Any]] = []
    for minute in range(minutes):
        at = start + timedelta(minutes=minute, seconds=30)
        data.append({"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": at, "Value": invocations})
        for metric in ("Invocation5XXErrors", "Invocation4XXErrors", "InvocationModelErrors"):
            data.append({"MetricName": metric, "Dimensions": dimensions, "Timestamp": at, "Value": 0})
        for factor in (0.8, 1.0, 1.3):
            value = latency_ms * factor * 1000  # microseconds, as SageMaker publishes
            data.append({"MetricName": "ModelLatency", "Dimensions": dimensions, "Timestamp": at, "Value": value})
    cloudwatch = cloud.client("cloudwatch")
    for index in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[index : index + 500])


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(BEGIN), stack_name=STACK) as running:
        sagemaker = running.client("sagemaker")
        create_models(sagemaker, f"{ENDPOINT}-v1", f"{ENDPOINT}-v2")
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{ENDPOINT}-config-1",
            ProductionVariants=[
                {
                    "VariantName": "primary",
                    "ModelName": f"{ENDPOINT}-v1",
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.m5.xlarge",
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
        create_endpoint_once_visible(sagemaker, ENDPOINT, f"{ENDPOINT}-config-1", running.advance)
        yield running


def test_a_budget_capped_test_stops_on_budget_and_leaves_the_endpoint_clean(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a 2-hour test of 2 shadow instances at $0.80 an hour each, capped at $0.40 (15 minutes), whose
    # gates ask for more invocations than 15 minutes bring (so its evidence is inconclusive when it stops)
    publish_traffic(cloud, "primary", minutes=180, invocations=300, latency_ms=20)
    publish_traffic(cloud, "shadow", minutes=180, invocations=60, latency_ms=21)
    began = cloud.clock.now()
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"],
        name="budgeted-run",
        input=json.dumps(
            {
                "endpointName": ENDPOINT,
                "candidate": {"modelName": f"{ENDPOINT}-v2", "instanceType": "ml.g4dn.xlarge", "instanceCount": 2},
                "sampling": {"percent": 50},
                "durationMinutes": 120,
                "evaluationPeriodMinutes": 10,
                "gates": {"minInvocations": 100_000},
                "budget": {"maxCostUsd": 0.4, "hourlyPrices": {"ml.g4dn.xlarge": 0.8}},
            }
        ),
    )
    execution_arn = started["executionArn"]

    # WHEN it runs to its end
    described = cloud.wait_for_execution(execution_arn)

    # THEN it ended on the decision path, well before its 2-hour bake, because the budget was spent
    assert described["status"] == "SUCCEEDED", described
    assert cloud.clock.now() - began < timedelta(minutes=60)
    test_id = ShadowTestPlan.test_id_of(execution_arn)
    s3 = cloud.client("s3")
    bucket = cloud.outputs["DataBucketName"]
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"reports/{ENDPOINT}/{test_id}/report.json")["Body"].read())
    assert report["outcome"] == "removed"
    assert report["verdict"] == "insufficient-data"
    assert report["reason"].startswith("budget spent ($0.40 of $0.40); insufficient data for: min-invocations")
    # ... the JSON report carries the spend: hours, dollars, the budget and its share
    spend = report["evaluation"]["spend"]
    assert spend["instanceHours"] == pytest.approx(0.5, abs=0.01)
    assert spend["costUsd"] == pytest.approx(0.4, abs=0.01)
    assert (spend["maxCostUsd"], spend["hourlyPriceUsd"], spend["priceSource"]) == (0.4, 0.8, "input")
    assert spend["share"] == pytest.approx(1.0, abs=0.02)
    assert datetime.fromisoformat(spend["at"]) - datetime.fromisoformat(spend["since"]) < timedelta(minutes=16)
    # ... and so does the page
    html = s3.get_object(Bucket=bucket, Key=f"reports/{ENDPOINT}/{test_id}/report.html")["Body"].read().decode()
    assert "<h2>Budget</h2>" in html
    assert "Budget spent: $0.40 of $0.40" in html

    # ... and `shadowscale shadow follow` shows the spend line
    capsys.readouterr()
    assert cli(["shadow", "follow", "budgeted-run", "--poll-seconds", "0.05", "--stack-name", STACK]) == 0
    followed = capsys.readouterr().out
    assert "spend: 0.50" in followed
    assert "SPENT: $0.40 of $0.40" in followed

    # ... and the endpoint is as it was: its own config, no shadow, no lease, no temporary config
    sagemaker = cloud.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == f"{ENDPOINT}-config-1"
    assert [variant["VariantName"] for variant in endpoint["ProductionVariants"]] == ["primary"]
    assert "ShadowProductionVariants" not in endpoint
    configs = [config["EndpointConfigName"] for config in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
    assert sorted(name for name in configs if name.startswith(ENDPOINT)) == [f"{ENDPOINT}-config-1"]
    lease = cloud.client("dynamodb").get_item(
        TableName=cloud.outputs["EndpointStateTableName"], Key={"endpoint": {"S": ENDPOINT}}
    )
    assert not {"leaseOwner", "testOwner", "shadowTest"} & set(lease.get("Item", {}))
