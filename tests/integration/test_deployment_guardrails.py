"""The local cloud's Deployment Guardrails (deployment_guardrails.py via sagemaker_gaps): UpdateEndpoint with a
DeploymentConfig shifts traffic and bakes on the clock, rolls back when a rollback alarm is in ALARM, and
refuses what SageMaker documents it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from shadowscale_localcloud.deployment_guardrails import Phase, schedule
from shadowscale_localcloud.sagemaker_gaps import SageMakerGapFill

from tests.integration.conftest import REGION, Clock

NO_SDK_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
ENDPOINT = "guarded"
ALARM = "shadowscale-dev-promotion-guarded-5xx-errors"


@dataclass
class Guarded:
    sagemaker: Any
    cloudwatch: Any
    gaps: SageMakerGapFill
    clock: Clock

    def status(self) -> tuple[str, str]:
        described = self.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        return described["EndpointStatus"], described["EndpointConfigName"]

    def update(self, config: str, routing: dict[str, Any], **policy: Any) -> None:
        self.sagemaker.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName=config,
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, **policy},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
            },
        )

    def fire(self) -> None:
        self.cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx errors")


def _config(sagemaker: Any, name: str, model: str, variant: str = "primary", instances: int = 4) -> None:
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    )


@pytest.fixture(params=["shown", "absent"])
def guarded(request: pytest.FixtureRequest) -> Iterator[Guarded]:
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION, config=NO_SDK_RETRIES)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for model in ("v1", "v2"):
            sagemaker.create_model(
                ModelName=model,
                ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
                PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
            )
        _config(sagemaker, "blue", "v1")
        _config(sagemaker, "green", "v2")
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="blue")
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        clock = Clock()
        with SageMakerGapFill(clock=clock.now, update_seconds=60, rollback_failure_reason=request.param) as gaps:
            yield Guarded(sagemaker, cloudwatch, gaps, clock)


CANARY = {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}


def test_given_a_canary_without_alarms_when_time_passes_then_it_shifts_bakes_and_ends_on_the_new_config(
    guarded: Guarded,
) -> None:
    # GIVEN a canary deployment (1 of 4 instances, 300 s bakes) whose alarm stays quiet
    guarded.update("green", CANARY, TerminationWaitInSeconds=120)
    deployment = guarded.gaps.deployments[ENDPOINT]

    # WHEN the clock passes provisioning (60 s), the canary bake, the final bake and the termination wait
    seen = []
    for seconds in (30, 60, 300, 300, 89, 1):
        guarded.clock.advance(seconds)
        seen.append((guarded.status()[0], deployment.green_percent(guarded.clock.now())))

    # THEN it was Updating with 25 % then 100 % on green, and is InService on the new config at the end
    assert seen == [
        ("Updating", 0.0),
        ("Updating", 25.0),
        ("Updating", 100.0),
        ("Updating", 100.0),
        ("Updating", 100.0),
        ("InService", 100.0),
    ]
    described = guarded.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointConfigName"] == "green"
    assert "PendingDeploymentSummary" not in described
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert "FailureReason" not in described


def test_given_an_alarm_in_alarm_during_the_canary_bake_then_it_rolls_back_to_the_old_config(
    guarded: Guarded,
) -> None:
    # GIVEN a canary deployment in its baking period
    guarded.update("green", CANARY)
    guarded.clock.advance(90)
    assert guarded.status() == ("Updating", "green")
    assert (
        guarded.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["PendingDeploymentSummary"]["EndpointConfigName"]
        == "green"
    )

    # WHEN its rollback alarm goes to ALARM
    guarded.fire()

    # THEN the endpoint is RollingBack (no other update is taken), then InService on the old config
    assert guarded.status()[0] == "RollingBack"
    with pytest.raises(ClientError) as raised:
        guarded.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="green")
    assert "Cannot update in-progress endpoint" in raised.value.response["Error"]["Message"]
    guarded.clock.advance(60)
    assert guarded.status() == ("InService", "blue")
    described = guarded.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert described["ProductionVariants"][0]["VariantName"] == "primary"
    # ... and a FailureReason naming the alarm only where the switch says SageMaker shows one
    if guarded.gaps.rollback_failure_reason == "shown":
        assert ALARM in described["FailureReason"]
    else:
        assert "FailureReason" not in described


def test_given_an_alarm_in_alarm_after_the_deployment_then_nothing_rolls_back(guarded: Guarded) -> None:
    # GIVEN an all-at-once deployment that finished its bake
    guarded.update("green", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120})
    guarded.clock.advance(180)
    assert guarded.status() == ("InService", "green")

    # WHEN the alarm fires afterwards
    guarded.fire()

    # THEN the endpoint stays on the new config: alarms are watched during baking only
    assert guarded.status() == ("InService", "green")


@pytest.mark.parametrize(
    ("config", "deployment", "message"),
    [
        (
            "renamed",
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
                }
            },
            "same variant names",
        ),
        (
            "green",
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "no-such-alarm"}]},
            },
            "do not exist",
        ),
        (
            "green",
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "WaitIntervalInSeconds": 60,
                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 3},
                    }
                }
            },
            "CanarySize",
        ),
        (
            "green",
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
                    "MaximumExecutionTimeoutInSeconds": 600,
                }
            },
            "MaximumExecutionTimeoutInSeconds",
        ),
    ],
)
def test_given_a_deployment_config_sagemaker_refuses_then_validation_exception_and_nothing_moves(
    guarded: Guarded, config: str, deployment: dict[str, Any], message: str
) -> None:
    # GIVEN a config that renames the variant, a missing alarm, a canary of 3 of 4 instances, or a timeout
    # no longer than the waits
    _config(guarded.sagemaker, "renamed", "v2", variant="other")

    # WHEN UpdateEndpoint is asked for it
    with pytest.raises(ClientError) as raised:
        guarded.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config, DeploymentConfig=deployment)

    # THEN SageMaker's ValidationException, and the endpoint is still InService on its config
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]
    assert guarded.status() == ("InService", "blue")


@pytest.mark.parametrize("final_bake", ["wait-interval", "none"])
def test_linear_steps_and_the_final_bake_follow_the_switch(final_bake: Any) -> None:
    # GIVEN a linear deployment of 25 % steps, 100 s apart, after 60 s of provisioning
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    routing = {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 100,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }

    # WHEN scheduled
    phases, timeout = schedule(
        {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}},
        start=start,
        provision_seconds=60,
        instances=4,
        instance_type="ml.m5.xlarge",
        final_bake=final_bake,
    )

    # THEN three baked steps (25, 50, 75 %), then all traffic with or without a final bake
    at = [start + timedelta(seconds=seconds) for seconds in (60, 160, 260, 360)]
    expected = [Phase(at[0], 0.0, False), Phase(at[1], 25.0, True), Phase(at[2], 50.0, True), Phase(at[3], 75.0, True)]
    final = (
        Phase(at[3] + timedelta(seconds=100), 100.0, True)
        if final_bake == "wait-interval"
        else Phase(at[3], 100.0, False)
    )
    assert list(phases) == [*expected, final]
    assert timeout == 28_800


def test_inf1_falls_back_to_all_at_once_without_a_final_bake() -> None:
    # GIVEN a canary asked for on Inf1 instances (an exclusion AWS documents)
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)

    # WHEN scheduled
    phases, _ = schedule(
        {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": CANARY}},
        start=start,
        provision_seconds=60,
        instances=4,
        instance_type="ml.inf1.xlarge",
    )

    # THEN all traffic moves at once once the fleet is up, and nothing is baked
    assert list(phases) == [
        Phase(start + timedelta(seconds=60), 0.0, False),
        Phase(start + timedelta(seconds=60), 100.0, False),
    ]


@pytest.mark.parametrize("missing_alarms", ["refused", "ignored"])
def test_a_missing_rollback_alarm_is_refused_or_ignored_as_the_switch_says(
    guarded: Guarded, missing_alarms: Any
) -> None:
    # GIVEN a deployment whose only rollback alarm does not exist
    guarded.gaps.missing_alarms = missing_alarms
    deployment = {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "no-such-alarm"}]},
    }

    # WHEN UpdateEndpoint is asked for it
    if missing_alarms == "refused":
        # THEN either SageMaker refuses it at once ...
        with pytest.raises(ClientError) as raised:
            guarded.sagemaker.update_endpoint(
                EndpointName=ENDPOINT, EndpointConfigName="green", DeploymentConfig=deployment
            )
        assert "do not exist" in raised.value.response["Error"]["Message"]
        assert guarded.status() == ("InService", "blue")
        return
    # ... or it deploys, and the alarm that is not there never rolls it back
    guarded.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="green", DeploymentConfig=deployment)
    guarded.clock.advance(90)
    assert guarded.status() == ("Updating", "green")
    guarded.clock.advance(30)
    assert guarded.status() == ("InService", "green")
