"""The fault matrix: the restore guarantee under every fault the lifecycle can meet, case by generated case.

A baseline run (fault_matrix/baseline.py) records every AWS operation the shadow test and its cleanup
call, with the state of the execution each call was made in; the cases are generated from it
(fault_matrix/cases.py says how, and which reductions of the cross product it makes). Each case runs a
full shadow test on an endpoint of its own, with one fault injected at the SDK boundary of the stack's
own calls (shadowscale_localcloud.faults), lets the cloud settle (no execution of any of the stack's state
machines running, nothing queued, within 3 simulated days), and checks the whole guarantee
(fault_matrix/harness.py, Case.guarantee). The matrix's size and how many cases held are printed at the
end of the run (fault_matrix/summary.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from shadowscale_localcloud.faults import RecordedCall, Trigger, make_fault

from tests.integration.fault_matrix import baseline as baseline_module
from tests.integration.fault_matrix.cases import MatrixCase, generate
from tests.integration.fault_matrix.harness import Case, MatrixCloud, matrix_cloud

STALL_SECONDS = {"stall-3h": 3 * 3600.0, "rollback": 45.0}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "matrix_case" in metafunc.fixturenames:
        cases = generate(baseline_module.load())
        metafunc.parametrize("matrix_case", cases, ids=[case.case_id for case in cases])


@pytest.fixture(scope="module")
def matrix() -> Iterator[MatrixCloud]:
    with matrix_cloud("fault-matrix") as running:
        yield running


@pytest.fixture
def case(matrix: MatrixCloud, matrix_case: MatrixCase, record_property: Any) -> Iterator[Case]:
    made = Case(matrix, case_id=matrix_case.case_id, scenario=matrix_case.scenario)
    record_property("fault_matrix_case", matrix_case.case_id)
    try:
        yield made
    finally:
        matrix.faults.clear()
        _stop_leftovers(matrix, made)


def _stop_leftovers(matrix: MatrixCloud, case: Case) -> None:
    """A case that did not settle must not run on into the next one: stop what still runs, let it end."""
    stepfunctions = matrix.client("stepfunctions")
    for arn, execution in matrix.executions(case.since).items():
        if execution["status"] == "RUNNING":
            stepfunctions.stop_execution(executionArn=arn, cause="fault matrix: case over")
    case.settle()


def _stop(case: Case) -> Any:
    def stop(call: RecordedCall) -> None:
        assert call.execution_arn is not None
        case.cloud.client("stepfunctions").stop_execution(executionArn=call.execution_arn, cause="operator abort")

    return stop


def _judge(case: Case, broken: list[str], *, injected: int | None = None, what: str = "") -> None:
    if injected == 0:
        broken.insert(0, f"{what} never happened: the stack no longer makes that call there (baseline stale?)")
    assert not broken, f"{case.case_id} on {case.endpoint}: the restore guarantee broke:\n  " + "\n  ".join(broken)


def test_the_restore_guarantee_holds(case: Case, matrix_case: MatrixCase) -> None:
    # GIVEN an auto-scaled endpoint with its own data capture, and the case's candidate (fast or slow)
    run = case.deploy()
    injected: int | None = None
    what = ""
    faults = case.matrix.faults
    gaps = case.cloud.gaps
    waits = case.cloud.stepfunctions
    assert gaps is not None
    assert waits is not None

    # WHEN one shadow test (or the case's pair of them) runs with the case's fault, to the end
    if matrix_case.kind == "fault":
        assert matrix_case.fault is not None
        fault = faults.inject(
            make_fault(
                matrix_case.fault,
                matrix_case.service,
                matrix_case.operation,
                state=matrix_case.state,
                applies=lambda call: case.applies(call) and call.site.state_machine == matrix_case.machine,
            )
        )
        case.start()
        broken = case.finish()
        injected, what = fault.injected, f"{matrix_case.fault} of {matrix_case.service}:{matrix_case.operation}"
    elif matrix_case.kind == "stall":
        seconds = STALL_SECONDS[matrix_case.variant]
        trigger = faults.on_call(
            Trigger(
                "sagemaker",
                "UpdateEndpoint",
                lambda _: gaps.stall_next_update(case.endpoint, seconds=seconds),
                nth=matrix_case.nth,
                applies=case.applies,
            )
        )
        case.start()
        broken = case.finish()
        injected, what = int(trigger.fired), f"UpdateEndpoint #{matrix_case.nth}"
    elif matrix_case.kind == "abort" and matrix_case.variant == "task":
        assert matrix_case.state is not None
        trigger = faults.on_call(
            Trigger(
                matrix_case.service,
                matrix_case.operation,
                _stop(case),
                state=matrix_case.state,
                when="after",
                applies=case.applies,
            )
        )
        case.start()
        broken = case.finish()
        injected, what = int(trigger.fired), f"the abort in {matrix_case.state}"
    elif matrix_case.kind in ("abort", "tidy-up"):
        assert matrix_case.state is not None
        waits.hold_waits()
        try:
            case.start(durationMinutes=60 if matrix_case.kind == "abort" else 10)
            case.cloud.step_to(run.execution_arn, matrix_case.state)
            if matrix_case.kind == "abort":
                case.cloud.client("stepfunctions").stop_execution(
                    executionArn=run.execution_arn, cause="operator abort"
                )
            else:  # someone tidying up endpoint configs deletes the one the endpoint was on
                case.cloud.client("sagemaker").delete_endpoint_config(EndpointConfigName=f"{case.endpoint}-config-1")
        finally:
            waits.release_waits()
        broken = case.finish()
    else:
        broken = _two_executions(case, matrix_case)

    # THEN the endpoint is InService on the promoted or the snapshot's config, capture and Auto Scaling as
    # they were, nothing temporary left, the lease released, the report written and a notification sent
    _judge(case, broken, injected=injected, what=what)


def _two_executions(case: Case, matrix_case: MatrixCase) -> list[str]:
    """Two executions on one endpoint: the guarantee holds for the first, the second touches nothing
    (or, one after the other, holds too), and each has a report of its own."""
    waits = case.cloud.stepfunctions
    assert waits is not None
    look_alike = matrix_case.kind == "look-alike"
    first_name, second_name = (
        (f"{case.endpoint}.run", f"{case.endpoint}_run") if look_alike else (f"{case.endpoint}-a", f"{case.endpoint}-b")
    )
    broken: list[str] = []
    if matrix_case.variant == "one-after-the-other":
        first = case.start(name=first_name)
        broken += case.finish()
        case.run = None
        case.run = case.start(name=second_name)
        broken += [f"second execution: {line}" for line in case.finish()]
        second_report, _ = case.report(case.run)
        first_report, _ = case.report(first)
        if first_report is None or second_report is None or first_report == second_report:
            broken.append("the two executions do not each have a report of their own")
        return broken
    if matrix_case.variant == "at-once":
        case.start(name=first_name)
        second = case.start(name=second_name)
    else:
        waits.hold_waits()
        try:
            first = case.start(name=first_name)
            case.cloud.step_to(first.execution_arn, "Bake")
            second = case.start(name=second_name)
            case.cloud.wait_for_execution(second.execution_arn)
        finally:
            waits.release_waits()
    still_running = case.settle()
    if matrix_case.variant == "at-once" and case.run is not None:
        # Either may win the race for the lock: the guarantee is the winner's, the other must be locked.
        first_report, _ = case.report(case.run)
        if (first_report or {}).get("outcome") == "locked":
            case.run, second = second, case.run
    broken += case.guarantee(still_running=still_running, notifications=case.matrix.notifications())
    report, html = case.report(second)
    described = case.cloud.client("stepfunctions").describe_execution(executionArn=second.execution_arn)
    first_report, _ = case.report(case.run) if case.run is not None else (None, None)
    if report is None or html is None:
        broken.append(f"the second execution ({described['status']}) wrote no report of its own")
    elif report.get("outcome") != "locked" and (first_report or {}).get("outcome") != "locked":
        broken.append(
            "neither execution stopped at the lock: "
            f"{(first_report or {}).get('outcome')!r} and {report.get('outcome')!r} on one endpoint"
        )
    if first_report is not None and report is not None and json.dumps(first_report) == json.dumps(report):
        broken.append("the two executions share one report")
    return broken


# --- the injector itself -------------------------------------------------------------------------


def test_a_fault_fails_only_the_stacks_own_calls_as_botocore_would_after_its_retries(matrix: MatrixCloud) -> None:
    # GIVEN a throttling fault on DescribeEndpoint, and a client of the stack's task function's role
    from botocore.exceptions import ClientError
    from moto.awslambda.models import lambda_backends
    from shadowscale_localcloud.resources import ACCOUNT, REGION

    cloud = matrix.cloud
    assert cloud.role_sessions is not None
    function = next(
        f for f in lambda_backends[ACCOUNT][REGION].list_functions() if "shadow-test-tasks" in f.function_name
    )
    credentials = cloud.role_sessions.function_environment(function.role, function.function_name)
    import boto3

    stack_client = boto3.Session(
        region_name=REGION,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    ).client("sagemaker")
    fault = matrix.faults.inject(make_fault("throttle", "sagemaker", "DescribeEndpoint", times=1))
    try:
        # WHEN the operator and then the stack's role describe an endpoint that does not exist
        with pytest.raises(ClientError) as operator_error:
            cloud.client("sagemaker").describe_endpoint(EndpointName="no-such-endpoint")
        with pytest.raises(ClientError) as stack_error:
            stack_client.describe_endpoint(EndpointName="no-such-endpoint")
        with pytest.raises(ClientError) as after_fault:
            stack_client.describe_endpoint(EndpointName="no-such-endpoint")
    finally:
        matrix.faults.clear()

    # THEN the operator met SageMaker itself; the stack met the throttling, as a call whose retries ran out
    assert operator_error.value.response["Error"]["Code"] == "ValidationException"
    assert stack_error.value.response["Error"]["Code"] == "ThrottlingException"
    metadata: dict[str, Any] = dict(stack_error.value.response["ResponseMetadata"])
    assert metadata["MaxAttemptsReached"] is True
    assert fault.injected == 1
    assert after_fault.value.response["Error"]["Code"] == "ValidationException"


def test_an_outage_fails_every_call_until_the_clock_passes_its_end(matrix: MatrixCloud) -> None:
    # GIVEN a 5-minute outage of S3 GetObject, armed by its first call
    from shadowscale_localcloud.faults import CallSite

    fault = make_fault("outage-5m", "s3", "GetObject")
    site = CallSite("s3", "GetObject", "function f", None, None)
    call = RecordedCall(site, matrix.cloud.clock.now(), None, None, {}, None)
    began = matrix.cloud.clock.now()

    # WHEN calls are made during and after the outage
    during = [fault.decide(call, began + timedelta(seconds=seconds)) for seconds in (0, 60, 299)]
    after = fault.decide(call, began + timedelta(seconds=300))

    # THEN every call within the five minutes failed with 503, and the first after it went through
    assert [error.status if error else None for error in during] == [503, 503, 503]
    assert after is None
