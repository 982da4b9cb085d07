"""The shadow test's steps (shadow_tests/lifecycle.py) on in-memory fakes: each task of the state machine,
what it changes, what it leaves alone, and the typed error the machine's Retry/Catch clauses name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from shadowscale.shadow_tests.endpoint_models import EndpointConfig, LiveCapture
from shadowscale.shadow_tests.lifecycle import RESTORE_PATIENCE
from shadowscale.shadow_tests.models import DiffSummary, EndpointSnapshot, Evaluation, ShadowTestPlan, VariantStats
from shadowscale.shared.errors import (
    EndpointBusy,
    EndpointConfigNotVisible,
    EndpointHeld,
    EndpointLocked,
    EndpointNotInService,
    EndpointStateMismatch,
    EndpointUpdateFailed,
    ModelNotFound,
    UnsupportedEndpoint,
)

from tests.shadow_fakes import (
    CANDIDATE,
    CANDIDATE_MODEL,
    DATA_BUCKET,
    ENDPOINT,
    ORIGINAL_CONFIG,
    PRODUCTION,
    ShadowWorld,
    production_config,
    target,
)


@pytest.fixture
def world() -> ShadowWorld:
    return ShadowWorld()


def locked(world: ShadowWorld, **overrides: Any) -> ShadowTestPlan:
    plan = world.plan(**overrides)
    world.steps.lock(plan)
    return plan


def shadow_on(world: ShadowWorld, **overrides: Any) -> tuple[ShadowTestPlan, EndpointSnapshot]:
    """Locked, snapshotted, shadow config created and the endpoint InService on it."""
    plan = locked(world, **overrides)
    snapshot = world.steps.snapshot(plan)
    world.steps.prepare(plan, snapshot)
    ready = world.steps.start_shadow(plan)
    world.sagemaker.settle()
    world.steps.check_ready(plan, ready)
    return plan, snapshot


def healthy(invocations: float = 5000) -> VariantStats:
    # 5,000 error-free requests a variant: enough for the 95 % interval of a 5xx-rate delta to stay under 0.5 %.
    return VariantStats.model_validate(
        {"invocations": invocations, "latencyP50Ms": 10, "latencyP90Ms": 20, "latencyP99Ms": 30}
    )


# --- validate, lock, snapshot ------------------------------------------------------------------------


def test_given_an_input_when_validated_then_the_plan_fixes_every_name_and_starts_on_the_injected_clock(
    world: ShadowWorld,
) -> None:
    plan = world.plan("run-1")
    assert plan.test_id == "run-1"
    assert plan.started_at == world.clock.now()
    assert plan.shadow_config_name.endswith("-shadow")
    assert plan.promoted_config_name.endswith("-promoted")
    assert plan.capture_s3_uri == f"s3://{DATA_BUCKET}/capture/run-1"
    assert plan.derived_model_name is None  # no container override: the candidate model is used as it is


def test_given_a_free_endpoint_when_locked_then_the_test_owns_it_and_holds_it_exclusively(world: ShadowWorld) -> None:
    plan = locked(world)
    assert world.records.load(ENDPOINT).owner == plan.owner
    assert world.lease_holder() == plan.owner


def test_given_another_test_owns_the_endpoint_when_locked_then_endpoint_locked_names_it(world: ShadowWorld) -> None:
    first = locked(world)
    second = world.plan("run-2")
    with pytest.raises(EndpointLocked) as raised:
        world.steps.lock(second)
    assert raised.value.owner == first.owner


def test_given_the_autopilot_holds_the_lease_when_locked_then_held_and_the_ownership_is_given_back(
    world: ShadowWorld,
) -> None:
    world.leases.acquire(ENDPOINT, "autopilot:abc", 60, world.clock.now())
    plan = world.plan()
    with pytest.raises(EndpointHeld):
        world.steps.lock(plan)
    assert world.records.load(ENDPOINT).owner is None  # all or nothing: the retry claims again


def test_given_production_scaled_when_snapshotted_then_the_live_count_and_the_targets_are_recorded() -> None:
    world = ShadowWorld(capture=True)
    world.sagemaker.scale(ENDPOINT, PRODUCTION, 3)
    world.scaling.register(ENDPOINT, target(PRODUCTION, "latency"))
    plan = locked(world)
    snapshot = world.steps.snapshot(plan)
    assert snapshot.config_name == ORIGINAL_CONFIG
    assert snapshot.current_instances == {PRODUCTION: 3}  # live, not the config's 2
    assert snapshot.current_weights == {PRODUCTION: 1.0}
    assert snapshot.data_capture is not None
    assert snapshot.data_capture["DestinationS3Uri"] == "s3://team/capture"
    assert snapshot.scaling_targets == (target(PRODUCTION, "latency"),)
    stored = world.records.load(ENDPOINT).record
    assert stored is not None
    assert stored.snapshot == snapshot
    assert stored.plan == plan


def test_given_a_dry_run_when_snapshotted_without_saving_then_nothing_is_recorded(world: ShadowWorld) -> None:
    plan = world.plan()
    world.steps.snapshot(plan, save=False)
    assert world.records.load(ENDPOINT).record is None


def test_given_an_endpoint_that_is_updating_when_snapshotted_then_busy(world: ShadowWorld) -> None:
    world.sagemaker.update_endpoint(ENDPOINT, ORIGINAL_CONFIG)
    with pytest.raises(EndpointBusy, match="Updating, not InService"):
        world.steps.snapshot(locked(world))


def test_given_two_production_variants_when_snapshotted_then_unsupported(world: ShadowWorld) -> None:
    config = production_config()
    second = {**config.production_variants[0], "VariantName": "other"}
    world.sagemaker.configs[ORIGINAL_CONFIG] = config.model_copy(
        update={"production_variants": (*config.production_variants, second)}
    )
    with pytest.raises(UnsupportedEndpoint, match="2 production variants"):
        world.steps.snapshot(locked(world))


def test_given_a_candidate_named_like_production_when_snapshotted_then_unsupported(world: ShadowWorld) -> None:
    plan = locked(
        world,
        candidate={"modelName": CANDIDATE_MODEL, "instanceType": "ml.m5.large", "variantName": PRODUCTION},
    )
    with pytest.raises(UnsupportedEndpoint, match="production variant's name"):
        world.steps.snapshot(plan)


def test_given_a_missing_candidate_model_when_snapshotted_then_model_not_found(world: ShadowWorld) -> None:
    del world.sagemaker.models[CANDIDATE_MODEL]
    with pytest.raises(ModelNotFound):
        world.steps.snapshot(locked(world))


def test_given_an_endpoint_running_a_shadow_when_snapshotted_then_unsupported(world: ShadowWorld) -> None:
    plan, _ = shadow_on(world)
    with pytest.raises(UnsupportedEndpoint, match="already runs a shadow"):
        world.steps.snapshot(plan)


# --- shadow on ---------------------------------------------------------------------------------------


def test_given_a_snapshot_when_prepared_then_the_shadow_config_keeps_production_live_and_the_diffs_are_configured(
    world: ShadowWorld,
) -> None:
    world.sagemaker.scale(ENDPOINT, PRODUCTION, 5)
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    config = world.sagemaker.configs[plan.shadow_config_name]
    assert config.production_variants[0]["InitialInstanceCount"] == 5
    assert config.shadow_variant_names == (CANDIDATE,)
    assert config.shadow_variants[0]["InitialVariantWeight"] == pytest.approx(0.2)  # 20 % of weight 1.0
    assert config.capture_destination == plan.capture_s3_uri
    assert world.objects.exists(DATA_BUCKET, f"diffs/{plan.test_id}/config.json")
    assert world.sagemaker.created_models == []


def test_given_capture_elsewhere_when_prepared_then_no_diff_config_is_written(world: ShadowWorld) -> None:
    plan = locked(world, dataCapture={"destinationS3Uri": "s3://team-bucket/capture"})
    world.steps.prepare(plan, world.steps.snapshot(plan))
    assert not world.objects.exists(DATA_BUCKET, f"diffs/{plan.test_id}/config.json")


def test_given_container_overrides_when_prepared_then_a_derived_model_is_created_from_the_candidate(
    world: ShadowWorld,
) -> None:
    candidate = {
        "modelName": CANDIDATE_MODEL,
        "instanceType": "ml.m5.large",
        "variantName": CANDIDATE,
        "containerImage": "registry/fraud:3",
        "environment": {"THRESHOLD": "0.7"},
    }
    plan = locked(world, candidate=candidate)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    [derived] = world.sagemaker.created_models
    assert derived.name == plan.derived_model_name
    assert derived.container.image == "registry/fraud:3"
    assert derived.container.environment == {"MODE": "strict", "THRESHOLD": "0.7"}  # merged over the base's
    assert derived.execution_role_arn == world.sagemaker.models[CANDIDATE_MODEL].execution_role_arn
    assert derived.tags == {"shadowscale:test": plan.test_id}
    config = world.sagemaker.configs[plan.shadow_config_name]
    assert config.shadow_variants[0]["ModelName"] == plan.derived_model_name


def test_given_a_prepared_test_when_the_shadow_starts_then_the_endpoint_updates_once_even_if_retried(
    world: ShadowWorld,
) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    ready = world.steps.start_shadow(plan)
    world.steps.start_shadow(plan)  # the machine retried the task
    assert world.sagemaker.updates == [(ENDPOINT, plan.shadow_config_name)]
    assert ready.config == plan.shadow_config_name
    assert ready.deadline == world.clock.now() + timedelta(minutes=30)
    assert not ready.in_service


def test_given_a_config_not_yet_visible_when_the_shadow_starts_then_config_not_visible(world: ShadowWorld) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    world.sagemaker.invisible.add(plan.shadow_config_name)
    with pytest.raises(EndpointConfigNotVisible):
        world.steps.start_shadow(plan)
    assert world.sagemaker.updates == []


def test_given_an_update_in_flight_when_checked_then_still_waiting_and_still_held(world: ShadowWorld) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    ready = world.steps.check_ready(plan, world.steps.start_shadow(plan))
    assert (ready.in_service, ready.status) == (False, "Updating")
    assert world.lease_holder() == plan.owner


def test_given_the_shadow_in_service_when_checked_then_ready_and_the_hold_is_let_go(world: ShadowWorld) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    ready = world.steps.start_shadow(plan)
    world.sagemaker.settle()
    checked = world.steps.check_ready(plan, ready)
    assert checked.in_service
    assert checked.status == "InService"
    assert world.lease_holder() is None  # the autopilot may resize production during the bake
    assert world.records.load(ENDPOINT).owner == plan.owner  # the test still owns it


def test_given_a_rolled_back_update_when_checked_then_update_failed(world: ShadowWorld) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    ready = world.steps.start_shadow(plan)
    world.sagemaker.roll_back(reason="no capacity for ml.m5.large")
    with pytest.raises(EndpointUpdateFailed, match=r"back on 'fraud-detector-config-1'.*no capacity"):
        world.steps.check_ready(plan, ready)


def test_given_a_failed_endpoint_when_checked_then_update_failed(world: ShadowWorld) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    ready = world.steps.start_shadow(plan)
    world.sagemaker.fail(reason="image pull")
    with pytest.raises(EndpointUpdateFailed, match="is Failed: image pull"):
        world.steps.check_ready(plan, ready)


def test_given_the_deadline_passed_when_checked_then_not_in_service(world: ShadowWorld) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    ready = world.steps.start_shadow(plan)
    world.clock.advance(minutes=31)
    with pytest.raises(EndpointNotInService, match="after 30 min"):
        world.steps.check_ready(plan, ready)


def test_given_capture_not_where_the_config_says_when_checked_then_state_mismatch(world: ShadowWorld) -> None:
    plan = locked(world)
    world.steps.prepare(plan, world.steps.snapshot(plan))
    ready = world.steps.start_shadow(plan)
    world.sagemaker.settle()
    world.sagemaker._set(ENDPOINT, data_capture=LiveCapture(enabled=True, destination="s3://team/old"))
    with pytest.raises(EndpointStateMismatch, match="data capture destination"):
        world.steps.check_ready(plan, ready)


# --- bake, ramp, evaluate ------------------------------------------------------------------------------


def test_given_the_shadow_just_in_service_when_evaluated_then_the_first_step_starts_with_nothing_measured(
    world: ShadowWorld,
) -> None:
    plan, snapshot = shadow_on(world)
    evaluation = world.steps.evaluate(plan, snapshot, None)
    assert (evaluation.step_index, evaluation.evaluations, evaluation.next) == (0, 1, "bake")
    assert evaluation.step_started_at == world.clock.now()
    assert evaluation.verdict == "insufficient-data"
    assert world.metrics.windows == []  # nothing to read yet


def test_given_healthy_metrics_and_agreement_when_evaluated_then_the_gates_pass_on_the_window_since_the_step(
    world: ShadowWorld,
) -> None:
    plan, snapshot = shadow_on(world, gates={"minInvocations": 10, "minPairedResponses": 50})
    first = world.steps.evaluate(plan, snapshot, None)
    world.metrics.stats = {PRODUCTION: healthy(), CANDIDATE: healthy()}
    world.objects.summaries[(DATA_BUCKET, plan.test_id)] = DiffSummary.of({"paired": 80, "final": False})
    world.clock.advance(minutes=10)
    evaluation = world.steps.evaluate(plan, snapshot, first)
    assert evaluation.verdict == "pass"
    assert evaluation.agreement is not None
    assert evaluation.agreement.paired == 80
    assert evaluation.agreement.summary_key == f"diffs/{plan.test_id}/summary.json"
    assert world.metrics.windows[0] == (first.step_started_at, world.clock.now())
    assert world.metrics.windows[1] == (world.clock.now() - timedelta(minutes=5), world.clock.now())
    assert evaluation.evaluations == 2


def test_given_a_shadow_breaking_a_hard_limit_when_evaluated_then_the_test_aborts(world: ShadowWorld) -> None:
    plan, snapshot = shadow_on(world)
    first = world.steps.evaluate(plan, snapshot, None)
    failing = VariantStats.model_validate({"invocations": 100, "errors5xx": 60})
    world.metrics.stats = {PRODUCTION: healthy(), CANDIDATE: failing}
    world.clock.advance(minutes=5)
    evaluation = world.steps.evaluate(plan, snapshot, first)
    assert evaluation.next == "abort"
    assert evaluation.hard_limit_breached is not None
    assert "hard limit" in evaluation.hard_limit_breached
    assert world.steps.decide(plan, evaluation).action == "remove"


def test_given_the_test_ran_its_duration_with_passing_gates_when_decided_then_promote(world: ShadowWorld) -> None:
    plan, snapshot = shadow_on(world)
    first = world.steps.evaluate(plan, snapshot, None)
    world.metrics.stats = {PRODUCTION: healthy(), CANDIDATE: healthy()}
    world.clock.advance(minutes=61)
    evaluation = world.steps.evaluate(plan, snapshot, first)
    assert evaluation.next == "decide"
    assert world.steps.decide(plan, evaluation).action == "promote"


RAMP = {"ramp": [{"percent": 10, "bakeMinutes": 10}, {"percent": 50, "bakeMinutes": 20}]}


def ramped(world: ShadowWorld) -> tuple[ShadowTestPlan, EndpointSnapshot, Evaluation]:
    plan, snapshot = shadow_on(world, sampling=RAMP)
    first = world.steps.evaluate(plan, snapshot, None)
    world.clock.advance(minutes=11)
    progress = world.steps.evaluate(plan, snapshot, first)
    assert (progress.next, progress.step_index) == ("ramp", 1)
    return plan, snapshot, progress


def test_given_a_ramp_step_when_sampling_is_set_in_place_then_the_shadow_weight_changes_and_nothing_waits(
    world: ShadowWorld,
) -> None:
    plan, snapshot, progress = ramped(world)
    ready = world.steps.set_sampling(plan, snapshot, progress)
    [(endpoint, variant, weight)] = world.sagemaker.weights
    assert (endpoint, variant) == (ENDPOINT, CANDIDATE)
    assert weight == pytest.approx(0.5)
    assert ready.in_service
    assert ready.config == plan.shadow_config_name
    assert world.lease_holder() is None


def test_given_a_shadow_weight_refused_when_sampling_is_set_then_a_ramp_config_at_the_live_count_is_rolled_out(
    world: ShadowWorld,
) -> None:
    plan, snapshot, progress = ramped(world)
    world.sagemaker.refuse_weight_in_place = True
    world.sagemaker.scale(ENDPOINT, PRODUCTION, 4)  # the autopilot scaled out during the bake
    ready = world.steps.set_sampling(plan, snapshot, progress)
    ramp = world.sagemaker.configs[plan.ramp_config_name(1)]
    assert ramp.production_variants[0]["InitialInstanceCount"] == 4
    assert ramp.shadow_variants[0]["InitialVariantWeight"] == pytest.approx(0.5)
    assert world.sagemaker.updates[-1] == (ENDPOINT, plan.ramp_config_name(1))
    assert ready.config == plan.ramp_config_name(1)
    assert not ready.in_service
    assert world.lease_holder() == plan.owner  # held until the ramp config is InService
    again = world.steps.set_sampling(plan, snapshot, progress)  # retried: the endpoint names the config
    assert again.config == ready.config
    assert len(world.sagemaker.updates) == 2


# --- promote, restore, finalize -------------------------------------------------------------------------


def promoted(world: ShadowWorld) -> tuple[ShadowTestPlan, EndpointSnapshot]:
    world.scaling.register(ENDPOINT, target(PRODUCTION, "latency", max_capacity=6))
    plan, snapshot = shadow_on(world)
    world.steps.promote(plan, snapshot)
    world.sagemaker.settle()
    return plan, snapshot


def test_given_a_passing_test_when_promoted_then_scaling_is_removed_recorded_and_the_candidate_takes_the_live_count(
    world: ShadowWorld,
) -> None:
    world.scaling.register(ENDPOINT, target(PRODUCTION, "latency"))
    plan, snapshot = shadow_on(world)
    # The autopilot moved the bounds and the count during the test.
    world.scaling.register(ENDPOINT, target(PRODUCTION, "latency", max_capacity=8))
    world.sagemaker.scale(ENDPOINT, PRODUCTION, 3)
    ready = world.steps.promote(plan, snapshot)
    assert world.scaling.targets == {}
    stored = world.records.load(ENDPOINT).record
    assert stored is not None
    assert stored.snapshot.scaling_targets == (target(PRODUCTION, "latency", max_capacity=8),)
    config = world.sagemaker.configs[plan.promoted_config_name]
    assert config.production_variant_names == (CANDIDATE,)
    assert config.production_variants[0]["InitialInstanceCount"] == 3
    assert ready.config == plan.promoted_config_name
    assert world.lease_holder() == plan.owner  # a promotion keeps its hold until finalize


def test_given_the_shadow_on_when_restored_then_the_endpoint_goes_back_to_its_config_and_is_checked_there(
    world: ShadowWorld,
) -> None:
    plan, snapshot = shadow_on(world)
    ready = world.steps.restore(plan, snapshot)
    assert world.sagemaker.updates[-1] == (ENDPOINT, ORIGINAL_CONFIG)
    assert ready.config == ORIGINAL_CONFIG
    assert ready.deadline == world.clock.now() + RESTORE_PATIENCE
    waiting = world.steps.restore(plan, snapshot, ready)
    assert (waiting.in_service, waiting.status) == (False, "Updating")
    world.sagemaker.settle()
    back = world.steps.restore(plan, snapshot, waiting)
    assert back.in_service
    assert world.sagemaker.endpoint().shadow_variants == ()


def test_given_production_resized_during_the_test_when_restored_then_its_live_count_is_put_back(
    world: ShadowWorld,
) -> None:
    plan, snapshot = shadow_on(world)
    world.sagemaker.scale(ENDPOINT, PRODUCTION, 5)  # the autopilot, during the bake
    ready = world.steps.restore(plan, snapshot)
    assert ready.production_instances == 5
    world.sagemaker.settle()  # back on the original config: its count, 2
    counted = world.steps.restore(plan, snapshot, ready)
    assert world.sagemaker.counts == [(ENDPOINT, PRODUCTION, 5)]
    assert counted.status == "Updating"
    world.sagemaker.settle()
    assert world.steps.restore(plan, snapshot, counted).in_service


def test_given_the_original_config_was_deleted_when_restored_then_it_is_created_again_from_the_snapshot(
    world: ShadowWorld,
) -> None:
    plan, snapshot = shadow_on(world)
    del world.sagemaker.configs[ORIGINAL_CONFIG]
    with pytest.raises(EndpointConfigNotVisible, match="created again"):
        world.steps.restore(plan, snapshot)
    recreated = world.sagemaker.configs[ORIGINAL_CONFIG]
    assert recreated.production_variants == snapshot.production_variants
    assert "shadowscale:restored-from-snapshot" in recreated.tags
    world.steps.restore(plan, snapshot)  # the machine retries: now it updates
    assert world.sagemaker.updates[-1] == (ENDPOINT, ORIGINAL_CONFIG)


def test_given_a_promotion_in_flight_when_restored_then_it_is_seen_through_not_undone(world: ShadowWorld) -> None:
    plan, snapshot = shadow_on(world)
    world.steps.promote(plan, snapshot)  # Updating towards the promoted config
    ready = world.steps.restore(plan, snapshot)
    assert ready.config == plan.promoted_config_name
    assert world.sagemaker.updates[-1] == (ENDPOINT, plan.promoted_config_name)
    world.sagemaker.settle()
    assert world.steps.restore(plan, snapshot, ready).in_service


def test_given_an_update_that_never_ends_when_restoring_past_its_patience_then_not_in_service(
    world: ShadowWorld,
) -> None:
    plan, snapshot = shadow_on(world)
    ready = world.steps.restore(plan, snapshot)
    world.clock.advance(hours=6, seconds=1)
    with pytest.raises(EndpointNotInService, match="restore gave up"):
        world.steps.restore(plan, snapshot, ready)


def test_given_a_removed_candidate_when_finalized_then_scaling_is_as_it_was_temporaries_go_and_the_endpoint_is_free(
    world: ShadowWorld,
) -> None:
    world.scaling.register(ENDPOINT, target(PRODUCTION, "latency"))
    plan, snapshot = shadow_on(world)
    world.scaling.deregister(ENDPOINT, PRODUCTION)  # as if removed and not put back
    world.steps.restore(plan, snapshot)
    world.sagemaker.settle()
    finalized = world.steps.finalize(plan, snapshot)
    assert not finalized.promoted
    assert finalized.final_config == ORIGINAL_CONFIG
    assert plan.shadow_config_name in finalized.deleted
    assert plan.shadow_config_name not in world.sagemaker.configs
    assert world.scaling.targets == {(ENDPOINT, PRODUCTION): target(PRODUCTION, "latency")}
    assert finalized.lock_released
    assert world.records.load(ENDPOINT).owner is None
    assert world.lease_holder() is None
    assert [message.test_id for message, _ in world.diffs.sent] == [plan.test_id]
    assert world.diffs.sent[0][1] == 900  # the pipeline's allowed lateness
    assert world.handover.announced == []


def test_given_a_target_the_test_never_touched_when_finalized_then_the_autopilots_bounds_stay(
    world: ShadowWorld,
) -> None:
    world.scaling.register(ENDPOINT, target(PRODUCTION, "latency"))
    plan, snapshot = shadow_on(world)
    world.scaling.register(ENDPOINT, target(PRODUCTION, "latency", max_capacity=9))  # moved by the autopilot
    world.steps.restore(plan, snapshot)
    world.sagemaker.settle()
    world.steps.finalize(plan, snapshot)
    assert world.scaling.targets[(ENDPOINT, PRODUCTION)].max_capacity == 9
    assert world.scaling.restored == []


def test_given_a_promotion_in_service_when_finalized_then_scaling_moves_to_the_candidate_and_the_policy_is_handed_over(
    world: ShadowWorld,
) -> None:
    plan, snapshot = promoted(world)
    finalized = world.steps.finalize(plan, snapshot)
    assert finalized.promoted
    assert finalized.final_config == plan.promoted_config_name
    assert plan.promoted_config_name in world.sagemaker.configs  # the endpoint runs it
    assert world.scaling.targets == {(ENDPOINT, CANDIDATE): target(CANDIDATE, "latency", max_capacity=6)}
    [(handover, _)] = world.handover.announced
    assert (handover.from_variant, handover.to_variant, handover.variants) == (PRODUCTION, CANDIDATE, (CANDIDATE,))
    assert handover.instances == 2
    assert world.records.load(ENDPOINT).owner is None
    assert world.lease_holder() is None


def test_given_a_finalize_retried_after_it_released_when_run_again_then_it_changes_nothing_more(
    world: ShadowWorld,
) -> None:
    plan, snapshot = promoted(world)
    world.steps.finalize(plan, snapshot)
    again = world.steps.finalize(plan, snapshot)
    assert again.promoted
    assert again.deleted == ()
    assert not again.lock_released
    assert world.scaling.targets == {(ENDPOINT, CANDIDATE): target(CANDIDATE, "latency", max_capacity=6)}
    assert world.lease_holder() is None


def test_given_a_derived_model_when_a_removed_test_is_finalized_then_the_model_is_deleted(world: ShadowWorld) -> None:
    candidate = {
        "modelName": CANDIDATE_MODEL,
        "instanceType": "ml.m5.large",
        "variantName": CANDIDATE,
        "environment": {},
    }
    plan, snapshot = shadow_on(world, candidate=candidate)
    assert plan.derived_model_name in world.sagemaker.models
    world.steps.restore(plan, snapshot)
    world.sagemaker.settle()
    finalized = world.steps.finalize(plan, snapshot)
    assert plan.derived_model_name in finalized.deleted
    assert plan.derived_model_name not in world.sagemaker.models


def test_given_no_snapshot_when_finalized_then_only_the_temporaries_and_the_lock_go(world: ShadowWorld) -> None:
    plan = locked(world)
    world.sagemaker.create_config(EndpointConfig(name=plan.shadow_config_name))
    finalized = world.steps.finalize(plan, None)
    assert finalized.deleted == (plan.shadow_config_name,)
    assert finalized.lock_released
    assert world.diffs.sent == []
