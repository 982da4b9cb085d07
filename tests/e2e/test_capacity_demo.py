"""The demo's simulated Monday on the embedded local cloud, asserted: the real template deployed into moto,
the policy applied with the CLI, schedules fired by the clock, alarms delivered through the policy's
EventBridge rule and an alarm action, deferred changes replayed through the SQS event source mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shadowscale.localcloud.demo import run

pytestmark = pytest.mark.e2e

Monday = tuple[dict[str, Any], list[dict[str, Any]], Path]


@pytest.fixture(scope="module")
def monday(tmp_path_factory: pytest.TempPathFactory) -> Monday:
    output = tmp_path_factory.mktemp("demo-output")
    summary = run(output)
    timeline: list[dict[str, Any]] = json.loads((output / "capacity-timeline.json").read_text())
    return summary, timeline, output


def scene(timeline: list[dict[str, Any]], starts: str) -> dict[str, Any]:
    return next(entry for entry in timeline if entry["scene"].startswith(starts))


def outcomes(entry: dict[str, Any]) -> list[str]:
    return [decision["outcome"] for decision in entry["decisions"]]


def test_schedule_window_scales_up_at_eight_and_down_at_twenty(monday: Monday) -> None:
    _, timeline, _ = monday
    morning = scene(timeline, "schedules fire until business hours")
    assert morning["variants"]["primary"]["instances"] == 4
    assert [d["function"] for d in morning["decisions"]] == ["shadowscale-dev-scheduled-scaler"]
    assert scene(timeline, "business hours end")["variants"]["primary"]["instances"] == 1


def test_spike_scales_out_by_the_step_and_back_in_after_the_cooldown(monday: Monday) -> None:
    _, timeline, _ = monday
    assert scene(timeline, "latency alarm → ALARM, worst")["variants"]["primary"]["instances"] == 8
    assert outcomes(scene(timeline, "latency alarm → OK inside")) == ["deferred"]
    replay = scene(timeline, "the cooldown ends")
    assert [d["function"] for d in replay["decisions"]] == ["shadowscale-dev-deferred-scaler"]
    assert replay["variants"]["primary"]["instances"] == 7


def test_alarm_delivered_by_action_and_rule_has_one_effect(monday: Monday) -> None:
    _, timeline, _ = monday
    candidate = scene(timeline, "candidate 5xx alarm → ALARM")
    assert sorted(outcomes(candidate)) == ["applied", "duplicate"]
    assert candidate["variants"]["candidate"]["weight"] == 0
    assert scene(timeline, "candidate 5xx alarm → OK")["variants"]["candidate"]["weight"] == 0.1


def test_change_for_a_busy_endpoint_is_retried_until_applied(monday: Monday) -> None:
    _, timeline, _ = monday
    assert outcomes(scene(timeline, "someone else updates")) == ["deferred"]
    retried = scene(timeline, "SQS redelivers")
    assert outcomes(retried)[-1] == "applied"
    assert "requeued" in outcomes(retried)
    assert retried["variants"]["primary"]["instances"] == 8


def test_auto_scaled_variant_gets_its_range_moved_not_its_count(monday: Monday) -> None:
    summary, timeline, _ = monday
    last = timeline[-1]
    assert last["decisions"][0]["changes"][0]["via"] == "scalable-target"
    assert last["scalable_target"] == {"min": 3, "max": 3}
    assert summary["final"]["primary"]["instances"] == 1


def test_function_logs_hold_one_decision_record_per_decision(monday: Monday) -> None:
    _, _, output = monday
    records = [json.loads(line) for line in (output / "function-logs.jsonl").read_text().splitlines() if line]
    decisions = [r for r in records if r.get("message") == "scaling decision"]
    assert decisions
    assert all({"endpoint", "outcome", "changes", "source_event"} <= set(r) for r in decisions)
