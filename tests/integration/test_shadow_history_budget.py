"""The longest shadow test the validator accepts runs to its end on the local cloud, whose Step Functions
counts history events as AWS does and fails an execution at the 25,000th (localcloud/stepfunctions_gaps.py).
Its real history stays within the validator's worst case (domain/history_budget.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shadowscale.shadow_tests.execution_history import HISTORY_EVENT_LIMIT
from shadowscale.shadow_tests.history_budget import _estimate
from shadowscale.shadow_tests.models import parse_shadow_test_input
from shadowscale.shared.errors import InvalidShadowTestInput
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud
from shadowscale_localcloud.resources import create_one_variant_endpoint

REPO = Path(__file__).resolve().parents[2]
ENDPOINT = "budget-endpoint"
# The widest InService waits and the longest evaluation period leave the fewest evaluations to the
# longest accepted test (about 800): the run stays quick, and every loop of the machine is still there.
SETTINGS: dict[str, Any] = {
    "endpointName": ENDPOINT,
    "candidate": {"modelName": f"{ENDPOINT}-v2", "instanceType": "ml.g4dn.xlarge"},
    "sampling": {"percent": 50},
    "evaluationPeriodMinutes": 60,
    "inServiceTimeoutMinutes": 240,
}


def accepted(duration: int) -> bool:
    try:
        parse_shadow_test_input({**SETTINGS, "durationMinutes": duration})
    except InvalidShadowTestInput:
        return False
    return True


def longest_accepted_duration() -> int:
    shortest, longest = int(SETTINGS["evaluationPeriodMinutes"]), 60 * 24 * 90 + 1  # past the field's bound
    assert accepted(shortest)
    while shortest < longest - 1:
        middle = (shortest + longest) // 2
        shortest, longest = (middle, longest) if accepted(middle) else (shortest, middle)
    return shortest


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    with LocalCloud(root=REPO, clock=AcceleratedClock(start), stack_name="history-budget-test") as running:
        yield running


def test_the_longest_accepted_test_completes_within_the_history_limit(cloud: LocalCloud) -> None:
    duration = longest_accepted_duration()
    assert not accepted(duration + 1)
    document = {**SETTINGS, "durationMinutes": duration}
    estimate = _estimate(parse_shadow_test_input(document))
    create_one_variant_endpoint(cloud.client("sagemaker"), ENDPOINT, f"{ENDPOINT}-v2", cloud.advance, instances=1)

    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["ShadowTestStateMachineArn"], name="longest", input=json.dumps(document)
    )
    described = cloud.wait_for_execution(started["executionArn"], timeout=900)

    assert (described["status"], described.get("error")) == ("SUCCEEDED", None)
    history = cloud.history(started["executionArn"])
    evaluations = sum(
        1 for e in history if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "Evaluate"
    )
    assert estimate.evaluations - 1 <= evaluations <= estimate.evaluations
    assert len(history) <= estimate.structural < HISTORY_EVENT_LIMIT
    assert history[-1]["type"] == "ExecutionSucceeded"
