"""The demo's simulated Monday, asserted: the real handlers, the policy from examples/, the local cloud."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shadowscale.localcloud.demo import run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def monday(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    output = tmp_path_factory.mktemp("demo-output")
    summary = run(output)
    timeline: list[dict[str, Any]] = json.loads((output / "capacity-timeline.json").read_text())
    return summary, timeline


def step(timeline: list[dict[str, Any]], starts: str) -> dict[str, Any]:
    return next(entry for entry in timeline if entry["step"].startswith(starts))


def test_schedule_window_scales_up_and_down(monday: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    _, timeline = monday
    assert step(timeline, "business-hours window starts")["variants"]["primary"]["instances"] == 4
    assert step(timeline, "heartbeat tick inside")["report"]["outcome"] == "no-change"
    assert step(timeline, "business-hours window ends")["variants"]["primary"]["instances"] == 1


def test_spike_scales_out_by_the_step_and_back_in_after_cooldown(
    monday: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, timeline = monday
    assert step(timeline, "latency alarm ALARM, 230 ms")["variants"]["primary"]["instances"] == 8
    assert step(timeline, "latency alarm OK, inside")["report"]["outcome"] == "deferred"
    assert step(timeline, "deferred-change queue delivers")["variants"]["primary"]["instances"] == 7


def test_candidate_weight_follows_its_error_alarm_and_duplicates_do_nothing(
    monday: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, timeline = monday
    assert step(timeline, "candidate 5xx alarm ALARM")["variants"]["candidate"]["weight"] == 0
    assert step(timeline, "the same candidate alarm")["report"]["outcome"] == "duplicate"
    assert step(timeline, "candidate 5xx alarm OK")["variants"]["candidate"]["weight"] == 0.1


def test_busy_endpoint_change_is_retried_until_applied(monday: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    _, timeline = monday
    assert step(timeline, "someone else updates")["report"]["outcome"] == "deferred"
    assert step(timeline, "queue redelivers while")["report"]["outcome"] == "redelivery"
    assert step(timeline, "queue redelivers after")["variants"]["primary"]["instances"] == 8


def test_auto_scaled_variant_gets_its_range_moved(monday: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    summary, timeline = monday
    last = timeline[-1]
    assert last["report"]["changes"][0]["via"] == "scalable-target"
    assert summary["final"]["primary"]["instances"] == 1  # the count itself is left to auto scaling
