"""A calibrated shadow test's steps (shadow_tests/lifecycle.py) on in-memory fakes: the A/A config first,
the noise floor recorded while it bakes, the switch to the candidate, and a clean endpoint on every way out."""

from __future__ import annotations

from typing import Any

import pytest
from shadowscale.shadow_tests.models import DiffSummary, EndpointSnapshot, Evaluation, ShadowTestPlan, VariantStats
from shadowscale.shadow_tests.reports import dry_run_plan
from shadowscale.shared.diff_contract import diff_config_key

from tests.shadow_fakes import CANDIDATE, DATA_BUCKET, ENDPOINT, ORIGINAL_CONFIG, PRODUCTION, ShadowWorld

CALIBRATED: dict[str, Any] = {
    "calibration": {"bakeMinutes": 30, "minPairs": 50},
    "gates": {"minInvocations": 10, "agreement": {"minWithinToleranceRate": 0.99}},
}


@pytest.fixture
def world() -> ShadowWorld:
    return ShadowWorld()


def healthy(invocations: float = 5000) -> VariantStats:
    return VariantStats.model_validate(
        {"invocations": invocations, "latencyP50Ms": 10, "latencyP90Ms": 20, "latencyP99Ms": 30}
    )


def noise_on(world: ShadowWorld) -> tuple[ShadowTestPlan, EndpointSnapshot]:
    """Locked, snapshotted, both configs created and the endpoint InService on the A/A config."""
    plan = world.plan(**CALIBRATED)
    world.steps.lock(plan)
    snapshot = world.steps.snapshot(plan)
    world.steps.prepare(plan, snapshot)
    ready = world.steps.start_shadow(plan)
    world.sagemaker.settle()
    world.steps.check_ready(plan, ready)
    return plan, snapshot


def baked_noise(world: ShadowWorld) -> tuple[ShadowTestPlan, EndpointSnapshot, Evaluation]:
    plan, snapshot = noise_on(world)
    first = world.steps.evaluate(plan, snapshot, None)
    world.metrics.stats = {PRODUCTION: healthy(), plan.noise_variant_name: healthy(), CANDIDATE: healthy()}
    world.objects.summaries[(DATA_BUCKET, plan.noise_test_id)] = DiffSummary.of(
        {"paired": 4000, "withinToleranceRate": 0.95, "final": False}
    )
    world.clock.advance(minutes=31)
    return plan, snapshot, world.steps.evaluate(plan, snapshot, first)


def test_a_calibrated_test_starts_on_its_a_a_config_with_the_production_model_as_the_shadow(
    world: ShadowWorld,
) -> None:
    # GIVEN a calibrated test WHEN prepared and started THEN the endpoint runs the -noise config
    plan, _ = noise_on(world)
    assert plan.noise_config_name is not None
    assert world.sagemaker.updates == [(ENDPOINT, plan.noise_config_name)]
    config = world.sagemaker.configs[plan.noise_config_name]
    [shadow] = config.shadow_variants
    assert shadow["VariantName"] == "candidate-noise" == plan.noise_variant_name
    assert shadow["ModelName"] == config.production_variants[0]["ModelName"]  # a copy of production
    assert config.capture_destination == plan.noise_capture_s3_uri
    # AND the diff pipeline has a config of its own for the phase, and one for the candidate
    noise_diffs = world.objects.objects[(DATA_BUCKET, diff_config_key(plan.noise_test_id))]
    assert noise_diffs.shadow_variant == plan.noise_variant_name
    assert (DATA_BUCKET, diff_config_key(plan.test_id)) in world.objects.objects
    assert plan.shadow_config_name in world.sagemaker.configs  # the candidate's, for after the switch


def test_while_the_copy_bakes_each_evaluation_records_the_noise_floor_and_the_bake_ends_in_a_switch(
    world: ShadowWorld,
) -> None:
    # GIVEN the A/A phase with 4,000 pairs, 5 % of them disagreeing WHEN its bake is over
    plan, _, progress = baked_noise(world)
    # THEN the evaluation is the noise phase's, with the floor the candidate will be judged against
    assert progress.phase == "noise"
    assert progress.next == "ramp"  # Ramp switches the shadow to the candidate
    assert progress.noise is not None
    assert (progress.noise.paired, progress.noise.tolerance_mismatches) == (4000, 200)
    assert progress.noise.variant == plan.noise_variant_name
    assert progress.noise.latency_at("p90") is not None


