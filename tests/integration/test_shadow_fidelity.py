"""The shadow-test lifecycle stays correct where SageMaker does not behave as a naive client assumes:
what RetainAllVariantProperties keeps, configs that are not visible at once, shadow weights that
UpdateEndpointWeightsAndCapacities may refuse, and a live endpoint that is not what its config asked for.
Each switch of the local cloud's SageMaker gap-fill is run both ways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import ACCOUNT, REGION

from tests.integration.test_shadow_lifecycle import (
    MONDAY_0800_UTC,
    REPO,
    USER_CAPTURE,
    ShadowTestRun,
    deploy_endpoint,
    publish_traffic,
)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(root=REPO, clock=AcceleratedClock(MONDAY_0800_UTC), stack_name="fidelity-test") as running:
        yield running


@pytest.fixture
def gaps(cloud: LocalCloud) -> Iterator[Any]:
    """The gap-fill, with its switches put back after each test."""
    assert cloud.gaps is not None
    before = (cloud.gaps.retained_capture, cloud.gaps.config_visibility_seconds, cloud.gaps.shadow_weight_updates)
    yield cloud.gaps
    cloud.gaps.retained_capture, cloud.gaps.config_visibility_seconds, cloud.gaps.shadow_weight_updates = before


def healthy(cloud: LocalCloud, name: str) -> ShadowTestRun:
    run = deploy_endpoint(cloud, name)
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=21, invocations=150)
    return run


def live_capture(cloud: LocalCloud, endpoint: str) -> dict[str, Any]:
    described: dict[str, Any] = cloud.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    return dict(described.get("DataCaptureConfig") or {})


@pytest.mark.parametrize("retained_capture", ["kept", "follows-config"])
def test_capture_moves_to_the_test_prefix_whatever_retain_keeps(
    cloud: LocalCloud, gaps: Any, retained_capture: str
) -> None:
    # GIVEN SageMaker retaining (or not) the live data capture on RetainAllVariantProperties=true
    gaps.retained_capture = retained_capture
    run = healthy(cloud, f"capture-{retained_capture}")
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        # WHEN the shadow test is baking
        run.start()
        cloud.step_to(run.execution_arn, "Bake")
        baking = live_capture(cloud, run.endpoint)
    finally:
        cloud.stepfunctions.release_waits()
    described = run.finish()

    # THEN capture went to the test's own prefix while it ran, and is the user's own again after promotion
    bucket = cloud.outputs["DataBucketName"]
    assert baking["DestinationS3Uri"] == f"s3://{bucket}/capture/{run.execution_arn.rsplit(':', 1)[-1]}"
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    assert live_capture(cloud, run.endpoint)["DestinationS3Uri"] == USER_CAPTURE["DestinationS3Uri"]


def test_configs_that_are_not_visible_yet_are_waited_for(cloud: LocalCloud, gaps: Any) -> None:
    # GIVEN SageMaker that does not see a new endpoint config for two minutes
    gaps.config_visibility_seconds = 120
    run = healthy(cloud, "slow-configs")

    # WHEN a shadow test creates its shadow and promoted configs and moves the endpoint to each at once
    run.start()
    described = run.finish()

    # THEN it waited for each to be visible and promoted; nothing was mistaken for a missing endpoint
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    assert run.report()["outcome"] == "promoted"
    assert (
        cloud.client("sagemaker")
        .describe_endpoint(EndpointName=run.endpoint)["EndpointConfigName"]
        .endswith("-promoted")
    )


@pytest.mark.parametrize("shadow_weight_updates", ["accepted", "refused"])
def test_a_ramp_reaches_each_step_whether_or_not_shadow_weights_can_be_set(
    cloud: LocalCloud, gaps: Any, shadow_weight_updates: str
) -> None:
    # GIVEN SageMaker that sets a shadow variant's weight in place, or refuses to
    gaps.shadow_weight_updates = shadow_weight_updates
    run = healthy(cloud, f"ramp-{shadow_weight_updates}")
    calls_before = gaps.calls.get("UpdateEndpointWeightsAndCapacities", 0)

    # WHEN a two-step ramp runs to its end
    run.start(sampling={"ramp": [{"percent": 10, "bakeMinutes": 10}, {"percent": 50, "bakeMinutes": 20}]})
    described = run.finish()

    # THEN it promoted, having reached 50 %: in place, or through a config of its own that is gone now
    assert described["status"] == "SUCCEEDED", run.report().get("failure")
    ramp_configs = [name for name in gaps.created_configs if name.startswith(run.endpoint) and "-ramp" in name]
    assert gaps.calls.get("UpdateEndpointWeightsAndCapacities", 0) > calls_before
    if shadow_weight_updates == "refused":
        [ramp] = ramp_configs
        [shadow] = gaps.created_configs[ramp]["ShadowProductionVariants"]
        [production] = gaps.created_configs[ramp]["ProductionVariants"]
        assert shadow["InitialVariantWeight"] == pytest.approx(0.5 * production["InitialVariantWeight"])
        assert production["InitialInstanceCount"] == 2  # the live count, not a default
        with pytest.raises(cloud.client("sagemaker").exceptions.ClientError):
            cloud.client("sagemaker").describe_endpoint_config(EndpointConfigName=ramp)
    else:
        assert ramp_configs == []


def test_a_live_endpoint_unlike_its_config_ends_the_test_on_the_restore_path(cloud: LocalCloud) -> None:
    # GIVEN a shadow test whose endpoint, once updated, still captures to the user's own destination
    # (what SageMaker would do if it kept the old capture)
    from moto.sagemaker.models import sagemaker_backends

    run = healthy(cloud, "drifted")
    assert cloud.stepfunctions is not None
    cloud.stepfunctions.hold_waits()
    try:
        run.start()
        cloud.step_to(run.execution_arn, "ShadowWait")
        sagemaker_backends[ACCOUNT][REGION].endpoints[run.endpoint].data_capture_config = dict(USER_CAPTURE)
    finally:
        cloud.stepfunctions.release_waits()

    # WHEN the update reaches InService
    described = run.finish()

    # THEN the test failed with what differed, and the endpoint is back on its snapshot
    assert described["status"] == "FAILED"
    report = run.report()
    assert report["failure"]["error"] == "EndpointStateMismatch"
    assert "data capture destination" in report["failure"]["cause"]
    assert USER_CAPTURE["DestinationS3Uri"] in report["failure"]["cause"]
    run.assert_clean(config="drifted-config-1", variant="primary", model="drifted-v1", capture=USER_CAPTURE)


def test_restore_keeps_the_production_count_the_endpoint_had_during_the_test(cloud: LocalCloud) -> None:
    # GIVEN an endpoint scaled to 3 instances (its config says 2) and a slow candidate
    run = deploy_endpoint(cloud, "rescaled")
    publish_traffic(cloud, run.endpoint, "primary", latency_ms=20)
    publish_traffic(cloud, run.endpoint, "shadow", latency_ms=60, invocations=150)
    sagemaker = cloud.client("sagemaker")
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=run.endpoint, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 3}]
    )
    cloud.advance(120)

    # WHEN the shadow test removes the candidate and restores the original config (which says 2)
    run.start()
    described = run.finish()

    # THEN the endpoint is on its original config with the 3 instances it had, not the config's 2
    assert run.report()["outcome"] == "removed", described
    live = sagemaker.describe_endpoint(EndpointName=run.endpoint)
    assert live["EndpointConfigName"] == "rescaled-config-1"
    assert [(v["VariantName"], v["CurrentInstanceCount"]) for v in live["ProductionVariants"]] == [("primary", 3)]
