"""The shadow test's worst-case execution history, counted from the state machine's structure, against
Step Functions' 25,000 events (domain/history_budget.py)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from shadowscale.shadow_tests.history_budget import (
    EVENT_BUDGET,
    SHADOW_TEST_MACHINE,
    ShadowTestMachine,
    history_problem,
    worst_case_history,
)
from shadowscale.shadow_tests.lifecycle import RESTORE_PATIENCE
from shadowscale.shadow_tests.models import parse_shadow_test_input
from shadowscale.shared.errors import InvalidShadowTestInput

from tests.conftest import load_event

REPO = Path(__file__).resolve().parents[2]
OLD_MAX_EVALUATIONS = 3_500  # the previous check: "about six" events per evaluation


def request(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "endpointName": "fraud-detector",
        "candidate": {"modelName": "fraud-v2", "instanceType": "ml.g4dn.xlarge"},
        "sampling": {"percent": 20},
        "durationMinutes": 60,
    }
    document.update(overrides)
    return document


def test_the_machine_the_budget_counts_is_the_state_machine_we_deploy() -> None:
    definition = json.loads((REPO / "statemachine" / "shadow_test.asl.json").read_text())
    assert ShadowTestMachine.from_definition(definition) == SHADOW_TEST_MACHINE, (
        "statemachine/shadow_test.asl.json changed: set SHADOW_TEST_MACHINE in domain/history_budget.py to"
        " ShadowTestMachine.from_definition(its JSON)"
    )


def test_an_evaluation_costs_what_its_three_states_write_not_six() -> None:
    # Bake (Wait, 2) + Evaluate (lambda:invoke Task, 5) + Progress? (Choice, 2)
    assert SHADOW_TEST_MACHINE.loop_events("Bake") == 9
    assert SHADOW_TEST_MACHINE.loop_events("ShadowWait") == 9
    assert SHADOW_TEST_MACHINE.loops["RestoreWait"].wait_seconds == 30


def test_given_an_input_the_old_check_accepts_when_its_history_would_overflow_then_rejected_naming_fields() -> None:
    document = request(durationMinutes=17_000, evaluationPeriodMinutes=5)
    assert OLD_MAX_EVALUATIONS >= 17_000 / 5  # accepted before
    with pytest.raises(InvalidShadowTestInput) as raised:
        parse_shadow_test_input(document)
    message = str(raised.value)
    assert "execution history limit" in message
    assert "evaluationPeriodMinutes" in message
    assert "durationMinutes" in message
    # Each remedy it names really fits.
    period = int(re.search(r"evaluationPeriodMinutes to at least (\d+)", message).group(1))  # type: ignore[union-attr]
    duration = int(re.search(r"durationMinutes to at most (\d+)", message).group(1))  # type: ignore[union-attr]
    parse_shadow_test_input({**document, "evaluationPeriodMinutes": period})
    parse_shadow_test_input({**document, "durationMinutes": duration})
    with pytest.raises(InvalidShadowTestInput):
        parse_shadow_test_input({**document, "durationMinutes": duration + 1})


@pytest.mark.parametrize(
    "document",
    [
        load_event("shadow_test.json"),  # a ramp of 7 h at 15 min, approval
        request(durationMinutes=24 * 60, evaluationPeriodMinutes=5),
        request(durationMinutes=30 * 24 * 60, evaluationPeriodMinutes=60, decisionMode="approve"),
    ],
)
def test_given_realistic_inputs_when_validated_then_they_fit(document: dict[str, Any]) -> None:
    parsed = parse_shadow_test_input(document)
    assert history_problem(parsed) is None


def test_given_a_ramp_when_counted_then_each_step_adds_its_evaluations_and_possible_re_polling() -> None:
    def events(steps: tuple[int, ...], *, approval: bool = False) -> int:
        return worst_case_history(
            step_minutes=steps,
            evaluation_period_minutes=15,
            in_service_timeout_minutes=30,
            approval=approval,
            restore_patience=RESTORE_PATIENCE,
        ).structural

    one_step = events((120,))
    ramped = events((60, 60))
    # Two steps: one more start-of-step evaluation, a Ramp task + its Choice, InService polls again
    # (SageMaker may refuse the weight in place) and the evaluation after them.
    polls = SHADOW_TEST_MACHINE.polls("ShadowWait", timedelta(minutes=30)) * 9
    ramp_retries = SHADOW_TEST_MACHINE.visits["Ramp"].retry_events
    assert ramped - one_step == 9 + (5 + 2) + polls + 9 + ramp_retries
    assert events((120,), approval=True) - one_step == 6 + 2 + SHADOW_TEST_MACHINE.visits["AwaitApproval"].retry_events


def test_the_budget_leaves_the_last_event_to_the_failure() -> None:
    assert EVENT_BUDGET == 24_999
