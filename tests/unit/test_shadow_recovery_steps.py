"""The recovery's first step (shadow_tests/recovery.py) on in-memory fakes: what an ended execution left
behind decides whether the recovery restores, only reports, or does nothing; and the claim makes it happen
once. Then the same steps as the test's own machine put the endpoint back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from shadowscale.shadow_tests.entrypoints import ShadowTestEntryPoints
from shadowscale.shadow_tests.models import Finalized, MachineState, Readiness, RecoveryRequest, ShadowTestPlan
from shadowscale.shadow_tests.ports import ExecutionFacts
from shadowscale.shared.errors import RecoveryRefused

from tests.shadow_fakes import (
    ENDPOINT,
    MACHINE,
    ORIGINAL_CONFIG,
    RECOVERY_MACHINE,
    ShadowWorld,
    shadow_input,
)

RECOVERY = f"{RECOVERY_MACHINE}:recover-1"


@pytest.fixture
def world() -> ShadowWorld:
    return ShadowWorld()


def ended(world: ShadowWorld, plan: ShadowTestPlan, status: str = "ABORTED", **overrides: Any) -> RecoveryRequest:
    world.timeline.executions[plan.execution_arn] = ExecutionFacts(
        status=status,
        input=json.dumps(shadow_input(**overrides)),
        started_at=plan.started_at,
    )
    return RecoveryRequest(execution_arn=plan.execution_arn, status=status)


def shadow_on(world: ShadowWorld) -> tuple[ShadowTestPlan, MachineState]:
    """A test that locked, snapshotted and turned the shadow on, and the last state it entered."""
    plan = world.plan()
    world.steps.lock(plan)
    snapshot = world.steps.snapshot(plan)
    world.steps.prepare(plan, snapshot)
    ready = world.steps.start_shadow(plan)
    world.sagemaker.settle()
    ready = world.steps.check_ready(plan, ready)
    last = MachineState(plan=plan, snapshot=snapshot, ready=ready)
    world.timeline.last_states[plan.execution_arn] = last
    return plan, last


def test_given_a_running_execution_when_recovered_then_refused(world: ShadowWorld) -> None:
    plan = world.plan()
    request = ended(world, plan, status="RUNNING")
    with pytest.raises(RecoveryRefused, match="still running"):
        world.recovery.begin(request, recovery_arn=RECOVERY)


def test_given_an_input_naming_no_valid_endpoint_when_recovered_then_nothing_is_touched(world: ShadowWorld) -> None:
    plan = world.plan()
    request = ended(world, plan, endpointName="not a name!")
    state = world.recovery.begin(request, recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.action == "nothing"
    assert state.plan is None


def test_given_an_aborted_test_holding_the_endpoint_when_recovered_then_it_is_claimed_and_restored_from_its_record(
    world: ShadowWorld,
) -> None:
    plan, last = shadow_on(world)
    world.clock.advance(minutes=20)
    state = world.recovery.begin(ended(world, plan), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert (state.recovery.action, state.recovery.ended_as, state.recovery.recovered_by) == (
        "restore",
        "ABORTED",
        RECOVERY,
    )
    assert state.plan == plan
    assert state.snapshot == last.snapshot
    assert state.ready is None  # where the endpoint is heading is read again from the endpoint
    assert state.failure == {
        "Error": "ExecutionAborted",
        "Cause": "the execution ended ABORTED before it restored the endpoint",
    }
    assert world.records.load(ENDPOINT).recovered_by == RECOVERY


def test_given_a_claimed_recovery_when_the_same_event_comes_again_then_it_finds_its_own_claim(
    world: ShadowWorld,
) -> None:
    plan, _ = shadow_on(world)
    request = ended(world, plan)
    world.recovery.begin(request, recovery_arn=RECOVERY)
    again = world.recovery.begin(request, recovery_arn=RECOVERY)
    assert again.recovery is not None
    assert again.recovery.action == "restore"


def test_given_another_recovery_running_when_recovered_then_nothing(world: ShadowWorld) -> None:
    plan, _ = shadow_on(world)
    request = ended(world, plan)
    other = f"{RECOVERY_MACHINE}:recover-0"
    world.recovery.begin(request, recovery_arn=other)
    world.timeline.executions[other] = ExecutionFacts(status="RUNNING", input=None, started_at=plan.started_at)
    state = world.recovery.begin(request, recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.action == "nothing"
    assert state.recovery.reason == f"{other} is recovering this test already"
    assert world.records.load(ENDPOINT).recovered_by == other


def test_given_a_recovery_that_gave_up_when_recovered_again_then_the_new_one_replaces_it(world: ShadowWorld) -> None:
    plan, _ = shadow_on(world)
    request = ended(world, plan)
    gave_up = f"{RECOVERY_MACHINE}:recover-0"
    world.recovery.begin(request, recovery_arn=gave_up)
    world.timeline.executions[gave_up] = ExecutionFacts(status="FAILED", input=None, started_at=plan.started_at)
    state = world.recovery.begin(request, recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.action == "restore"
    assert world.records.load(ENDPOINT).recovered_by == RECOVERY


def test_given_another_recovery_claims_first_when_recovered_then_nothing(world: ShadowWorld) -> None:
    plan, _ = shadow_on(world)
    world.records.race_won_by = f"{RECOVERY_MACHINE}:recover-0"
    state = world.recovery.begin(ended(world, plan), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.reason == "another recovery claimed this test first"
    assert world.records.load(ENDPOINT).recovered_by == f"{RECOVERY_MACHINE}:recover-0"


def test_given_a_test_stopped_before_its_snapshot_when_recovered_then_the_lease_is_released_and_it_is_reported(
    world: ShadowWorld,
) -> None:
    plan = world.plan()
    world.steps.lock(plan)
    state = world.recovery.begin(ended(world, plan, status="TIMED_OUT"), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.action == "report"
    assert state.plan is not None
    assert state.plan.execution_arn == plan.execution_arn
    assert state.failure is not None
    assert state.failure["Error"] == "ExecutionTimedOut"
    assert world.records.load(ENDPOINT).owner is None
    assert world.lease_holder() is None


def test_given_a_test_stopped_before_its_snapshot_with_an_input_that_never_validated_then_only_the_lease_goes(
    world: ShadowWorld,
) -> None:
    plan = world.plan()
    world.steps.lock(plan)
    state = world.recovery.begin(ended(world, plan, durationMinutes=1), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert (state.recovery.action, state.recovery.reason) == (
        "nothing",
        "released the lease; nothing else was changed",
    )
    assert world.records.load(ENDPOINT).owner is None


def finished(world: ShadowWorld, plan: ShadowTestPlan, *, notified: bool) -> None:
    world.reports.report(
        MachineState(plan=plan, finalized=Finalized(promoted=False, final_config=ORIGINAL_CONFIG, lock_released=True))
    )
    if notified:
        world.reports.mark_notified(plan, plan.execution_arn)


def test_given_a_test_that_restored_reported_and_notified_when_recovered_then_nothing(world: ShadowWorld) -> None:
    plan = world.plan()
    world.timeline.last_states[plan.execution_arn] = MachineState(plan=plan)
    finished(world, plan, notified=True)
    state = world.recovery.begin(ended(world, plan, status="FAILED"), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.action == "nothing"


def test_given_a_test_that_reported_but_could_not_notify_when_recovered_then_it_is_reported_again(
    world: ShadowWorld,
) -> None:
    plan = world.plan()
    failure = {"Error": "SNS.InternalError", "Cause": "publish failed"}
    world.timeline.last_states[plan.execution_arn] = MachineState(plan=plan, failure=failure)
    finished(world, plan, notified=False)
    state = world.recovery.begin(ended(world, plan, status="FAILED"), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert (state.recovery.action, state.recovery.reason) == ("report", "the execution reported but could not notify")
    assert state.failure == failure  # the test's own last state says how it ended


def test_given_a_test_stopped_inside_finalize_when_recovered_then_finalize_is_finished(world: ShadowWorld) -> None:
    plan, last = shadow_on(world)
    world.steps.restore(plan, last.snapshot)
    world.sagemaker.settle()
    world.records.release(ENDPOINT, plan.owner)  # finalize let go, then the execution stopped
    state = world.recovery.begin(ended(world, plan), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert (state.recovery.action, state.recovery.reason) == (
        "restore",
        "the execution ended ABORTED while it finalized",
    )
    assert state.snapshot == last.snapshot
    assert state.ready is None
    assert state.failure is not None
    assert state.failure["Error"] == "ExecutionAborted"


def test_given_a_test_stopped_before_its_first_state_when_recovered_then_its_plan_is_made_again_and_reported(
    world: ShadowWorld,
) -> None:
    plan = world.plan()
    world.clock.advance(hours=1)
    state = world.recovery.begin(ended(world, plan), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.reason == "the execution's report was not written"
    assert state.plan is not None
    assert state.plan.started_at == plan.started_at  # when the execution started, not now
    assert state.plan.shadow_config_name == plan.shadow_config_name
    assert state.failure is not None
    assert state.failure["Error"] == "ExecutionAborted"


def test_given_input_that_never_validated_and_no_state_when_recovered_then_nothing(world: ShadowWorld) -> None:
    plan = world.plan()
    state = world.recovery.begin(ended(world, plan, durationMinutes=1), recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert state.recovery.reason == "the execution never had a plan: nothing was touched"


def test_given_the_input_in_the_event_when_step_functions_forgot_the_execution_then_the_event_is_enough(
    world: ShadowWorld,
) -> None:
    plan, _ = shadow_on(world)
    request = RecoveryRequest(execution_arn=plan.execution_arn, status="TIMED_OUT", input=json.dumps(shadow_input()))
    state = world.recovery.begin(request, recovery_arn=RECOVERY)
    assert state.recovery is not None
    assert (state.recovery.action, state.recovery.ended_as) == ("restore", "TIMED_OUT")


def test_given_a_recovery_state_when_the_steps_run_then_the_endpoint_is_back_and_free(world: ShadowWorld) -> None:
    plan, _ = shadow_on(world)
    state = world.recovery.begin(ended(world, plan), recovery_arn=RECOVERY)
    assert state.plan is not None
    ready: Readiness | None = None
    for _ in range(5):
        ready = world.steps.restore(state.plan, state.snapshot, ready)
        if ready.in_service:
            break
        world.sagemaker.settle()
        world.clock.advance(minutes=1)
    assert ready is not None
    assert ready.in_service
    finalized = world.steps.finalize(state.plan, state.snapshot)
    assert finalized.final_config == ORIGINAL_CONFIG
    assert finalized.lock_released
    assert world.sagemaker.endpoint().shadow_variants == ()
    ref = world.reports.report(state.model_copy(update={"ready": ready, "finalized": finalized}))
    assert ref.outcome == "aborted"


def test_given_a_recover_task_when_dispatched_then_the_recovery_state_is_the_machines_next_state(
    world: ShadowWorld,
) -> None:
    plan, _ = shadow_on(world)
    request = ended(world, plan)
    entrypoints = ShadowTestEntryPoints(world.steps, world.reports, world.recovery)
    started = world.clock.now() + timedelta(minutes=1)
    output = entrypoints.task(
        {
            "task": "recover",
            "state": {"recovery": request.model_dump(by_alias=True)},
            "execution": {"Id": RECOVERY, "StartTime": started.isoformat()},
        }
    )
    assert output["recovery"]["action"] == "restore"
    assert output["plan"]["executionArn"] == plan.execution_arn
    assert "ready" not in output
    assert output["snapshot"]["configName"] == ORIGINAL_CONFIG
    assert output["failure"]["Error"] == "ExecutionAborted"
    assert MACHINE in output["plan"]["executionArn"]