def test_after_the_bake_the_shadow_becomes_the_candidate_and_its_first_step_starts_then(world: ShadowWorld) -> None:
    # GIVEN the A/A bake is over WHEN the machine's Ramp runs THEN the endpoint moves to the candidate's config
    plan, snapshot, progress = baked_noise(world)
    ready = world.steps.set_sampling(plan, snapshot, progress)
    assert world.sagemaker.updates[-1] == (ENDPOINT, plan.shadow_config_name)
    assert (ready.config, ready.in_service) == (plan.shadow_config_name, False)
    world.sagemaker.settle()
    world.steps.check_ready(plan, ready)
    # AND the next evaluation starts the candidate's phase with the floor carried, nothing measured yet
    started = world.steps.evaluate(plan, snapshot, progress)
    assert started.phase == "candidate"
    assert started.noise == progress.noise
    assert started.candidate_started_at == world.clock.now()
    assert (started.step_index, started.step_started_at, started.next) == (0, world.clock.now(), "bake")
    # AND the candidate's gates are the calibrated ones
    world.objects.summaries[(DATA_BUCKET, plan.test_id)] = DiffSummary.of(
        {"paired": 4000, "withinToleranceRate": 0.951, "final": False}
    )
    world.clock.advance(minutes=61)  # durationMinutes counts from the candidate's start
    decided = world.steps.evaluate(plan, snapshot, started)
    gates = {gate.name: gate for gate in decided.gates}
    assert decided.next == "decide"
    assert gates["within-tolerance-excess"].status == "pass"
    assert world.steps.decide(plan, decided).action == "promote"


def test_a_failure_during_the_a_a_phase_restores_the_endpoint_and_deletes_the_noise_config(
    world: ShadowWorld,
) -> None:
    # GIVEN the endpoint on the A/A config WHEN a failure takes the restore path
    plan, snapshot = noise_on(world)
    ready = world.steps.restore(plan, snapshot)
    assert world.sagemaker.updates[-1] == (ENDPOINT, ORIGINAL_CONFIG)
    world.sagemaker.settle()
    assert world.steps.restore(plan, snapshot, ready).in_service
    finalized = world.steps.finalize(plan, snapshot)
    # THEN the endpoint is back on its config, the test's configs are gone and both diff ids are closed
    assert plan.noise_config_name in finalized.deleted
    assert plan.noise_config_name not in world.sagemaker.configs
    assert plan.shadow_config_name not in world.sagemaker.configs
    assert world.sagemaker.endpoint().shadow_variants == ()
    assert [message.test_id for message, _ in world.diffs.sent] == [plan.test_id, plan.noise_test_id]
    assert finalized.lock_released


def test_a_test_without_calibration_never_creates_a_noise_config(world: ShadowWorld) -> None:
    # GIVEN a plain test WHEN prepared and started THEN the endpoint goes straight to the candidate's config
    plan = world.plan()
    world.steps.lock(plan)
    snapshot = world.steps.snapshot(plan)
    world.steps.prepare(plan, snapshot)
    world.steps.start_shadow(plan)
    assert world.sagemaker.updates == [(ENDPOINT, plan.shadow_config_name)]
    assert not any(name.endswith("-noise") for name in world.sagemaker.configs)


def test_a_calibrated_dry_run_plans_the_a_a_config_before_the_candidates(world: ShadowWorld) -> None:
    # GIVEN a calibrated test WHEN planned as a dry run THEN the plan shows the -noise config's request
    plan = world.plan(**CALIBRATED)
    planned = dry_run_plan(plan, world.steps.snapshot(plan, save=False))
    assert planned["noiseConfig"]["EndpointConfigName"] == plan.noise_config_name
    assert planned["noiseConfig"]["ShadowProductionVariants"][0]["VariantName"] == plan.noise_variant_name
    assert "noiseConfig" not in dry_run_plan(world.plan("run-2"), world.steps.snapshot(world.plan("run-2"), save=False))
